/* privdrop.c - refuse privileged setups; switch to an unprivileged user.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privdrop.h"

const char *
ph_privdrop_refusal(bool allow_root)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	/* A set-user-ID payhook would serve with someone else's rights on
	 * behalf of whoever ran it; nothing needs that, so refuse outright
	 * (as lighttpd does with issetugid). */
	if (getresuid(&ruid, &euid, &suid) < 0 ||
	    getresgid(&rgid, &egid, &sgid) < 0)
		return "cannot read the process's user and group ids";
	if (ruid != euid || rgid != egid)
		return "started set-user-ID or set-group-ID; payhook must "
		    "not be installed with those bits";
	if (euid == 0 && !allow_root)
		return "running as root; run it as an unprivileged user (the "
		    "web server's User, server.username or user, or payhook "
		    "--listen --user), or set PAYHOOK_ALLOW_ROOT=1";
	return NULL;
}

bool
ph_privdrop_env_allows_root(void)
{
	const char *v = getenv("PAYHOOK_ALLOW_ROOT");

	return v != NULL && strcmp(v, "1") == 0;
}

/* getpwnam and getgrnam return NULL for "not found" with errno 0, or with
 * ENOENT, ESRCH, EBADF or EPERM depending on the source (getpwnam(3)); a
 * static binary with no /etc/passwd gets ENOENT. True for those. */
static bool
lookup_not_found(int e)
{
	return e == 0 || e == ENOENT || e == ESRCH || e == EBADF ||
	    e == EPERM;
}

/* A decimal id in [0, 2^31), or -1. */
static long
numeric_id(const char *s)
{
	uint64_t v;

	if (ph_parse_uint(s, 0, INT32_MAX, &v) < 0)
		return -1;
	return (long)v;
}

int
ph_privdrop_resolve_group(const char *group, gid_t *gid_r,
			  struct ph_error *err)
{
	struct group *gr;
	long id;
	int e;

	errno = 0;
	gr = getgrnam(group);
	if (gr != NULL) {
		*gid_r = gr->gr_gid;
		return 0;
	}
	/* A numeric gid needs no group database: whatever the lookup's
	 * errno, it stands. */
	e = errno;
	id = numeric_id(group);
	if (id < 0) {
		if (!lookup_not_found(e))
			return ph_error_set(err, "getgrnam(%s) failed: %s",
					    group, strerror(e));
		return ph_error_set(err, "no such group: %s", group);
	}
	*gid_r = (gid_t)id;
	return 0;
}

int
ph_privdrop_resolve(const char *user, const char *group, uid_t *uid_r,
		    gid_t *gid_r, struct ph_error *err)
{
	struct passwd *pw;
	long id;
	int e;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		/* As for groups: a numeric uid stands without a lookup. */
		e = errno;
		id = numeric_id(user);
		if (id < 0 && !lookup_not_found(e))
			return ph_error_set(err, "getpwnam(%s) failed: %s",
					    user, strerror(e));
		if (id < 0)
			return ph_error_set(err, "no such user: %s", user);
		pw = getpwuid((uid_t)id);
		*uid_r = (uid_t)id;
	} else {
		*uid_r = pw->pw_uid;
	}
	if (group != NULL) {
		if (ph_privdrop_resolve_group(group, gid_r, err) < 0)
			return -1;
	} else if (pw != NULL) {
		*gid_r = pw->pw_gid;
	} else {
		return ph_error_set(err, "uid %s has no password entry: name "
				    "a group too", user);
	}
	if (*uid_r == 0)
		return ph_error_set(err, "will not switch to user %s: it is "
				    "uid 0", user);
	if (*gid_r == 0)
		return ph_error_set(err, "will not switch to group %s: it is "
				    "gid 0",
				    group != NULL ? group : "(primary)");
	return 0;
}

int
ph_privdrop_switch(uid_t uid, gid_t gid, struct ph_error *err)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (uid == 0 || gid == 0)
		return ph_error_set(err, "will not switch to uid %lu gid %lu",
				    (unsigned long)uid, (unsigned long)gid);
	if (geteuid() != 0) {
		if (getresuid(&ruid, &euid, &suid) == 0 &&
		    getresgid(&rgid, &egid, &sgid) == 0 &&
		    ruid == uid && euid == uid && suid == uid &&
		    rgid == gid && egid == gid && sgid == gid)
			return 0;
		return ph_error_set(err, "switching to uid %lu gid %lu needs "
				    "root", (unsigned long)uid,
				    (unsigned long)gid);
	}
	/* Groups first: once the uid is gone, so is the right to change
	 * them. Only gid remains; root's supplementary groups must not. */
	if (setgroups(1, &gid) < 0)
		return ph_error_set(err, "setgroups(%lu) failed: %s",
				    (unsigned long)gid, strerror(errno));
	if (setresgid(gid, gid, gid) < 0)
		return ph_error_set(err, "setresgid(%lu) failed: %s",
				    (unsigned long)gid, strerror(errno));
	if (setresuid(uid, uid, uid) < 0)
		return ph_error_set(err, "setresuid(%lu) failed: %s",
				    (unsigned long)uid, strerror(errno));
	if (getresuid(&ruid, &euid, &suid) < 0 ||
	    getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != uid || euid != uid || suid != uid ||
	    rgid != gid || egid != gid || sgid != gid)
		return ph_error_set(err, "ids did not change to uid %lu gid "
				    "%lu", (unsigned long)uid,
				    (unsigned long)gid);
	/* The proof that the drop is permanent (Dovecot's check). */
	if (setuid(0) == 0)
		return ph_error_set(err, "could regain root after dropping "
				    "privileges");
	return 0;
}

int
ph_privdrop_become_owner(const char *dir, bool must_exist,
			 struct ph_error *err)
{
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT && must_exist)
			return ph_error_set(err, "%s does not exist yet: run "
					    "this as the user payhook runs "
					    "as, or after its first delivery",
					    dir);
		return 0;
	}
	if (st.st_uid == 0)
		return 0;
	return ph_privdrop_switch(st.st_uid, st.st_gid, err);
}
