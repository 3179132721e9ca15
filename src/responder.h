/* responder.h - the two transports: FastCGI accept loop and one-shot CGI.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_RESPONDER_H
#define PH_RESPONDER_H

#include "handler.h"

/* Install SIGTERM/SIGINT/SIGHUP handlers (no SA_RESTART) that let the
 * request in hand finish, then stop the accept loop. SIGPIPE is ignored. */
void ph_signals_install(void);

/* True once a stop signal arrived. */
bool ph_stop_requested(void);

/* Serve FastCGI requests on listen_fd (0: the socket the web server passed
 * as fd 0) until a stop signal or max_requests (0: unlimited). The stop
 * signals are blocked from accept to the end of each request, so one that
 * arrives meanwhile takes effect after the answer.
 * Returns 0 on a clean stop, -1 if accepting failed. */
int ph_responder_fcgi(struct ph_context *ctx, int listen_fd,
		      unsigned long max_requests);

/* Serve exactly one CGI request: parameters from environ, body on stdin,
 * answer on stdout, with the stop signals blocked throughout. Returns 0
 * (the answer was sent) or -1. */
int ph_responder_cgi(struct ph_context *ctx);

#endif
