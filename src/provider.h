/* provider.h - the interface every provider adapter implements.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * An adapter is one file, prov-<name>.c, exporting one const struct
 * ph_provider, listed in provider.c. The pipeline (handler.c) calls it in
 * this order for a request that passed the transport checks:
 *
 *   authenticate()  over the raw bytes in req (may call ph_request_json()
 *                   itself when the credential lives inside the body)
 *   normalize()     fill the event from req->doc (already parsed, an object)
 *                   or, for an adapter whose requests carry several events,
 *   event_count()   how many, then normalize_at() for each one
 *   answer()        the provider's expected reply for each outcome
 */
#ifndef PH_PROVIDER_H
#define PH_PROVIDER_H

#include <stdbool.h>
#include "conf.h"
#include "event.h"
#include "request.h"

struct ph_signed;			/* sign.h */

enum ph_auth_result {
	PH_AUTH_OK,
	PH_AUTH_FAIL,		/* missing or wrong credentials */
	PH_AUTH_BAD_REQUEST,	/* body unparseable where auth needs it */
};

struct ph_auth {
	const char *verified_by;	/* static string for the event */
	int secret_index;		/* which secret matched, -1 if n/a */
};

enum ph_outcome {
	PH_OUT_ACCEPTED,
	PH_OUT_DUPLICATE,
	PH_OUT_UNAUTHORIZED,
	PH_OUT_BAD_REQUEST,
};

struct ph_answer {
	int status;
	const char *content_type;	/* NULL: no body */
	char *body;			/* owned, freed by the caller */
	size_t body_len;
};

struct ph_provider {
	const char *name;
	/* Parse the route's adapter-specific keys from route->json into
	 * route->adapter, appending a fault for each problem. Returns 0 or -1.
	 * Called once per configuration load. */
	int (*configure)(struct ph_route *route, struct ph_faults *faults);
	/* Free route->adapter. May be NULL. */
	void (*unconfigure)(struct ph_route *route);
	enum ph_auth_result (*authenticate)(const struct ph_route *route,
					    struct ph_request *req,
					    struct ph_auth *auth);
	/* Fill type, dedup_key, ids, status, amount, occurred_at, provider_event
	 * from req->doc. Never fails for an authentic object: what cannot be
	 * classified is "unknown", what is missing is NULL, and a missing
	 * identity falls back to the body hash. The dedup key is made only
	 * of fields the route's authentication covers (or of the body hash):
	 * whoever can send what authenticate() accepts can claim any key made
	 * of the rest. */
	void (*normalize)(const struct ph_route *route,
			  const struct ph_request *req, struct ph_event *ev);
	/* The reply for an outcome; NULL means ph_answer_default(). */
	void (*answer)(enum ph_outcome outcome, const struct ph_event *ev,
		       struct ph_answer *ans);
	/* For "payhook sign": what delivering payload (len bytes, as given;
	 * doc is it parsed, or NULL when it is not a JSON object) to route
	 * with valid credentials needs, made with the route's first secret:
	 * headers, a query, or a replacement body (see sign.h). Returns 0,
	 * or -1 with err when it cannot be done. NULL: nothing is needed
	 * beyond the Content-Type. */
	int (*sign)(const struct ph_route *route, const uint8_t *payload,
		    size_t len, struct json_object *doc, struct ph_signed *out,
		    struct ph_error *err);
	/* The request header that carries the route's credential or
	 * signature, whatever its configured name, so the quarantine can
	 * redact it; NULL when there is none. NULL: none ever. */
	const char *(*credential_header)(const struct ph_route *route);
	/* Several events per request (a batch: Adyen's notificationItems).
	 * Both NULL: every request is one event, made by normalize(). Both
	 * set: normalize may be NULL and is not called; event_count() says how many events
	 * req->doc holds (authenticate() refuses a request with none, and
	 * has authenticated every one of them), and normalize_at() fills
	 * event i (0-based) as normalize() would, setting ev->raw to the
	 * part of req->doc that is the event (borrowed). The handler claims,
	 * spools and commits each event in order before the one answer;
	 * answer() is called once, with the first event (ev->id its id). */
	size_t (*event_count)(const struct ph_route *route,
			      const struct ph_request *req);
	void (*normalize_at)(const struct ph_route *route,
			     const struct ph_request *req, size_t i,
			     struct ph_event *ev);
	/* A route that serves a page instead of receiving events (the
	 * status page): set, the handler calls it once the route is found
	 * and the client address allowed, and nothing of the delivery path
	 * runs (no body read, no dedup, spool, quarantine or counters);
	 * authenticate and normalize are then not called by the handler.
	 * It answers req itself and returns the status it answered, for
	 * the log line. */
	int (*serve)(const struct ph_config *cfg, const struct ph_route *route,
		     struct ph_request *req);
};

/* The adapter called name, or NULL. */
const struct ph_provider *ph_provider_find(const char *name);

/* NULL-terminated list of all adapters. */
extern const struct ph_provider *const ph_providers[];

/* Default replies: 200 {"status":"accepted","id":"…"} and
 * {"status":"duplicate","id":"…"}; 401 {"error":"unauthorized"};
 * 400 {"error":"bad request"}. */
void ph_answer_default(enum ph_outcome outcome, const struct ph_event *ev,
		       struct ph_answer *ans);

/* Shared normalization helpers for adapters. */

/* Normalize a status word: ASCII lower case with '_', '-' and ' ' removed,
 * into out (size bytes). "PENDING_3DS" -> "pending3ds". */
void ph_status_fold(const char *in, char *out, size_t size);

