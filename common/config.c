/* Loads worker.yaml. libyaml builds the document; this file walks its shape (sections, keys,
 * node kinds, positions) and the table in config_table.c parses each value. Every problem is
 * reported, one "file:line:col: message" line each, so one edit fixes them all. */
#include "config.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_table.h"
#include "env_expand.h"

#define CONFIG_MSG_MAX 512
#define CONFIG_KEY_MAX 256
#define CONFIG_SUGGEST_LEN_MAX 64

enum config_state {
	CONFIG_STATE_DEFAULT, /* not in the file */
	CONFIG_STATE_SET,     /* set from the file */
	CONFIG_STATE_BAD,     /* in the file but invalid: left out of cross-key checks */
};

struct config_loader {
	const char *path;
	yaml_document_t *doc;
	struct config *cfg;
	char *errbuf;
	size_t errsize;
	size_t errlen;
	unsigned nerrors;
	yaml_mark_t *marks;   /* where each table row was set, by index */
	unsigned char *state; /* enum config_state, by index */
};

/* Appends to errbuf, truncating (always NUL-terminated) once it is full. */
__attribute__((format(printf, 2, 3))) static void config_append(struct config_loader *ld,
								 const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->errlen + 1 >= ld->errsize)
		return;
	va_start(ap, fmt);
	n = vsnprintf(ld->errbuf + ld->errlen, ld->errsize - ld->errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		ld->errbuf[ld->errlen] = '\0';
	else if ((size_t)n >= ld->errsize - ld->errlen)
		ld->errlen = ld->errsize - 1;
	else
		ld->errlen += (size_t)n;
}

__attribute__((format(printf, 3, 4))) static void config_error(struct config_loader *ld,
							       yaml_mark_t mark,
							       const char *fmt, ...)
{
	char msg[CONFIG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	config_append(ld, "%s%s:%zu:%zu: %s", ld->nerrors ? "\n" : "", ld->path, mark.line + 1,
		      mark.column + 1, msg);
	ld->nerrors++;
}

static const char *config_node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_NO_NODE:
		break;
	}
	return "nothing";
}

static const char *config_expected(const struct config_param *p)
{
	switch (p->type) {
	case CONFIG_T_INT:
		return "an integer";
	case CONFIG_T_DOUBLE:
		return "a number";
	case CONFIG_T_STRING_MAP:
		return "a mapping";
	case CONFIG_T_STRING:
	case CONFIG_T_ENUM:
		break;
	}
	return "a string";
}

/* "kafka:" with all its keys commented out is an empty section, not a type error. */
static int config_node_is_null(const yaml_node_t *node)
{
	const char *v;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)node->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

/* The key node of an earlier pair of `map` whose key is also `name`, or NULL. */
static yaml_node_t *config_earlier_key(struct config_loader *ld, yaml_node_t *map,
				       yaml_node_pair_t *pair, const char *name)
{
	for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, q->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, name))
			return k;
	}
	return NULL;
}

/* Levenshtein distance, SIZE_MAX for strings too long to be worth a suggestion. */
static size_t config_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[CONFIG_SUGGEST_LEN_MAX + 1];

	if (la > CONFIG_SUGGEST_LEN_MAX || lb > CONFIG_SUGGEST_LEN_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The closest table key to an unknown one: a small typo, or the same name in another section. */
static const char *config_suggest_key(const char *key)
{
	const char *leaf = strchr(key, '.') ? strchr(key, '.') + 1 : key;
	const char *best = NULL;
	size_t bestd = 3; /* more edits than this is a different word */

	for (size_t i = 0; i < config_nparams; i++) {
		const char *k = config_params[i].key;
		if (!strchr(k, '.'))
			continue; /* a top-level value (classify) is no key's neighbour */
		size_t d = strcmp(strchr(k, '.') + 1, leaf) ? config_distance(key, k) : 1;
		if (d <= bestd && (!best || d < bestd)) {
			best = k;
			bestd = d;
		}
	}
	return best;
}

static int config_section_exists(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < config_nparams; i++)
		if (!strncmp(config_params[i].key, name, n) && config_params[i].key[n] == '.')
			return 1;
	return 0;
}

