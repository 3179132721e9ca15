/* fuzz-adapter.c - libFuzzer target: every adapter's authenticate() and
 * normalize(), and the event they make.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Input: a route byte (which of the routes below), a mode byte, then a
 * request as fuzz.h describes. The routes are configured once, in memory,
 * with known secrets: every adapter and every kind of authentication.
 * Mode bit 0 set: the target signs the request itself with the route's
 * first secret, as "payhook sign" would (the adapter's sign hook: an HMAC
 * over the fuzzed body, a token in the query, OMPAY's signature inside the
 * body, the right Authorization header), so that most inputs get past
 * authenticate() and normalize() is fuzzed too. The Content-Length always
 * matches the body and the method is POST.
 *
 * Checked beyond "no crash, no leak": an authentic request gives an event
 * with a dedup key and a schema type, whose JSON a strict parser reads
 * back as an object.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "event.h"
#include "fuzz.h"
#include "provider.h"
#include "request.h"
#include "sign.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_DEPTH 32

static const char routes_json[] =
"{\"spool_dir\": \"/nonexistent/spool\", \"state_dir\": \"/nonexistent/st\",\n"
" \"max_json_depth\": 32,\n"
" \"routes\": [\n"
"  {\"name\": \"ngn\", \"path\": \"/ngn\", \"provider\": \"ngn-gateway\",\n"
"   \"secrets\": [\"fz-ngn-1\", \"fz-ngn-2\"], \"amount_unit\": \"minor\"},\n"
"  {\"name\": \"ngn256\", \"path\": \"/ngn256\", \"provider\": \"ngn-gateway\",\n"
"   \"secrets\": \"fz-ngn-3\", \"amount_unit\": \"major\",\n"
"   \"algorithm\": \"sha256\", \"header\": \"X-Sig\"},\n"
"  {\"name\": \"ompay\", \"path\": \"/ompay\", \"provider\": \"ompay\",\n"
"   \"secrets\": [\"fz-ompay-1\", \"fz-ompay-2\"]},\n"
"  {\"name\": \"omno-basic\", \"path\": \"/ob\", \"provider\": \"omno\",\n"
"   \"auth\": {\"type\": \"basic\", \"user\": \"u\", \"password\": \"pw\"}},\n"
"  {\"name\": \"omno-bearer\", \"path\": \"/obe\", \"provider\": \"omno\",\n"
"   \"auth\": {\"type\": \"bearer\", \"token\": \"fz-bearer\"}},\n"
"  {\"name\": \"omno-header\", \"path\": \"/oh\", \"provider\": \"omno\",\n"
"   \"auth\": {\"type\": \"header\", \"name\": \"X-Key\", \"value\": \"v\"}},\n"
"  {\"name\": \"omno-hmac\", \"path\": \"/ohm\", \"provider\": \"omno\",\n"
"   \"auth\": {\"type\": \"hmac-sha256\", \"secret\": \"fz-omno-h\"}},\n"
"  {\"name\": \"omno-hmac2\", \"path\": \"/ohm2\", \"provider\": \"omno\",\n"
"   \"auth\": {\"type\": \"hmac-sha256\", \"header\": \"X-H\"},\n"
"   \"secrets\": [\"fz-omno-1\", \"fz-omno-2\"]},\n"
"  {\"name\": \"omno-none\", \"path\": \"/on\", \"provider\": \"omno\",\n"
"   \"allow_unauthenticated\": true},\n"
"  {\"name\": \"po\", \"path\": \"/po\", \"provider\": \"paymentoptions\",\n"
"   \"url_token\": [\"fz-tok-1\", \"fz-tok-2\"]},\n"
"  {\"name\": \"po-hmac\", \"path\": \"/poh\", \"provider\": \"paymentoptions\",\n"
"   \"url_token\": \"fz-tok-3\", \"header\": \"X-PO-Sig\",\n"
"   \"secrets\": \"fz-po-h\"},\n"
"  {\"name\": \"po-hmac-only\", \"path\": \"/poho\",\n"
"   \"provider\": \"paymentoptions\", \"header\": \"X-PO\",\n"
"   \"secrets\": [\"fz-po-1\"], \"allow_unauthenticated\": true},\n"
"  {\"name\": \"po-none\", \"path\": \"/pon\", \"provider\": \"paymentoptions\",\n"
"   \"allow_unauthenticated\": true},\n"
"  {\"name\": \"swh\", \"path\": \"/swh\", \"provider\": \"standard-webhooks\",\n"
"   \"secrets\": [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"],\n"
"   \"type_map\": {\"invoice.paid\": \"payment.succeeded\"},\n"
"   \"amount\": \"data.amount\", \"currency\": \"data.currency\",\n"
"   \"amount_unit\": \"minor\"},\n"
"  {\"name\": \"adyen\", \"path\": \"/ad\", \"provider\": \"adyen\",\n"
"   \"secrets\": [\"3F7A1C2D9E8B4A5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F9012345678\"],\n"
"   \"auth\": {\"type\": \"basic\", \"user\": \"ad\", \"password\": \"adpw\"}},\n"
"  {\"name\": \"stripe\", \"path\": \"/st\", \"provider\": \"stripe\",\n"
"   \"secrets\": [\"whsec_fz1\", \"whsec_fz2\"]},\n"
"  {\"name\": \"gh\", \"path\": \"/gh\", \"provider\": \"generic-hmac\",\n"
"   \"secrets\": [\"fz-gh\"], \"header\": \"X-Hub-Signature-256\",\n"
"   \"prefix\": \"sha256=\", \"type\": \"action\",\n"
"   \"type_map\": {\"created\": \"payment.succeeded\"},\n"
"   \"id\": \"sponsorship.node_id\"},\n"
"  {\"name\": \"ght\", \"path\": \"/ght\", \"provider\": \"generic-hmac\",\n"
"   \"secrets\": [\"fz-ght\"], \"header\": \"X-Sig\", \"encoding\": \"base64\",\n"
"   \"algorithm\": \"sha512\", \"timestamp_header\": \"X-Ts\", \"id\": \"id\",\n"
"   \"amount\": \"amount\", \"currency\": \"currency\",\n"
"   \"amount_unit\": \"major\"},\n"
"  {\"name\": \"paystack\", \"path\": \"/ps\", \"provider\": \"paystack\",\n"
"   \"secrets\": [\"sk_test_fz\"]},\n"
"  {\"name\": \"razorpay\", \"path\": \"/rp\", \"provider\": \"razorpay\",\n"
"   \"secrets\": [\"fz-rp\"]},\n"
"  {\"name\": \"checkout\", \"path\": \"/ck\", \"provider\": \"checkout\",\n"
"   \"secrets\": [\"fz-ck\"], \"authorization\": \"fz-ck-auth\"},\n"
"  {\"name\": \"flutterwave\", \"path\": \"/fw\", \"provider\": \"flutterwave\",\n"
"   \"secrets\": [\"fz-fw\"]},\n"
"  {\"name\": \"square\", \"path\": \"/sq\", \"provider\": \"square\",\n"
"   \"secrets\": [\"fz-sq\"],\n"
"   \"notification_url\": \"https://shop.example/payhook/square\"}\n"
" ]}\n";

static struct ph_config *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ph_faults faults = { 0 };

	(void)argc;
	(void)argv;
	cfg = ph_config_load_text("fuzz-adapter", routes_json,
				  sizeof(routes_json) - 1, &faults);
	if (cfg == NULL) {
		for (size_t i = 0; i < faults.count; i++)
			fprintf(stderr, "fuzz-adapter: %s\n", faults.lines[i]);
		abort();
	}
	ph_faults_clear(&faults);
	return 0;
}

/* "Name: value" -> "HTTP_NAME=value", as a web server passes a header. */
static void
prepend_header(struct fz_request *fr, const char *line)
{
	const char *colon = strchr(line, ':');
	const char *value;
	char *entry;
	size_t n;

	if (colon == NULL)
		abort();
	value = colon + 1;
	while (*value == ' ')
		value++;
	n = (size_t)(colon - line);
	entry = ph_xasprintf("HTTP_%.*s=%s", (int)n, line, value);
	for (size_t i = 5; i < 5 + n; i++) {
		if (entry[i] >= 'a' && entry[i] <= 'z')
			entry[i] = (char)(entry[i] - 'a' + 'A');
		else if (entry[i] == '-')
			entry[i] = '_';
	}
	fz_request_prepend(fr, entry);
	free(entry);
}

