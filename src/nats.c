/* nats.c - the "nats" configuration, and publishing events to JetStream.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * See nats.h for the subject, headers and stream limits, and why a second
 * publish of one dedup key is refused by the server itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#ifdef HAVE_NATS
#include <nats/nats.h>
#endif

#include "conf.h"
#include "log.h"
#include "nats.h"

/* Configuration */

static const char *const nats_keys[] = {
	"servers", "stream", "subject_prefix", "replicas",
	"duplicate_window", "user", "password", "token", "creds_file", "tls",
};

bool
ph_nats_available(void)
{
#ifdef HAVE_NATS
	return true;
#else
	return false;
#endif
}

/* One subject token or several joined by single dots: A-Z a-z 0-9 _ -. */
static bool
subject_tokens_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return false;
	return ph_str_of(s, "._-");
}

/* A string value without NUL bytes, or NULL. */
static const char *
nats_cstring(struct json_object *v)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static void
load_servers(struct json_object *obj, struct ph_nats_config *nc,
	     struct ph_faults *f)
{
	struct json_object *v;
	size_t n;

	if (!json_object_object_get_ex(obj, "servers", &v)) {
		ph_faults_add(f, "key 'nats.servers': missing (required)");
		return;
	}
	n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;
	if (n == 0 || n > PH_NATS_MAX_SERVERS) {
		ph_faults_add(f, "key 'nats.servers': must be a list of 1 to "
			      PH_STRINGIFY(PH_NATS_MAX_SERVERS) " URLs "
			      "nats://HOST:PORT");
		return;
	}
	nc->servers = ph_xcalloc(n, sizeof(*nc->servers));
	for (size_t i = 0; i < n; i++) {
		const char *s = nats_cstring(json_object_array_get_idx(v, i));
		const char *rest, *colon;
		uint64_t port;

		rest = s == NULL ? NULL :
		    strncmp(s, "nats://", 7) == 0 ? s + 7 :
		    strncmp(s, "tls://", 6) == 0 ? s + 6 : NULL;
		colon = rest == NULL ? NULL : strrchr(rest, ':');
		if (colon == NULL || colon == rest ||
		    ph_parse_uint(colon + 1, 1, 65535, &port) < 0 ||
		    strpbrk(rest, "/@ \t\r\n") != NULL) {
			ph_faults_add(f, "key 'nats.servers'[%zu]: must be a "
				      "URL nats://HOST:PORT (or tls://; "
				      "credentials go in 'user', 'password', "
				      "'token' or 'creds_file')", i);
			continue;
		}
		nc->servers[nc->n_servers++] = ph_xstrdup(s);
	}
}

/* An optional string key made of subject-safe characters. */
static void
load_name(struct json_object *obj, const char *key, const char *dflt,
	  const char *punct, char **out, struct ph_faults *f)
{
	struct json_object *v;
	const char *s = dflt;

	if (json_object_object_get_ex(obj, key, &v)) {
		s = nats_cstring(v);
		if (s == NULL || strlen(s) > 200 ||
		    (punct[0] == '.' ? !subject_tokens_ok(s) :
		     !ph_str_of(s, punct))) {
			ph_faults_add(f, "key 'nats.%s': must be a string of "
				      "A-Z a-z 0-9 _ -%s, at most 200 long",
				      key, punct[0] == '.' ?
				      " and single dots between them" : "");
			return;
		}
	}
	*out = ph_xstrdup(s);
}

static void
load_secret(struct json_object *obj, const char *key, struct ph_secret *out,
	    struct ph_faults *f)
{
	struct json_object *v;
	char label[64];

	if (!json_object_object_get_ex(obj, key, &v))
		return;
	snprintf(label, sizeof(label), "key 'nats.%s'", key);
	(void)ph_config_secret(v, label, out, f);
	if (out->data != NULL && out->len == 0)
		ph_faults_add(f, "%s: must not be empty", label);
}

/* An absolute path of a file payhook can read, for the client library. */
static void
load_path(struct json_object *v, const char *label, char **out,
	  struct ph_faults *f)
{
	const char *s = nats_cstring(v);