/* A top-level key that is itself a value (classify), not a section. */
static const struct config_param *config_top_level_param(const char *name)
{
	const struct config_param *p = config_param_find(name);
	return p && !strchr(p->key, '.') ? p : NULL;
}

static const char *config_suggest_section(const char *name, char *buf, size_t size)
{
	const char *best = NULL;
	size_t bestd = 2;

	for (size_t i = 0; i < config_nparams; i++) {
		const char *k = config_params[i].key;
		const char *dot = strchr(k, '.');
		snprintf(buf, size, "%.*s", (int)(dot ? dot - k : (long)strlen(k)), k);
		size_t d = config_distance(name, buf);
		if (d <= bestd && (!best || d < bestd)) {
			best = k;
			bestd = d;
		}
	}
	if (!best)
		return NULL;
	const char *dot = strchr(best, '.');
	snprintf(buf, size, "%.*s", (int)(dot ? dot - best : (long)strlen(best)), best);
	return buf;
}

/* Expands ${...} in a scalar; errors carry the scalar's position. */
static int config_expand_scalar(struct config_loader *ld, const char *key,
				const yaml_node_t *node, char **out)
{
	char msg[CONFIG_MSG_MAX / 2];
	const char *value = (const char *)node->data.scalar.value;

	*out = NULL;
	if (strlen(value) != node->data.scalar.length) {
		config_error(ld, node->start_mark, "%s: contains a NUL character", key);
		return -1;
	}
	if (env_expand(value, out, msg, sizeof msg) < 0) {
		config_error(ld, node->start_mark, "%s: %s", key, msg);
		return -1;
	}
	return 0;
}

static void config_free_properties(struct config_property *props, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(props[i].key);
		free(props[i].value);
	}
	free(props);
}

/* kafka.properties, classify: a flat mapping of scalars, kept as text in file order, each
 * entry checked by the table's check_entry. */
static int config_load_map(struct config_loader *ld, const struct config_param *p,
			   yaml_node_t *node)
{
	struct config_property *props = NULL;
	size_t n = 0, cap;
	int rc = -1;

	if (config_node_is_null(node)) {
		config_param_free(p, ld->cfg);
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE) {
		config_error(ld, node->start_mark, "%s: expected a mapping, got %s", p->key,
			     config_node_kind(node));
		return -1;
	}
	cap = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	props = calloc(cap ? cap : 1, sizeof *props);
	if (!props) {
		config_error(ld, node->start_mark, "%s: out of memory", p->key);
		return -1;
	}
	rc = 0;
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
		const char *name;
		yaml_node_t *first;
		char full[CONFIG_KEY_MAX];
		char *text;

		if (k->type != YAML_SCALAR_NODE) {
			config_error(ld, k->start_mark, "%s: keys must be scalars, got %s", p->key,
				     config_node_kind(k));
			rc = -1;
			continue;
		}
		name = (const char *)k->data.scalar.value;
		snprintf(full, sizeof full, "%s.%.150s", p->key, name);
		if (!*name) {
			config_error(ld, k->start_mark, "%s: empty property name", p->key);
			rc = -1;
			continue;
		}
		first = config_earlier_key(ld, node, pair, name);
		if (first) {
			config_error(ld, k->start_mark, "duplicate key \"%s\" (first at line %zu)",
				     full, first->start_mark.line + 1);
			rc = -1;
			continue;
		}
		if (v->type != YAML_SCALAR_NODE) {
			config_error(ld, v->start_mark, "%s: expected a scalar, got %s", full,
				     config_node_kind(v));
			rc = -1;
			continue;
		}
		if (config_expand_scalar(ld, full, v, &text) < 0) {
			rc = -1;
			continue;
		}
		if (p->check_entry) {
			char why[CONFIG_MSG_MAX / 2];
			int bad = p->check_entry(name, text, why, sizeof why);
			if (bad) {
				config_error(ld, bad == CONFIG_ENTRY_BAD_KEY ? k->start_mark
									     : v->start_mark,
					     "%s: %s", full, why);
				free(text);
				rc = -1;
				continue;
			}
		}
		props[n].value = text;
		props[n].key = strdup(name);
		n++;
		if (!props[n - 1].key) {
			config_error(ld, k->start_mark, "%s: out of memory", full);
			rc = -1;
		}
	}
	if (rc < 0)
		goto cleanup;
	config_param_free(p, ld->cfg);
	*(struct config_property **)((char *)ld->cfg + p->offset) = props;
	*(size_t *)((char *)ld->cfg + p->count_offset) = n;
	props = NULL; /* now owned by cfg */
