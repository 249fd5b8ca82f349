/* The one description of worker.yaml: a row per key. config.c walks the YAML document and this
 * table does the rest (defaults, parsing, ranges, --help), so a new key is one new row. */
#ifndef AW_CONFIG_TABLE_H
#define AW_CONFIG_TABLE_H

#include <stddef.h>

#include "config.h"

enum config_type {
	CONFIG_T_STRING,
	CONFIG_T_INT,	     /* plain decimal, within [min, max] */
	CONFIG_T_DOUBLE,     /* finite, within [min, max] */
	CONFIG_T_ENUM,	     /* one of values[] */
	CONFIG_T_STRING_MAP, /* mapping of scalars, kept as text in file order */
};

#define CONFIG_RELOADABLE 0x1u /* SIGHUP may change it; the others need a restart */
#define CONFIG_SECRET 0x2u     /* its value is never echoed in errors or logs */
#define CONFIG_NONEMPTY 0x4u   /* an empty string is an error */
#define CONFIG_LISTEN 0x8u     /* CONFIG_T_STRING: "" or host:port, [v6]:port, :port */

struct config_param {
	const char *key; /* "section.name", or "name" for a mapping at the top level */
	enum config_type type;
	const char *def; /* default, as it would be written in the file */
	double min, max; /* CONFIG_T_INT, CONFIG_T_DOUBLE */
	const char *const *values;		     /* CONFIG_T_ENUM: NULL-terminated */
	int (*parse_enum)(const char *s, void *field); /* CONFIG_T_ENUM */
	unsigned flags;
	const char *description;
	size_t offset;	     /* of the field in struct config */
	size_t count_offset; /* CONFIG_T_STRING_MAP: of its size_t count */
	/* CONFIG_T_STRING_MAP: checks one entry; 0 when valid, else CONFIG_ENTRY_BAD_KEY or
	 * CONFIG_ENTRY_BAD_VALUE (where the error points) with the reason in err. */
	int (*check_entry)(const char *key, const char *value, char *err, size_t errsize);
};

#define CONFIG_ENTRY_BAD_KEY 1
#define CONFIG_ENTRY_BAD_VALUE 2

extern const struct config_param config_params[];
extern const size_t config_nparams;

/* NULL when key is not in the table. */
const struct config_param *config_param_find(const char *key);
/* "string", "integer", "number", "enum", "mapping". */
const char *config_type_name(enum config_type type);

/* Parses text into p's field of cfg, replacing (and freeing) the previous value. On failure
 * returns -1, leaves the field as it was and writes the reason to err, without the value when
 * p is secret. CONFIG_T_STRING_MAP accepts only "" (empty map); config.c fills maps. */
int config_param_set(const struct config_param *p, struct config *cfg, const char *text,
		     char *err, size_t errsize);
/* Frees what p's field owns and zeroes it. */
void config_param_free(const struct config_param *p, struct config *cfg);
/* 1 when p's field holds the same value in a and b (for reload: what changed?). */
int config_param_equal(const struct config_param *p, const struct config *a,
		       const struct config *b);

/* 1 for kafka.properties keys whose values must be masked: passwords, secrets, private keys. */
int config_property_is_secret(const char *key);

#endif
