/* sign.c - "payhook sign": a ready curl command that delivers a payload to a
 * route with valid credentials, to test a deployment end to end.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The adapter knows what its provider sends (sign hook in provider.h); this
 * file reads the configuration and the payload and writes the command. The
 * command necessarily carries the secret or values derived from it: it is a
 * tool for the server's administrator, printed on stdout only.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "conf.h"
#include "provider.h"
#include "sign.h"

#define DEFAULT_BASE "http://127.0.0.1:8080"

int
ph_signed_add_header(struct ph_signed *s, const char *name,
		     const char *value, size_t value_len, struct ph_error *err)
{
	if (s->n_headers == PH_SIGN_MAX_HEADERS)
		return ph_error_set(err, "too many headers");
	for (size_t i = 0; i < value_len; i++) {
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return ph_error_set(err, "the value of header %s "
					    "contains a line break or NUL: it "
					    "cannot be sent", name);
	}
	s->headers[s->n_headers++] = ph_xasprintf("%s: %.*s", name,
						  (int)value_len, value);
	return 0;
}

void
ph_signed_clear(struct ph_signed *s)
{
	for (size_t i = 0; i < s->n_headers; i++) {
		/* Header values may be credentials. */
		ph_wipe(s->headers[i], strlen(s->headers[i]));
		ph_free(&s->headers[i]);
	}
	s->n_headers = 0;
	if (s->query != NULL)
		ph_wipe(s->query, strlen(s->query));
	ph_free(&s->query);
	ph_free(&s->body);
	s->body_len = 0;
}

int
ph_sign_hmac_hex(enum ph_digest d, const struct ph_secret *key,
		 const uint8_t *msg, size_t msg_len, char *hex,
		 struct ph_error *err)
{
	uint8_t mac[PH_DIGEST_MAX];
	size_t mac_len;

	if (ph_hmac(d, key, msg, msg_len, mac, &mac_len) < 0)
		return ph_error_set(err, "HMAC-%s failed", ph_digest_name(d));
	ph_hex_encode(mac, mac_len, hex);
	ph_wipe(mac, sizeof(mac));
	return 0;
}

char *
ph_url_encode(const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = ph_xmalloc(3 * len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0x0f];
		}
	}
	out[o] = '\0';
	return out;
}

char *
ph_shell_quote(const char *s, size_t len)
{
	/* @UNSAFE: each byte takes at most 4 ("'\''"), plus 2 quotes + NUL */
	char *out = ph_xmalloc(4 * len + 3);
	size_t o = 0;

	out[o++] = '\'';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = s[i];
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: payhook sign [--config PATH] ROUTE FILE [--url BASE]\n"
	    "Prints a curl command that POSTs the JSON payload in FILE to the\n"
	    "route named ROUTE of the payhook at BASE (default %s;\n"
	    "for CGI e.g. https://shop.example/cgi-bin/payhook) with valid\n"
	    "credentials: the signature or credential headers, the URL "
	    "token,\n"
	    "or (OMPAY) the body with data.signature set.\n"
	    "The command contains the route's secret or values made from "
	    "it:\n"
	    "run this on the server and keep its output private.\n",
	    DEFAULT_BASE);
}

static const struct ph_route *
find_route(const struct ph_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_routes; i++) {
		if (strcmp(cfg->routes[i].name, name) == 0)
			return &cfg->routes[i];
	}
	return NULL;
}

static void
print_quoted(const char *prefix, const char *s, size_t len,
	     const char *suffix)
{
	char *q = ph_shell_quote(s, len);

	printf("%s%s%s", prefix, q, suffix);
	ph_wipe(q, strlen(q));
	free(q);
}

/* The command, one option per line. */
static void
print_command(const char *base, const struct ph_route *route,
	      const char *file, const struct ph_signed *sig)
{
	size_t base_len = strlen(base);
	char *url, *abs;

	printf("curl -sS -i \\\n");
	printf("  -H 'Content-Type: application/json' \\\n");
	for (size_t i = 0; i < sig->n_headers; i++)
		print_quoted("  -H ", sig->headers[i], strlen(sig->headers[i]),
			     " \\\n");
	if (sig->body != NULL) {
		print_quoted("  --data-binary ", sig->body, sig->body_len,
			     " \\\n");
	} else {
		/* Absolute, so the command works from any directory. */
		abs = realpath(file, NULL);
		print_quoted("  --data-binary @", abs != NULL ? abs : file,
			     strlen(abs != NULL ? abs : file), " \\\n");
		free(abs);
	}
	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	url = ph_xasprintf("%.*s%s%s%s", (int)base_len, base, route->path,
			   sig->query != NULL ? "?" : "",
			   sig->query != NULL ? sig->query : "");
	print_quoted("  ", url, strlen(url), "\n");
	ph_wipe(url, strlen(url));
	free(url);
}

int
ph_sign_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "url", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *opt_config = NULL, *base = DEFAULT_BASE, *path, *file;
	struct ph_faults faults = { 0 };
	struct ph_signed sig = { 0 };
	const struct ph_route *route;
	struct json_object *doc = NULL;
	struct ph_config *cfg;
	struct ph_error err;
	char *data = NULL;
	size_t len;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:u:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_config = optarg; break;
		case 'u': base = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	file = argv[optind + 1];
	path = ph_config_locate(opt_config);
	cfg = ph_config_load(path, &faults);
	if (cfg == NULL) {
		for (size_t i = 0; i < faults.count; i++)
			fprintf(stderr, "%s: %s\n", path, faults.lines[i]);
		ph_faults_clear(&faults);
		return 1;
	}
	ph_faults_clear(&faults);	/* warnings: --check-config shows them */
	route = find_route(cfg, argv[optind]);
	if (route == NULL) {
		fprintf(stderr, "payhook sign: %s has no route named '%s'; "
			"routes:", path, argv[optind]);
		for (size_t i = 0; i < cfg->n_routes; i++)
			fprintf(stderr, " %s", cfg->routes[i].name);
		fprintf(stderr, "\n");
		goto out;
	}
	if (route->provider->serve != NULL) {
		fprintf(stderr, "payhook sign: route '%s' serves a page (\"%s\"), "
			"it receives no deliveries\n", route->name,
			route->provider->name);
		goto out;
	}
	if (ph_read_file(file, route->max_body_bytes, &data, &len, &err) < 0) {
		fprintf(stderr, "payhook sign: %s (route '%s' takes at most "
			"%zu bytes)\n", err.msg, route->name,
			route->max_body_bytes);
		goto out;
	}
	/* Parsed exactly as the request path parses it. */
	doc = ph_json_parse_object((const uint8_t *)data, len,
				   route->max_json_depth);
	if (doc == NULL)
		fprintf(stderr, "payhook sign: warning: %s is not a strict "
			"JSON object (or nests deeper than %u): payhook will "
			"answer 400\n", file, route->max_json_depth);
	if (route->provider->sign != NULL &&
	    route->provider->sign(route, (const uint8_t *)data, len, doc,
				  &sig, &err) < 0) {
		fprintf(stderr, "payhook sign: route '%s': %s\n", route->name,
			err.msg);
		goto out;
	}
	print_command(base, route, file, &sig);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "payhook sign: cannot write the command\n");
		goto out;
	}
	ret = 0;
out:
	ph_signed_clear(&sig);
	json_object_put(doc);
	free(data);
	ph_config_free(&cfg);
	return ret;
}