/* The payload parsed as "payhook sign" parses it, or NULL. */
static struct json_object *
parse_payload(const uint8_t *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(FZ_DEPTH);
	struct json_object *obj;

	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/* Add what valid credentials for route need, as its sign hook says. */
static void
sign_request(const struct ph_route *route, struct fz_request *fr)
{
	struct ph_signed sig = { 0 };
	struct json_object *doc;
	struct ph_error err;

	if (route->provider->sign == NULL)
		return;
	doc = parse_payload(fr->body, fr->body_len);
	if (route->provider->sign(route, fr->body, fr->body_len, doc, &sig,
				  &err) == 0) {
		if (sig.body != NULL)
			fz_request_set_body(fr, sig.body, sig.body_len);
		for (size_t i = 0; i < sig.n_headers; i++)
			prepend_header(fr, sig.headers[i]);
		if (sig.query != NULL) {
			char *q = ph_xasprintf("QUERY_STRING=%s", sig.query);

			fz_request_prepend(fr, q);
			free(q);
		}
	}
	ph_signed_clear(&sig);
	json_object_put(doc);
}

/* The event's JSON must be JSON that a strict reader takes. */
static void
check_event(const struct ph_event *ev)
{
	struct json_tokener *tok;
	struct json_object *obj;
	char *json;
	size_t len;

	if (ev->dedup_key == NULL || !ph_event_type_valid(ev->type) ||
	    strlen(ev->dedup_key) == 0)
		abort();
	json = ph_event_to_json(ev, &len);
	if (len == 0 || json[len - 1] != '\n')
		abort();
	tok = json_tokener_new_ex(FZ_DEPTH + 2);
	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, json, (int)len - 1);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(obj, json_type_object))
		abort();
	json_object_put(obj);
	json_tokener_free(tok);
	free(json);
}