	if (s != NULL && strncmp(s, "file:", 5) == 0)
		s += 5;
	if (s == NULL || s[0] != '/') {
		ph_faults_add(f, "%s: must be an absolute path", label);
		return;
	}
	if (access(s, R_OK) < 0) {
		ph_faults_add(f, "%s: cannot read %s", label, s);
		return;
	}
	*out = ph_xstrdup(s);
}

static void
load_auth(struct json_object *obj, struct ph_nats_config *nc,
	  struct ph_faults *f)
{
	struct json_object *v;
	int ways;

	load_secret(obj, "user", &nc->user, f);
	load_secret(obj, "password", &nc->password, f);
	load_secret(obj, "token", &nc->token, f);
	if (json_object_object_get_ex(obj, "creds_file", &v))
		load_path(v, "key 'nats.creds_file'", &nc->creds_file, f);
	if ((nc->user.data != NULL) != (nc->password.data != NULL))
		ph_faults_add(f, "key 'nats.%s': needs 'nats.%s' too",
			      nc->user.data != NULL ? "user" : "password",
			      nc->user.data != NULL ? "password" : "user");
	ways = (nc->user.data != NULL) + (nc->token.data != NULL) +
	    (nc->creds_file != NULL);
	if (ways > 1)
		ph_faults_add(f, "key 'nats': give one of 'user' and "
			      "'password', 'token' or 'creds_file'");
}

static void
load_tls(struct json_object *obj, struct ph_nats_config *nc,
	 struct ph_faults *f)
{
	struct json_object *v, *ca;

	if (!json_object_object_get_ex(obj, "tls", &v))
		return;
	if (!json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) != 1 ||
	    !json_object_object_get_ex(v, "ca_file", &ca)) {
		ph_faults_add(f, "key 'nats.tls': must be an object "
			      "{ \"ca_file\": PATH }");
		return;
	}
	load_path(ca, "key 'nats.tls.ca_file'", &nc->ca_file, f);
}

int
ph_nats_config_load(struct json_object *v, struct ph_nats_config **out,
		    struct ph_faults *f)
{
	struct ph_nats_config *nc;
	struct json_object *w;
	size_t before = f->count;
	uint64_t replicas = PH_NATS_DEFAULT_REPLICAS;
	int64_t n;

	*out = NULL;
	if (!json_object_is_type(v, json_type_object)) {
		ph_faults_add(f, "key 'nats': must be an object");
		return -1;
	}
	json_object_object_foreach(v, key, val) {
		size_t i;
		char safe[80];

		(void)val;
		for (i = 0; i < PH_N_ELEMENTS(nats_keys); i++)
			if (strcmp(key, nats_keys[i]) == 0)
				break;
		if (i == PH_N_ELEMENTS(nats_keys))
			ph_faults_add(f, "key 'nats.%s': unknown key",
				      ph_log_sanitize(key, safe, sizeof(safe)));
	}
	nc = ph_xcalloc(1, sizeof(*nc));
	nc->duplicate_window_s = PH_NATS_DEFAULT_WINDOW_S;
	load_servers(v, nc, f);
	load_name(v, "stream", PH_NATS_DEFAULT_STREAM, "_-", &nc->stream, f);
	load_name(v, "subject_prefix", PH_NATS_DEFAULT_PREFIX, "._-",
		  &nc->subject_prefix, f);
	if (json_object_object_get_ex(v, "replicas", &w)) {
		n = json_object_is_type(w, json_type_int) ?
		    json_object_get_int64(w) : 0;
		if (n < 1 || n > 5)
			ph_faults_add(f, "key 'nats.replicas': must be an "
				      "integer from 1 to 5");
		else
			replicas = (uint64_t)n;
	}
	nc->replicas = (unsigned)replicas;
	if (json_object_object_get_ex(v, "duplicate_window", &w)) {
		const char *s = nats_cstring(w);

		/* JetStream keeps the ids of the window in memory. */
		if (s == NULL || ph_parse_duration(s, 1, 7 * 86400,
						   &nc->duplicate_window_s) < 0)
			ph_faults_add(f, "key 'nats.duplicate_window': must be "
				      "a duration from 1s to 7d, such as "
				      "\"2m\" or \"24h\"");
	}
	load_auth(v, nc, f);
	load_tls(v, nc, f);
	if (f->count != before) {
		ph_nats_config_free(&nc);
		return -1;
	}
	*out = nc;
	return 0;
}