cleanup:
	if (props)
		config_free_properties(props, n);
	return rc;
}

static void config_load_value(struct config_loader *ld, const struct config_param *p,
			      yaml_node_t *node)
{
	size_t i = (size_t)(p - config_params);
	char msg[CONFIG_MSG_MAX / 2];
	char *text = NULL;

	ld->marks[i] = node->start_mark;
	ld->state[i] = CONFIG_STATE_BAD;
	if (p->type == CONFIG_T_STRING_MAP) {
		if (config_load_map(ld, p, node) == 0)
			ld->state[i] = CONFIG_STATE_SET;
		return;
	}
	if (node->type != YAML_SCALAR_NODE) {
		config_error(ld, node->start_mark, "%s: expected %s, got %s", p->key,
			     config_expected(p), config_node_kind(node));
		return;
	}
	if (config_expand_scalar(ld, p->key, node, &text) < 0)
		return;
	if (config_param_set(p, ld->cfg, text, msg, sizeof msg) < 0)
		config_error(ld, node->start_mark, "%s: %s", p->key, msg);
	else
		ld->state[i] = CONFIG_STATE_SET;
	free(text);
}

static void config_load_section(struct config_loader *ld, const char *section,
				yaml_node_t *node)
{
	if (config_node_is_null(node))
		return;
	if (node->type != YAML_MAPPING_NODE) {
		config_error(ld, node->start_mark, "section \"%s\" must be a mapping, got %s",
			     section, config_node_kind(node));
		return;
	}
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
		const struct config_param *p;
		const char *hint;
		yaml_node_t *first;
		char key[CONFIG_KEY_MAX];

		if (k->type != YAML_SCALAR_NODE) {
			config_error(ld, k->start_mark, "keys must be scalars, got %s",
				     config_node_kind(k));
			continue;
		}
		snprintf(key, sizeof key, "%s.%.150s", section, (const char *)k->data.scalar.value);
		first = config_earlier_key(ld, node, pair, (const char *)k->data.scalar.value);
		if (first) {
			config_error(ld, k->start_mark, "duplicate key \"%s\" (first at line %zu)",
				     key, first->start_mark.line + 1);
			continue;
		}
		p = config_param_find(key);
		if (!p) {
			hint = config_suggest_key(key);
			config_error(ld, k->start_mark, "unknown key \"%s\"%s%s%s", key,
				     hint ? "; did you mean \"" : "", hint ? hint : "",
				     hint ? "\"?" : "");
			continue;
		}
		config_load_value(ld, p, v);
	}
}

