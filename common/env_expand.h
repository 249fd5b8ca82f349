/* ${VAR} and ${VAR:-default} in config values. Applied to scalars after YAML parsing, so the
 * environment can change a value but never the structure of the file. */
#ifndef AW_ENV_EXPAND_H
#define AW_ENV_EXPAND_H

#include <stddef.h>

/* Expands `in`:
 *   ${VAR}            the value of VAR; an error if VAR is unset (set but empty is fine)
 *   ${VAR:-default}   VAR if set and non-empty, else default (itself expanded, lazily, as in sh)
 *   $ not followed by { is literal.
 * VAR is [A-Za-z_][A-Za-z0-9_]*. On success returns 0 and *out, a string the caller frees.
 * On failure returns -1, *out is NULL and errbuf holds the reason; it names variables but never
 * echoes their values or the input text, which may be secret. */
int env_expand(const char *in, char **out, char *errbuf, size_t errsize);

#endif
