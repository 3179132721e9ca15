/* fuzz-config.c - libFuzzer target: the configuration loader.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The input is a configuration file's text, loaded with
 * ph_config_load_text() as --check-config loads a file. A configuration
 * comes back exactly when there is no fault, and every route of a loaded
 * configuration can be found by its path.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;

	cfg = ph_config_load_text("fuzz.json", (const char *)data, size,
				  &faults);
	if ((cfg == NULL) != (faults.count > 0))
		abort();
	for (size_t i = 0; i < faults.count; i++) {
		if (faults.lines[i] == NULL)
			abort();
	}
	if (cfg != NULL) {
		if (cfg->n_routes == 0)
			abort();
		for (size_t i = 0; i < cfg->n_routes; i++) {
			const struct ph_route *r = &cfg->routes[i];

			if (r->name == NULL || r->path == NULL ||
			    r->provider == NULL ||
			    ph_config_route(cfg, r->path) != r)
				abort();
		}
	}
	ph_config_free(&cfg);
	ph_faults_clear(&faults);
	return 0;
}