static void config_load_root(struct config_loader *ld, yaml_node_t *root)
{
	if (!root || config_node_is_null(root))
		return; /* empty file, or only comments: all defaults */
	if (root->type != YAML_MAPPING_NODE) {
		config_error(ld, root->start_mark, "the top level must be a mapping of sections, got %s",
			     config_node_kind(root));
		return;
	}
	for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
		const char *name, *hint;
		yaml_node_t *first;
		char buf[CONFIG_KEY_MAX];

		if (k->type != YAML_SCALAR_NODE) {
			config_error(ld, k->start_mark, "keys must be scalars, got %s",
				     config_node_kind(k));
			continue;
		}
		name = (const char *)k->data.scalar.value;
		first = config_earlier_key(ld, root, pair, name);
		if (first) {
			config_error(ld, k->start_mark,
				     "duplicate section \"%.150s\" (first at line %zu)", name,
				     first->start_mark.line + 1);
			continue;
		}
		if (config_top_level_param(name)) {
			config_load_value(ld, config_top_level_param(name), v);
			continue;
		}
		if (!config_section_exists(name)) {
			hint = config_suggest_section(name, buf, sizeof buf);
			config_error(ld, k->start_mark, "unknown section \"%.150s\"%s%s%s", name,
				     hint ? "; did you mean \"" : "", hint ? hint : "",
				     hint ? "\"?" : "");
			continue;
		}
		config_load_section(ld, name, v);
	}
}

static size_t config_index(const char *key)
{
	return (size_t)(config_param_find(key) - config_params);
}

/* Where to report a conflict between two keys: the one set later in the file. */
static yaml_mark_t config_conflict_mark(const struct config_loader *ld, size_t a, size_t b)
{
	yaml_mark_t none = { 0, 0, 0 };
	int sa = ld->state[a] == CONFIG_STATE_SET, sb = ld->state[b] == CONFIG_STATE_SET;

	if (sa && sb)
		return ld->marks[a].index > ld->marks[b].index ? ld->marks[a] : ld->marks[b];
	return sa ? ld->marks[a] : sb ? ld->marks[b] : none;
}

/* Rules between keys; each checked only when both keys are valid on their own. */
/* postgres.conninfo must be one libpq can parse, or `run` would fail at its first connect.
 * libpq's message quotes the offending part, which may be a password: quotes are blanked. */
static void config_check_conninfo(struct config_loader *ld)
{
	size_t i = config_index("postgres.conninfo");
	char *err = NULL;
	PQconninfoOption *opts;

	if (ld->state[i] == CONFIG_STATE_BAD || !ld->cfg->postgres.conninfo)
		return;
	opts = PQconninfoParse(ld->cfg->postgres.conninfo, &err);
	if (!opts) {
		char msg[CONFIG_MSG_MAX / 2];
		size_t o = 0;
		int quoted = 0;
		for (const char *c = err ? err : "out of memory"; *c && o + 4 < sizeof msg; c++) {
			if (*c == '"') {
				quoted = !quoted;
				if (quoted) {
					memcpy(msg + o, "\"...", 4);
					o += 4;
				} else {
					msg[o++] = '"';
				}
			} else if (!quoted && *c != '\n') {
				msg[o++] = *c;
			}
		}
		msg[o] = '\0';
		config_error(ld, ld->marks[i], "postgres.conninfo: libpq cannot parse it: %s", msg);
	}
	PQconninfoFree(opts);
	PQfreemem(err);
}

