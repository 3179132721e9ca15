/* quarantine.c - copies of requests that reached a route but failed.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * See quarantine.h. What is redacted, and why it is enough: a credential
 * travels in a header or the query. Headers are redacted by name
 * (Authorization, Proxy-Authorization, Cookie, Set-Cookie and any name
 * holding one of secret_words) and by asking the route's adapter which
 * header carries its credential (ngn's "header", omno's header or HMAC
 * header, Payment Options' HMAC header), whatever it is called. Query
 * parameters are redacted by the same words ("token" among them) and when
 * their name is percent-encoded, since an encoded name could hide one.
 * A value that is redacted is replaced whole; nothing about it (not even
 * its length) is kept. The body is kept as sent: it is what the provider
 * needs to be asked about, and it holds no credential of ours.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "ids.h"
#include "log.h"
#include "provider.h"
#include "quarantine.h"
#include "spool.h"

#define QUARANTINE_DIR "quarantine"

/* A header or query parameter whose lower-case name holds one of these is
 * a credential (authorization and proxy-authorization hold "auth"). */
static const char *const secret_words[] = {
	"signature", "token", "secret", "auth", "key", "cookie", "password",
	"credential",
};

/* UTF-8 */

/* Length of the longest prefix of s that is valid UTF-8 (RFC 3629, as
 * ph_utf8_char_len() judges each character). */
static size_t
utf8_valid_prefix(const uint8_t *s, size_t len)
{
	size_t i = 0, n;

	while (i < len && (n = ph_utf8_char_len(s + i, len - i)) > 0)
		i += n;
	return i;
}

/* s with every byte that is not part of valid UTF-8 replaced by U+FFFD,
 * so that a header sent in Latin-1 still makes valid JSON. */
static char *
utf8_lossy(const char *s)
{
	return ph_utf8_lossy(s, strlen(s), NULL);
}

static void
add_text(struct json_object *obj, const char *key, const char *value)
{
	char *v;

	if (value == NULL) {
		json_object_object_add(obj, key, NULL);
		return;
	}
	v = utf8_lossy(value);
	json_object_object_add(obj, key, json_object_new_string(v));
	free(v);
}

/* Redaction */

/* name (lower case) holds one of secret_words. */
static bool
has_secret_word(const char *name)
{
	for (size_t i = 0; i < PH_N_ELEMENTS(secret_words); i++) {
		if (strstr(name, secret_words[i]) != NULL)
			return true;
	}
	return false;
}

/* name of len bytes in the form headers are shown: lower case, '-' for
 * '_' (CGI turns X-Signature into HTTP_X_SIGNATURE). */
static char *
header_form(const char *name, size_t len)
{
	char *out = ph_xstrndup(name, len);

	for (char *p = out; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
		else if (*p == '_')
			*p = '-';
	}
	return out;
}

static bool
header_is_secret(const char *name, const char *credential)
{
	bool is;

	if (has_secret_word(name))
		return true;
	if (credential == NULL)
		return false;
	credential = header_form(credential, strlen(credential));
	is = strcmp(name, credential) == 0;
	free((char *)credential);
	return is;
}

/* The query with the value of every credential-like parameter replaced. */
static char *
redact_query(const char *q)
{
	/* At worst every byte is a '=' followed by the marker. */
	char *out = ph_xmalloc(strlen(q) * sizeof(PH_QUARANTINE_REDACTED) + 1);
	size_t o = 0;

	while (*q != '\0') {
		size_t len = strcspn(q, "&;");
		const char *eq = memchr(q, '=', len);
		size_t key_len = eq != NULL ? (size_t)(eq - q) : len;
		char *name = header_form(q, key_len);
		bool secret = has_secret_word(name) ||
		    memchr(q, '%', key_len) != NULL;

		free(name);
		if (secret && eq != NULL) {
			memcpy(out + o, q, key_len + 1);
			o += key_len + 1;
			memcpy(out + o, PH_QUARANTINE_REDACTED,
			       sizeof(PH_QUARANTINE_REDACTED) - 1);
			o += sizeof(PH_QUARANTINE_REDACTED) - 1;
		} else {
			memcpy(out + o, q, len);
			o += len;
		}
		q += len;
		if (*q != '\0')
			out[o++] = *q++;
	}
	out[o] = '\0';
	return out;
}

struct header {
	char *name;
	const char *value;
};

static int
header_cmp(const void *a, const void *b)
{
	return strcmp(((const struct header *)a)->name,
		      ((const struct header *)b)->name);
}

/* The request's headers by name, sorted: HTTP_* parameters plus
 * CONTENT_TYPE and CONTENT_LENGTH, credentials redacted. */