void
ph_nats_config_free(struct ph_nats_config **ncp)
{
	struct ph_nats_config *nc = *ncp;

	if (nc == NULL)
		return;
	for (size_t i = 0; i < nc->n_servers; i++)
		free(nc->servers[i]);
	free(nc->servers);
	free(nc->stream);
	free(nc->subject_prefix);
	ph_secret_clear(&nc->user);
	ph_secret_clear(&nc->password);
	ph_secret_clear(&nc->token);
	free(nc->creds_file);
	free(nc->ca_file);
	free(nc);
	*ncp = NULL;
}

/* hex of SHA-256(s) into out (65 bytes). */
static void
sha256_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	/* Fails only when libcrypto cannot allocate: same policy as OOM. */
	if (EVP_Digest(s, strlen(s), md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len != 32) {
		ph_log_error("EVP_Digest(sha256) failed");
		abort();
	}
	ph_hex_encode(md, 32, out);
}

char *
ph_nats_subject(const struct ph_nats_config *nc, const char *route,
		const char *type, const char *dedup_key, struct ph_error *err)
{
	char hex[65];

	if (!subject_tokens_ok(route) || !subject_tokens_ok(type)) {
		ph_error_set(err, "route or type is not made of subject tokens "
			     "(A-Z a-z 0-9 _ - and single dots)");
		return NULL;
	}
	sha256_hex(dedup_key, hex);
	return ph_xasprintf("%s.%s.%s.%.*s", nc->subject_prefix, route, type,
			    PH_NATS_KEY_TOKEN_LEN, hex);
}

/* The client */

#ifndef HAVE_NATS

int
ph_nats_open(const struct ph_nats_config *nc, int64_t connect_timeout_ms,
	     struct ph_nats **out, struct ph_error *err)
{
	(void)nc;
	(void)connect_timeout_ms;
	*out = NULL;
	return ph_error_set(err, "%s", PH_NATS_MISSING);
}

void
ph_nats_close(struct ph_nats **n)
{
	*n = NULL;
}

bool
ph_nats_connected(const struct ph_nats *n)
{
	(void)n;
	return false;
}

int
ph_nats_publish(struct ph_nats *n, const char *route, const char *type,
		const char *dedup_key, const char *event_id, const void *data,
		size_t len, int64_t timeout_ms, struct ph_error *err)
{
	(void)n; (void)route; (void)type; (void)dedup_key; (void)event_id;
	(void)data; (void)len; (void)timeout_ms;
	ph_error_set(err, "%s", PH_NATS_MISSING);
	return PH_NATS_FAILED;
}

#else /* HAVE_NATS */

struct ph_nats {
	const struct ph_nats_config *nc;	/* borrowed */
	natsConnection *conn;
	jsCtx *js;
};

/* The server's text for a publish refused because the subject already
 * holds its one message (discard new per subject): nats-server's
 * ErrMaxMsgsPerSubject, sent with error code 10077 (JSStreamStoreFailed),
 * which other storage failures share. */
#define REFUSED_PER_SUBJECT "maximum messages per subject exceeded"

/* The library's last error on this thread, without the "(file.c:123): "
 * it begins with. */
static const char *
last_error(void)
{
	const char *text = nats_GetLastError(NULL), *p;

	if (text != NULL && text[0] == '(' && (p = strstr(text, "): ")) != NULL)
		text = p + 3;
	return text;
}

/* err from the library's last error on this thread. */
static int
nats_fail(struct ph_error *err, const char *what, natsStatus s,
	  jsErrCode jerr)
{
	const char *text = last_error();

	if (jerr != 0)
		return ph_error_set(err, "%s: %s (JetStream error %d)", what,
				    text != NULL && *text != '\0' ? text :
				    natsStatus_GetText(s), (int)jerr);
	return ph_error_set(err, "%s: %s", what, text != NULL && *text != '\0'
			    ? text : natsStatus_GetText(s));
}