static void config_check(struct config_loader *ld)
{
	static const char *const topics[] = { "kafka.input_topic", "kafka.retry_topic",
					      "kafka.dlq_topic" };
	const struct config *cfg = ld->cfg;
	size_t ini = config_index("retry.initial_backoff_ms");
	size_t max = config_index("retry.max_backoff_ms");

	if (ld->state[ini] != CONFIG_STATE_BAD && ld->state[max] != CONFIG_STATE_BAD &&
	    cfg->retry.max_backoff_ms < cfg->retry.initial_backoff_ms)
		config_error(ld, config_conflict_mark(ld, max, ini),
			     "retry.max_backoff_ms (%d) must be >= retry.initial_backoff_ms (%d)",
			     cfg->retry.max_backoff_ms, cfg->retry.initial_backoff_ms);

	config_check_conninfo(ld);
	for (size_t i = 0; i < 3; i++)
		for (size_t j = i + 1; j < 3; j++) {
			const struct config_param *a = config_param_find(topics[i]);
			const struct config_param *b = config_param_find(topics[j]);
			size_t ia = (size_t)(a - config_params), ib = (size_t)(b - config_params);
			const char *ta = *(char *const *)((const char *)cfg + a->offset);
			const char *tb = *(char *const *)((const char *)cfg + b->offset);
			if (ld->state[ia] == CONFIG_STATE_BAD || ld->state[ib] == CONFIG_STATE_BAD ||
			    strcmp(ta, tb))
				continue;
			config_error(ld, config_conflict_mark(ld, ia, ib),
				     "%s and %s must differ (both are \"%.100s\")", a->key, b->key,
				     ta);
		}
}

/* Line and column of a byte offset, for reader errors that only have the offset. */
static yaml_mark_t config_offset_mark(FILE *f, size_t offset)
{
	yaml_mark_t mark = { 0, 0, 0 };
	int ch;

	rewind(f);
	for (size_t i = 0; i < offset && (ch = getc(f)) != EOF; i++) {
		if (ch == '\n') {
			mark.line++;
			mark.column = 0;
		} else if ((ch & 0xc0) != 0x80) { /* count characters, not UTF-8 continuation bytes */
			mark.column++;
		}
	}
	return mark;
}

static void config_syntax_error(struct config_loader *ld, const yaml_parser_t *parser, FILE *f)
{
	yaml_mark_t mark = parser->problem_mark;

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		config_error(ld, mark, "out of memory");
		return;
	case YAML_READER_ERROR:
		config_error(ld, config_offset_mark(f, parser->problem_offset),
			     "cannot read YAML: %s", parser->problem ? parser->problem : "error");
		return;
	default:
		break;
	}
	if (parser->context)
		config_error(ld, mark, "YAML syntax error: %s (%s at line %zu)",
			     parser->problem ? parser->problem : "error", parser->context,
			     parser->context_mark.line + 1);
	else
		config_error(ld, mark, "YAML syntax error: %s",
			     parser->problem ? parser->problem : "error");
}

/* A second document would be silently ignored by yaml_parser_load; refuse it instead. */
static void config_check_single_document(struct config_loader *ld, yaml_parser_t *parser,
					 FILE *f)
{
	yaml_document_t doc;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &doc)) {
		config_syntax_error(ld, parser, f);
		return;
	}
	root = yaml_document_get_root_node(&doc);
	if (root)
		config_error(ld, root->start_mark, "only one YAML document is allowed");
	yaml_document_delete(&doc);
}

static void config_load_defaults(struct config_loader *ld)
{
	yaml_mark_t none = { 0, 0, 0 };
	char msg[CONFIG_MSG_MAX / 2];

	for (size_t i = 0; i < config_nparams; i++) {
		const struct config_param *p = &config_params[i];
		if (config_param_set(p, ld->cfg, p->def, msg, sizeof msg) < 0)
			config_error(ld, none, "%s: bad default in config_table.c: %s", p->key, msg);
	}
}