/* Fill ev->amount from a JSON value (number, or string holding a number)
 * and a currency value, using the number's text as received, never a
 * double (json-c keeps a parsed double's text; an integer's decimal form is
 * its text). Leaves has_amount false, and logs why, when either is
 * missing, of the wrong type, an integer beyond 64 bits, a currency that
 * is not exactly a known code (a NUL inside counts), or not exact at the
 * currency's exponent. */
void ph_event_set_amount(struct ph_event *ev, struct json_object *amount,
			 struct json_object *currency,
			 enum ph_amount_unit unit);

/* ph_event_set_text for an identity field (a payment, order or refund id)
 * named name in the log: an integer beyond 64 bits is logged as not
 * usable, and leaves *field as it is. */
bool ph_event_set_id(const struct ph_event *ev, char **field,
		     struct json_object *val, const char *name);

/* The longest dedup key the dedup database takes (dedup.c). */
#define PH_DEDUP_KEY_MAX 1024

/* Set ev->dedup_key to "<route>:<provider>:<part>[:<part>...]" from the n
 * parts of the event's identity (ids, the event's name or status), each
 * escaped so that no two different lists give one key: '%' as %25, ':' as
 * %3A, '#' as %23, bytes below 0x20 and 0x7f as %XX (upper-case hex),
 * other bytes as they are. Route names are [A-Za-z0-9._-] (conf.c).
 *
 * Without a usable identity the key is the body hash's
 * (ph_event_dedup_body_hash, "<route>:<provider>:#sha256:<hex>"): when a
 * part is NULL (missing); when a part holds U+FFFD, which json-c puts in
 * place of every escaped lone surrogate, so "\ud800" and "\udc00" would
 * read alike (logged); and when the key would be longer than the dedup
 * database takes (a provider sending a kilobyte-long id; logged), rather
 * than a 503 that every retry would meet again. */
void ph_event_set_dedup_key(struct ph_event *ev, const uint8_t *body,
			    size_t len, const char *const *parts, size_t n);

/* Set *field to a provider's timestamp as RFC 3339 UTC,
 * "YYYY-MM-DDTHH:MM:SS[.fraction]Z". Accepted: a string
 * "YYYY-MM-DD[T ]HH:MM:SS[.fraction][zone]", the zone being Z, +HH:MM,
 * +HHMM or +HH (or '-'), none meaning UTC, the fraction's digits kept as
 * sent (at most 9); or a JSON integer, Unix time in seconds below 10^11,
 * else in milliseconds. Anything else leaves *field untouched and returns
 * false. */
bool ph_event_set_time(char **field, struct json_object *val);

/* True if s is a non-empty RFC 9110 token, i.e. a valid header name. */
bool ph_header_name_valid(const char *s);

/* Look up a dotted path ("data.transaction_id") in obj; NULL if absent. */
struct json_object *ph_json_path(struct json_object *obj, const char *path);

/* val's text if it is a JSON string without a NUL byte inside (a C string
 * is then all of it), else NULL. Borrowed from val. */
const char *ph_json_cstring(struct json_object *val);

/* Route "auth" objects ({"type": ..., ...}, OMNO's and Adyen's). where
 * prefixes fault messages (ph_route_where), which name the key as
 * 'auth.KEY'. */

/* auth.KEY as a string without NUL bytes: 0 and *out set, 1 if absent,
 * -1 (fault added) on a wrong type. */
int ph_auth_string(struct json_object *auth, const char *where,
		   const char *key, const char **out, struct ph_faults *faults);
/* The same, absence being a fault: 0 or -1. */
int ph_auth_required_string(struct json_object *auth, const char *where,
			    const char *key, const char **out,
			    struct ph_faults *faults);
/* The route's "auth" object and its "type": 0 and *type set, or -1 with a
 * fault ("must be an object with a type", or the type's own fault). */
int ph_auth_type(struct json_object *auth, const char *where,
		 const char **type, struct ph_faults *faults);
/* A fault for each key of auth other than "type" and those in allowed
 * (NULL-terminated; entries may be NULL only at the end), naming type:
 * a misspelt key must not be ignored silently. Returns 0 or -1. */
int ph_auth_check_keys(struct json_object *auth, const char *where,
		       const char *type, const char *const *allowed,
		       struct ph_faults *faults);
/* auth.KEY, required, as a secret reference (literal, env:NAME,
 * file:PATH) resolved into *out: 0 or -1. */
int ph_auth_secret(struct json_object *auth, const char *where,
		   const char *key, struct ph_secret *out,
		   struct ph_faults *faults);

/* HTTP Basic (RFC 7617) from auth.user (non-empty, no ':') and
 * auth.password (a secret reference): *userpass becomes "user:password"
 * (free with ph_secret_clear). Returns 0 or -1 (faults added). */
int ph_basic_configure(struct json_object *auth, const char *where,
		       struct ph_secret *userpass, struct ph_faults *faults);

/* The credentials after "SCHEME " in the Authorization header (scheme
 * case-insensitive), white space around them removed, *len_r their
 * length; NULL if the header is absent or of another scheme. */
const char *ph_auth_param(const struct ph_request *req, const char *scheme,
			  size_t *len_r);

/* Does the request carry "Authorization: Basic <base64 of userpass>"
 * (padded base64 only)? Constant time in the credentials' content. */
bool ph_basic_check(const struct ph_secret *userpass,
		    const struct ph_request *req);

/* For "payhook sign": add the Authorization header for userpass.
 * Returns 0 or -1 (err set). */
int ph_basic_sign(const struct ph_secret *userpass, struct ph_signed *out,
		  struct ph_error *err);

#endif