static void
answer(const struct ph_route *route, enum ph_outcome outcome,
       const struct ph_event *ev)
{
	struct ph_answer ans = { 0 };

	if (route->provider->answer != NULL)
		route->provider->answer(outcome, ev, &ans);
	else
		ph_answer_default(outcome, ev, &ans);
	if (ans.status < 200 || ans.status > 599 ||
	    (ans.body_len > 0 && ans.body == NULL))
		abort();
	free(ans.body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ph_route *route;
	struct ph_auth auth = { .verified_by = NULL, .secret_index = -1 };
	struct ph_event ev = { 0 };
	struct fz_request fr;
	struct ph_request req;
	struct ph_stream io;
	char cl[48];
	uint8_t mode;

	if (size < 2)
		return 0;
	route = &cfg->routes[data[0] % cfg->n_routes];
	mode = data[1];
	fz_request_parse(&fr, data + 2, size - 2);
	if (mode & 1)
		sign_request(route, &fr);
	snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%zu", fr.body_len);
	fz_request_prepend(&fr, cl);
	fz_request_prepend(&fr, "REQUEST_METHOD=POST");
	io = fz_request_stream(&fr);
	ph_request_init(&req, fr.envp, &io);
	if (ph_request_read_body(&req, route->max_body_bytes) != 200)
		goto done;
	switch (route->provider->authenticate(route, &req, &auth)) {
	case PH_AUTH_OK:
		break;
	case PH_AUTH_BAD_REQUEST:
		answer(route, PH_OUT_BAD_REQUEST, &ev);
		goto done;
	case PH_AUTH_FAIL:
	default:
		answer(route, PH_OUT_UNAUTHORIZED, &ev);
		goto done;
	}
	if (auth.verified_by == NULL)
		abort();
	if (ph_request_json(&req, cfg->max_json_depth) != 200) {
		answer(route, PH_OUT_BAD_REQUEST, &ev);
		goto done;
	}
	ev.route = route->name;
	ev.provider = route->provider->name;
	ev.verified_by = auth.verified_by;
	ev.raw = req.doc;
	if (route->provider->event_count != NULL) {
		/* Several events per request (Adyen): each one, as the
		 * handler does. */
		size_t n = route->provider->event_count(route, &req);

		for (size_t i = 0; i < n; i++) {
			struct ph_event one = { 0 };

			one.route = ev.route;
			one.provider = ev.provider;
			one.verified_by = ev.verified_by;
			one.raw = req.doc;
			route->provider->normalize_at(route, &req, i, &one);
			check_event(&one);
			ph_event_clear(&one);
		}
	} else {
		route->provider->normalize(route, &req, &ev);
		check_event(&ev);
	}
	answer(route, PH_OUT_ACCEPTED, &ev);
	answer(route, PH_OUT_DUPLICATE, &ev);
done:
	ph_event_clear(&ev);
	ph_request_clear(&req);
	fz_request_free(&fr);
	return 0;
}