int config_load(const char *path, struct config **out, char *errbuf, size_t errsize)
{
	struct config_loader ld = { .path = path, .errbuf = errbuf, .errsize = errsize };
	yaml_parser_t parser;
	yaml_document_t doc;
	int have_parser = 0, have_doc = 0;
	FILE *f = NULL;
	int rc = -1;

	*out = NULL;
	if (errsize)
		errbuf[0] = '\0';
	ld.cfg = calloc(1, sizeof *ld.cfg);
	ld.marks = calloc(config_nparams, sizeof *ld.marks);
	ld.state = calloc(config_nparams, sizeof *ld.state);
	if (!ld.cfg || !ld.marks || !ld.state || !(ld.cfg->path = strdup(path))) {
		config_append(&ld, "%s: out of memory", path);
		goto cleanup;
	}
	config_load_defaults(&ld);
	if (ld.nerrors)
		goto cleanup;

	f = fopen(path, "rb");
	if (!f) {
		config_append(&ld, "%s: cannot open: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!yaml_parser_initialize(&parser)) {
		config_append(&ld, "%s: out of memory", path);
		goto cleanup;
	}
	have_parser = 1;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		config_syntax_error(&ld, &parser, f);
		goto cleanup;
	}
	have_doc = 1;
	ld.doc = &doc;
	config_load_root(&ld, yaml_document_get_root_node(&doc));
	config_check_single_document(&ld, &parser, f);
	config_check(&ld);
	if (ld.nerrors)
		goto cleanup;

	*out = ld.cfg;
	ld.cfg = NULL; /* now owned by the caller */
	rc = 0;
cleanup:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	config_free(ld.cfg);
	free(ld.marks);
	free(ld.state);
	return rc;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < config_nparams; i++)
		config_param_free(&config_params[i], cfg);
	free(cfg->path);
	free(cfg);
}

static void config_describe_range(const struct config_param *p, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	switch (p->type) {
	case CONFIG_T_INT:
		snprintf(buf, size, "%.0f..%.0f", p->min, p->max);
		break;
	case CONFIG_T_DOUBLE:
		snprintf(buf, size, "%g..%g", p->min, p->max);
		break;
	case CONFIG_T_ENUM:
		for (size_t i = 0; p->values[i] && off < size; i++)
			off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "|" : "",
						p->values[i]);
		break;
	case CONFIG_T_STRING:
		snprintf(buf, size, "%s",
			 (p->flags & CONFIG_LISTEN)	 ? "host:port or :port"
			 : (p->flags & CONFIG_NONEMPTY) ? "non-empty"
							 : "any");
		break;
	case CONFIG_T_STRING_MAP:
		snprintf(buf, size, "key: value");
		break;
	}
}

void config_describe(FILE *out)
{
	static const char row[] = "%-30s %-8s %-21s %-21s %-6s %s\n";
	char range[128];

	fprintf(out, row, "KEY", "TYPE", "DEFAULT", "RANGE", "SIGHUP", "DESCRIPTION");
	for (size_t i = 0; i < config_nparams; i++) {
		const struct config_param *p = &config_params[i];
		const char *def = p->def;
		if (p->type == CONFIG_T_STRING_MAP)
			def = "{}";
		else if (!*def)
			def = "\"\"";
		config_describe_range(p, range, sizeof range);
		fprintf(out, row, p->key, config_type_name(p->type), def, range,
			(p->flags & CONFIG_RELOADABLE) ? "yes" : "no", p->description);
	}
	fprintf(out, "Values may use ${VAR} and ${VAR:-default} (default when VAR is unset or "
		     "empty).\n");
}

/* Every option of a libpq conninfo whose name says password (password, sslpassword). */
static void config_register_conninfo(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	int has_password = !opts; /* unparsable: it may still hold one, mask all of it */

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strstr(o->keyword, "password") && o->val && *o->val) {
			log_add_secret(o->val);
			has_password = 1;
		}
	/* The whole string too: in a URI the password may be percent-encoded. */
	if (has_password)
		log_add_secret(conninfo);
	PQconninfoFree(opts);
	PQfreemem(err);
}

void config_register_secrets(const struct config *cfg)
{
	if (!cfg)
		return;
	if (cfg->postgres.conninfo && *cfg->postgres.conninfo)
		config_register_conninfo(cfg->postgres.conninfo);
	for (size_t i = 0; i < cfg->kafka.nproperties; i++)
		if (config_property_is_secret(cfg->kafka.properties[i].key))
			log_add_secret(cfg->kafka.properties[i].value);
}