static struct json_object *
headers_object(const struct ph_route *route, const struct ph_request *req)
{
	const char *credential = route->provider->credential_header != NULL ?
	    route->provider->credential_header(route) : NULL;
	struct json_object *obj = json_object_new_object();
	struct header *h = NULL;
	size_t n = 0;

	for (char **e = req->envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '='), *name = *e;

		if (eq == NULL)
			continue;
		if (strncmp(name, "HTTP_", 5) == 0 && eq > name + 5)
			name += 5;
		else if (strncmp(name, "CONTENT_TYPE=", 13) != 0 &&
			 strncmp(name, "CONTENT_LENGTH=", 15) != 0)
			continue;
		h = ph_xrealloc(h, (n + 1) * sizeof(*h));
		h[n].name = header_form(name, (size_t)(eq - name));
		h[n].value = eq + 1;
		n++;
	}
	if (n > 0)
		qsort(h, n, sizeof(*h), header_cmp);
	for (size_t i = 0; i < n; i++) {
		if (header_is_secret(h[i].name, credential))
			add_text(obj, h[i].name, PH_QUARANTINE_REDACTED);
		else
			add_text(obj, h[i].name, h[i].value);
		free(h[i].name);
	}
	free(h);
	return obj;
}

/* The body, at most PH_QUARANTINE_BODY_MAX bytes of it, as a JSON string
 * when it is valid UTF-8, else in base64. */