static natsStatus
set_options(natsOptions *o, const struct ph_nats_config *nc,
	    int64_t connect_timeout_ms)
{
	natsStatus s;

	s = natsOptions_SetServers(o, (const char **)nc->servers,
				   (int)nc->n_servers);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, connect_timeout_ms);
	/* Once connected, reconnect for ever, every half second per server:
	 * a publish while reconnecting fails at once (ph_nats_publish). */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 500);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, 5000);
	if (s == NATS_OK && nc->user.data != NULL)
		s = natsOptions_SetUserInfo(o, (const char *)nc->user.data,
					    (const char *)nc->password.data);
	if (s == NATS_OK && nc->token.data != NULL)
		s = natsOptions_SetToken(o, (const char *)nc->token.data);
	if (s == NATS_OK && nc->creds_file != NULL)
		s = natsOptions_SetUserCredentialsFromFiles(o, nc->creds_file,
							    NULL);
	if (s == NATS_OK && nc->ca_file != NULL) {
		s = natsOptions_SetSecure(o, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(o,
								 nc->ca_file);
	}
	return s;
}

/* What about an existing stream would break the guarantees, appended to
 * buf as "; "-separated phrases. Replicas and the duplicate window are
 * the operator's to tune: logged, not refused. */
static void
stream_differs(const struct ph_nats_config *nc, const jsStreamConfig *sc,
	       char *buf, size_t size)
{
	char want[256];
	bool subject = false;
	size_t off = 0;

#define DIFF(...) do { if (off < size) off += (size_t)snprintf(buf + off, \
	size - off, "%s", off > 0 ? "; " : ""); if (off < size) off += \
	(size_t)snprintf(buf + off, size - off, __VA_ARGS__); } while (0)
	snprintf(want, sizeof(want), "%s.>", nc->subject_prefix);
	for (int i = 0; i < sc->SubjectsLen; i++)
		if (strcmp(sc->Subjects[i], want) == 0)
			subject = true;
	if (!subject)
		DIFF("subjects do not include %s", want);
	if (sc->MaxMsgsPerSubject != 1)
		DIFF("max_msgs_per_subject is %lld, not 1",
		     (long long)sc->MaxMsgsPerSubject);
	if (sc->Discard != js_DiscardNew || !sc->DiscardNewPerSubject)
		DIFF("discard is not new with discard_new_per_subject");
	if (sc->Storage != js_FileStorage)
		DIFF("storage is not file");
	if (sc->Retention != js_LimitsPolicy)
		DIFF("retention is not limits (acknowledged messages would "
		     "be deleted, and their keys forgotten)");
#undef DIFF
	buf[off < size ? off : size - 1] = '\0';
}

static int
ensure_stream(struct ph_nats *n, struct ph_error *err)
{
	const struct ph_nats_config *nc = n->nc;
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	char subject[256], differs[512];
	const char *subjects[1] = { subject };
	natsStatus s;

	s = js_GetStreamInfo(&si, n->js, nc->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		snprintf(subject, sizeof(subject), "%s.>", nc->subject_prefix);
		jsStreamConfig_Init(&sc);
		sc.Name = nc->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Retention = js_LimitsPolicy;
		sc.Storage = js_FileStorage;
		sc.Replicas = nc->replicas;
		sc.MaxMsgsPerSubject = 1;
		sc.Discard = js_DiscardNew;
		sc.DiscardNewPerSubject = true;
		sc.Duplicates = (int64_t)nc->duplicate_window_s * 1000000000;
		jerr = 0;
		s = js_AddStream(&si, n->js, &sc, NULL, &jerr);
		/* Another host may have created it meanwhile: judge that. */
		if (s != NATS_OK && jerr == JSStreamNameExistErr)
			s = js_GetStreamInfo(&si, n->js, nc->stream, NULL,
					     &jerr);
		if (s != NATS_OK)
			return nats_fail(err, "cannot create the stream", s,
					 jerr);
		ph_log_info("nats: created stream %s (%s, %u replicas)",
			    nc->stream, subject, nc->replicas);
	} else if (s != NATS_OK) {
		return nats_fail(err, "cannot look up the stream", s, jerr);
	}
	stream_differs(nc, si->Config, differs, sizeof(differs));
	if (differs[0] == '\0' && si->Config->Replicas != nc->replicas)
		ph_log_warn("nats: stream %s has %lld replicas, configured %u",
			    nc->stream, (long long)si->Config->Replicas,
			    nc->replicas);
	jsStreamInfo_Destroy(si);
	if (differs[0] != '\0')
		return ph_error_set(err, "stream %s does not fit payhook: %s",
				    nc->stream, differs);
	return 0;
}

