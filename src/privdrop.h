/* privdrop.h - refuse privileged setups; switch to an unprivileged user.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * payhook never needs root: the web server (or the --listen supervisor,
 * after opening its socket) runs it as an ordinary user that owns the spool
 * and state directories.
 */
#ifndef PH_PRIVDROP_H
#define PH_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

/* The reason this process must not serve requests, or NULL when it may.
 * A set-user-ID or set-group-ID start (real and effective ids differ) is
 * always refused; effective uid 0 is refused unless allow_root. */
const char *ph_privdrop_refusal(bool allow_root);

/* True when allow_root was asked for by the environment:
 * PAYHOOK_ALLOW_ROOT=1. */
bool ph_privdrop_env_allows_root(void);

/* Resolve user (a name or a numeric uid) and group (a name or a numeric
 * gid; NULL: the user's primary group) to ids. uid 0 and gid 0 are refused:
 * dropping privileges to root is not dropping them. Returns 0 or -1. */
int ph_privdrop_resolve(const char *user, const char *group, uid_t *uid_r,
			gid_t *gid_r, struct ph_error *err) PH_NONNULL(1, 3, 4);

/* Resolve a group by name or numeric gid. Returns 0 or -1. */
int ph_privdrop_resolve_group(const char *group, gid_t *gid_r,
			      struct ph_error *err) PH_NONNULL(1, 2);

/* Become uid/gid for good: setgroups (to gid alone), setgid, setuid, in that
 * order, then verify that the real, effective and saved ids all changed and
 * that setuid(0) fails. Without root this succeeds only when the process
 * already runs as exactly uid/gid. Returns 0 or -1 (the process must not go
 * on serving after -1). */
int ph_privdrop_switch(uid_t uid, gid_t gid, struct ph_error *err);

/* Administrative commands run by root act as the owner of the directory
 * they work in, so that what they create or move stays usable by the
 * responder, which runs as that owner. A directory owned by root, or any
 * directory when not root, changes nothing. A missing directory changes
 * nothing either, unless must_exist: then it is refused, because the
 * command would create it owned by root, and the responder could never
 * write to it. Returns 0 or -1. */
int ph_privdrop_become_owner(const char *dir, bool must_exist,
			     struct ph_error *err) PH_NONNULL(1);

#endif