static void
add_body(struct json_object *obj, const struct ph_request *req)
{
	const uint8_t *b = req->body != NULL ? req->body : (const uint8_t *)"";
	size_t keep = req->body_len, backed = 0;
	char *b64;

	if (keep > PH_QUARANTINE_BODY_MAX) {
		keep = PH_QUARANTINE_BODY_MAX;
		/* Cut before a character, not inside one. */
		while (keep > 0 && backed < 3 && (b[keep] & 0xc0) == 0x80) {
			keep--;
			backed++;
		}
	}
	json_object_object_add(obj, "body_length",
			       json_object_new_int64((int64_t)req->body_len));
	json_object_object_add(obj, "body_truncated",
			       json_object_new_boolean(keep < req->body_len));
	if (utf8_valid_prefix(b, keep) == keep) {
		json_object_object_add(obj, "body_encoding",
				       json_object_new_string("utf-8"));
		json_object_object_add(obj, "body", json_object_new_string_len(
				       (const char *)b, (int)keep));
		return;
	}
	b64 = ph_xmalloc(4 * ((keep + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, b, (int)keep);
	json_object_object_add(obj, "body_encoding",
			       json_object_new_string("base64"));
	json_object_object_add(obj, "body", json_object_new_string(b64));
	free(b64);
}

char *
ph_quarantine_entry(const struct ph_route *route, const struct ph_request *req,
		    const char *reason, int status, const struct timeval *now,
		    const char *id, size_t *len_r)
{
	struct json_object *obj = json_object_new_object();
	char when[PH_RFC3339_LEN + 1], *query, *out;
	const char *text;
	size_t len;

	ph_time_rfc3339(now, when);
	query = redact_query(req->query);
	add_text(obj, "schema", PH_QUARANTINE_SCHEMA);
	add_text(obj, "id", id);
	add_text(obj, "received_at", when);
	add_text(obj, "route", route->name);
	add_text(obj, "provider", route->provider->name);
	add_text(obj, "reason", reason);
	json_object_object_add(obj, "status", json_object_new_int(status));
	add_text(obj, "remote_addr", ph_request_param(req, "REMOTE_ADDR"));
	add_text(obj, "method", req->method);
	add_text(obj, "path", req->path);
	add_text(obj, "query", query);
	json_object_object_add(obj, "headers", headers_object(route, req));
	add_body(obj, req);
	free(query);

	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_SPACED |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	out = ph_xmalloc(len + 2);
	memcpy(out, text, len);
	out[len++] = '\n';
	out[len] = '\0';
	json_object_put(obj);
	*len_r = len;
	return out;
}

/* The directory */

/* Open <spool_dir>/quarantine, creating both if need be (spool.h checks).
 * Returns a descriptor, -1 or PH_SPOOL_UNSAFE; without create, a missing
 * directory is -1 with errno ENOENT. */
static int
quarantine_open(const char *spool_dir, bool create, struct ph_error *err)
{
	char shown[4096];
	int sfd, qfd, e;

	sfd = ph_spool_open_dir(AT_FDCWD, spool_dir, spool_dir, create, NULL,
				err);
	if (sfd < 0)
		return sfd;
	snprintf(shown, sizeof(shown), "%s/%s", spool_dir, QUARANTINE_DIR);
	qfd = ph_spool_open_dir(sfd, QUARANTINE_DIR, shown, create, NULL, err);
	e = errno;
	close(sfd);
	errno = e;
	return qfd;
}

struct entry {
	char *name;
	uint64_t size;
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name,
		      ((const struct entry *)b)->name);
}

static void
entries_free(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Sizes of the entries this process saw at its last trim, sorted by name.
 * A worker trims after every entry it writes; stat()ing each of up to
 * quarantine_max_files entries every time would make each failing request
 * pay for them all again. An entry's name is unique (a ULID) and its file
 * never changes once written, so a size remembered by name stays right;
 * names no longer listed are forgotten at the next trim. Not freed at
 * exit: still reachable, like any process-lifetime cache. */
static struct entry *known;
static size_t n_known;

/* The entries (regular files "*.json", not hidden) of the quarantine open
 * at qfd, oldest first. Sizes come from the cache above when it has the
 * name, else from fstatat(). */
static int
scan(int qfd, struct entry **v_r, size_t *n_r, struct ph_error *err)
{
	struct entry *v = NULL, *hit, key;
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int fd;

	fd = openat(qfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		ph_error_set(err, "opendir(quarantine) failed: %s",
			     strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json") != 0 ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		v = ph_xrealloc(v, (n + 1) * sizeof(*v));
		v[n].name = ph_xstrdup(de->d_name);
		v[n].size = UINT64_MAX;
		if (de->d_type == DT_REG && n_known > 0) {
			key.name = v[n].name;
			hit = bsearch(&key, known, n_known, sizeof(*known),
				      entry_cmp);
			if (hit != NULL)
				v[n].size = hit->size;
		}
		if (v[n].size == UINT64_MAX) {
			struct stat st;

			if (fstatat(qfd, de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode)) {
				free(v[n].name);
				continue;
			}
			v[n].size = (uint64_t)st.st_size;
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), entry_cmp);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* Drop the oldest entries beyond the caps; remember the rest's sizes. */
static int
trim(int qfd, size_t max_files, uint64_t max_bytes, struct ph_error *err)
{
	struct entry *v;
	uint64_t bytes = 0;
	size_t n, i;
	int ret = 0;

	if (scan(qfd, &v, &n, err) < 0)
		return -1;
	for (i = 0; i < n; i++)
		bytes += v[i].size;
	for (i = 0; i < n && (n - i > max_files || bytes > max_bytes); i++) {
		/* Another worker trimming at the same time may have taken
		 * it already: ENOENT is fine. */
		if (unlinkat(qfd, v[i].name, 0) < 0 && errno != ENOENT) {
			ret = ph_error_set(err, "unlink(quarantine/%s) "
					   "failed: %s", v[i].name,
					   strerror(errno));
			break;
		}
		bytes -= v[i].size;
		free(v[i].name);
	}
	entries_free(known, n_known);
	n_known = n - i;
	known = v;
	memmove(known, v + i, n_known * sizeof(*v));
	return ret;
}

int
ph_quarantine_store(const char *spool_dir, size_t max_files,
		    uint64_t max_bytes, const char *name, const void *data,
		    size_t len, struct ph_error *err)
{
	int qfd, fd, ret = 0;

	if ((qfd = quarantine_open(spool_dir, true, err)) < 0)
		return qfd;
	fd = openat(qfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = ph_error_set(err, "open(%s/%s/%s) failed: %s", spool_dir,
				   QUARANTINE_DIR, name, strerror(errno));
	} else {
		if (ph_write_all(fd, data, len) < 0) {
			ret = ph_error_set(err, "write(%s/%s/%s) failed: %s",
					   spool_dir, QUARANTINE_DIR, name,
					   strerror(errno));
			unlinkat(qfd, name, 0);
		}
		close(fd);
	}
	if (trim(qfd, max_files, max_bytes, ret < 0 ? NULL : err) < 0)
		ret = -1;
	close(qfd);
	return ret;
}

void
ph_quarantine_keep(const struct ph_config *cfg, const struct ph_route *route,
		   const struct ph_request *req, const char *reason,
		   int status)
{
	char id[PH_ULID_LEN + 1], stamp[PH_STAMP_LEN + 1];
	char name[PH_STAMP_LEN + PH_ULID_LEN + 8];
	struct ph_error err;
	struct timeval now;
	size_t len;
	char *data;

	if (cfg->quarantine_max_files == 0 || cfg->quarantine_max_bytes == 0)
		return;
	gettimeofday(&now, NULL);
	if (ph_ulid_generate(&now, id) < 0) {
		ph_log_error("quarantine: no entry kept: cannot make an id");
		return;
	}
	ph_time_stamp(&now, stamp);
	snprintf(name, sizeof(name), "%s-%s.json", stamp, id);
	data = ph_quarantine_entry(route, req, reason, status, &now, id, &len);
	if (ph_quarantine_store(cfg->spool_dir, cfg->quarantine_max_files,
				cfg->quarantine_max_bytes, name, data, len,
				&err) < 0)
		ph_log_error("quarantine: %s", err.msg);
	free(data);
}

/* Commands */

/* The quarantine for a command, with its entries oldest first in *v_r
 * and *n_r (the caller frees them and closes the descriptor), or -1 (err
 * filled). *empty_r says the quarantine does not exist yet, which is no
 * error: there is nothing in it. */
static int
command_open(const char *spool_dir, struct entry **v_r, size_t *n_r,
	     bool *empty_r, struct ph_error *err)
{
	int qfd = quarantine_open(spool_dir, false, err);

	*empty_r = qfd == -1 && errno == ENOENT;
	if (qfd < 0)
		return qfd;
	if (scan(qfd, v_r, n_r, err) < 0) {
		close(qfd);
		return -1;
	}
	return qfd;
}

static const char *
field(struct json_object *obj, const char *key, char *buf, size_t size)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "-";
	return ph_log_sanitize(json_object_get_string(v), buf, size);
}

int
ph_quarantine_list(const char *spool_dir, FILE *out, struct ph_error *err)
{
	char t[64], r[128], a[96], why[64], id[64];
	struct entry *v;
	bool empty;
	size_t n;
	int qfd;

	if ((qfd = command_open(spool_dir, &v, &n, &empty, err)) < 0)
		return empty ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *obj = NULL;
		int fd = openat(qfd, v[i].name, O_RDONLY | O_NOFOLLOW |
				O_CLOEXEC);

		if (fd >= 0) {
			obj = json_object_from_fd(fd);
			close(fd);
		}
		if (obj == NULL) {
			fprintf(out, "- - - unreadable %s\n",
				ph_log_sanitize(v[i].name, id, sizeof(id)));
			continue;
		}
		fprintf(out, "%s %s %s %s %s\n",
			field(obj, "received_at", t, sizeof(t)),
			field(obj, "route", r, sizeof(r)),
			field(obj, "remote_addr", a, sizeof(a)),
			field(obj, "reason", why, sizeof(why)),
			field(obj, "id", id, sizeof(id)));
		json_object_put(obj);
	}
	entries_free(v, n);
	close(qfd);
	return 0;
}

/* Copy the file name under qfd to out. */
static int
copy_out(int qfd, const char *name, FILE *out, struct ph_error *err)
{
	char buf[8192];
	ssize_t r;
	int fd;

	fd = openat(qfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ph_error_set(err, "open(quarantine/%s) failed: %s",
				    name, strerror(errno));
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ph_error_set(err, "read(quarantine/%s) failed: %s",
				     name, strerror(errno));
			close(fd);
			return -1;
		}
		fwrite(buf, 1, (size_t)r, out);
	}
	close(fd);
	return 0;
}

int
ph_quarantine_show(const char *spool_dir, const char *id, FILE *out,
		   struct ph_error *err)
{
	char suffix[PH_ULID_LEN + 8];
	struct entry *v;
	bool empty;
	size_t n, i;
	int qfd, ret;

	if (strlen(id) != PH_ULID_LEN || !ph_str_of(id, ""))
		return ph_error_set(err, "not an entry id (26 letters and "
				    "digits, as 'payhook quarantine list' "
				    "shows): %.40s", id);
	snprintf(suffix, sizeof(suffix), "-%s.json", id);
	if ((qfd = command_open(spool_dir, &v, &n, &empty, err)) < 0)
		return empty ? ph_error_set(err, "no quarantine entry %s",
					    id) : -1;
	for (i = 0; i < n; i++) {
		size_t len = strlen(v[i].name), slen = strlen(suffix);

		if (len > slen && strcmp(v[i].name + len - slen, suffix) == 0)
			break;
	}
	if (i == n)
		ret = ph_error_set(err, "no quarantine entry %s", id);
	else
		ret = copy_out(qfd, v[i].name, out, err);
	entries_free(v, n);
	close(qfd);
	return ret;
}

int
ph_quarantine_purge(const char *spool_dir, long *n_r, struct ph_error *err)
{
	struct entry *v;
	bool empty;
	size_t n;
	int qfd, ret = 0;

	*n_r = 0;
	if ((qfd = command_open(spool_dir, &v, &n, &empty, err)) < 0)
		return empty ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		if (unlinkat(qfd, v[i].name, 0) == 0)
			(*n_r)++;
		else if (errno != ENOENT && ret == 0)
			ret = ph_error_set(err, "unlink(quarantine/%s) failed: "
					   "%s", v[i].name, strerror(errno));
	}
	entries_free(v, n);
	close(qfd);
	return ret;
}