int
ph_nats_open(const struct ph_nats_config *nc, int64_t connect_timeout_ms,
	     struct ph_nats **out, struct ph_error *err)
{
	struct ph_nats *n = ph_xcalloc(1, sizeof(*n));
	natsOptions *o = NULL;
	natsStatus s;

	*out = NULL;
	n->nc = nc;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = set_options(o, nc, connect_timeout_ms);
	if (s != NATS_OK) {
		nats_fail(err, "NATS options", s, 0);
		goto fail;
	}
	s = natsConnection_Connect(&n->conn, o);
	if (s != NATS_OK) {
		nats_fail(err, "cannot connect to NATS", s, 0);
		goto fail;
	}
	s = natsConnection_JetStream(&n->js, n->conn, NULL);
	if (s != NATS_OK) {
		nats_fail(err, "JetStream", s, 0);
		goto fail;
	}
	if (ensure_stream(n, err) < 0)
		goto fail;
	natsOptions_Destroy(o);
	*out = n;
	return 0;
fail:
	natsOptions_Destroy(o);
	ph_nats_close(&n);
	return -1;
}

void
ph_nats_close(struct ph_nats **np)
{
	struct ph_nats *n = *np;

	if (n == NULL)
		return;
	jsCtx_Destroy(n->js);
	natsConnection_Destroy(n->conn);
	free(n);
	*np = NULL;
}

bool
ph_nats_connected(const struct ph_nats *n)
{
	return natsConnection_Status(n->conn) == NATS_CONN_STATUS_CONNECTED;
}

jsCtx *
ph_nats_js(struct ph_nats *n)
{
	return n->js;
}

/* Nats-Msg-Id: the dedup key itself (it begins with the route's name)
 * when it is printable ASCII of a sensible length, else the route and the
 * key's SHA-256, so a header line never carries control bytes. */
static char *
msg_id(const char *route, const char *dedup_key)
{
	char hex[65];
	size_t n = strlen(dedup_key);
	bool plain = n > 0 && n <= 512;

	for (const char *p = dedup_key; plain && *p != '\0'; p++)
		plain = *p >= 0x20 && *p < 0x7f;
	if (plain)
		return ph_xstrdup(dedup_key);
	sha256_hex(dedup_key, hex);
	return ph_xasprintf("%s:#key-sha256:%s", route, hex);
}

int
ph_nats_publish(struct ph_nats *n, const char *route, const char *type,
		const char *dedup_key, const char *event_id, const void *data,
		size_t len, int64_t timeout_ms, struct ph_error *err)
{
	char *subject, *id = NULL;
	natsMsg *msg = NULL;
	jsPubAck *ack = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus s;
	int ret = PH_NATS_FAILED;

	if (!ph_nats_connected(n)) {
		ph_error_set(err, "not connected to NATS (reconnecting)");
		return PH_NATS_FAILED;
	}
	if ((subject = ph_nats_subject(n->nc, route, type, dedup_key,
				       err)) == NULL)
		return PH_NATS_FAILED;
	id = msg_id(route, dedup_key);
	s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Payhook-Event-Id", event_id);
	if (s != NATS_OK) {
		nats_fail(err, "NATS message", s, 0);
		goto out;
	}
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.MaxWait = timeout_ms;
	s = js_PublishMsg(&ack, n->js, msg, &po, &jerr);
	if (s == NATS_OK) {
		ret = ack->Duplicate ? PH_NATS_DUPLICATE : PH_NATS_SENT;
	} else if (jerr == JSStreamStoreFailedErr && last_error() != NULL &&
		   strstr(last_error(), REFUSED_PER_SUBJECT) != NULL) {
		ret = PH_NATS_DUPLICATE;
	} else {
		nats_fail(err, "publish", s, jerr);
	}
out:
	jsPubAck_Destroy(ack);
	natsMsg_Destroy(msg);
	free(id);
	free(subject);
	return ret;
}

#endif /* HAVE_NATS */
