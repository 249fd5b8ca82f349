#include "config_reload.h"

#include <string.h>

#include "config_table.h"
#include "log.h"

/* Exchanges one field's value between two configs (pointers for strings and maps, so the
 * old value is freed with the discarded config). */
static void swap_field(const struct config_param *p, struct config *a, struct config *b)
{
	char tmp[sizeof(double) > sizeof(void *) ? sizeof(double) : sizeof(void *)];
	size_t size;
	switch (p->type) {
	case CONFIG_T_INT: size = sizeof(int); break;
	case CONFIG_T_DOUBLE: size = sizeof(double); break;
	case CONFIG_T_ENUM: size = sizeof(enum log_level); break;
	case CONFIG_T_STRING: size = sizeof(char *); break;
	case CONFIG_T_STRING_MAP: {
		size_t *ca = (size_t *)((char *)a + p->count_offset);
		size_t *cb = (size_t *)((char *)b + p->count_offset);
		size_t c = *ca;
		*ca = *cb;
		*cb = c;
		size = sizeof(void *);
		break;
	}
	default: return;
	}
	memcpy(tmp, (char *)a + p->offset, size);
	memcpy((char *)a + p->offset, (char *)b + p->offset, size);
	memcpy((char *)b + p->offset, tmp, size);
}

int config_reload(struct config *live)
{
	struct config *fresh = NULL;
	char errbuf[4096];
	int changed = 0;

	if (config_load(live->path, &fresh, errbuf, sizeof errbuf) < 0) {
		log_error("config_reload_rejected", LOG_S("file", live->path),
			  LOG_S("errors", errbuf),
			  LOG_S("kept", "the running configuration"));
		return -1;
	}
	for (size_t i = 0; i < config_nparams; i++) {
		const struct config_param *p = &config_params[i];
		if (config_param_equal(p, live, fresh))
			continue;
		if (p->flags & CONFIG_RELOADABLE) {
			swap_field(p, live, fresh);
			changed++;
			log_info("config_reloaded", LOG_S("key", p->key));
		} else {
			log_warn("config_needs_restart", LOG_S("key", p->key),
				 LOG_S("kept", "the running value until the worker restarts"));
		}
	}
	config_register_secrets(live);
	config_free(fresh); /* now holding the replaced values */
	return changed;
}
