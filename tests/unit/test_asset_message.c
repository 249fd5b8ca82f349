/* asset_message_decode, driven by the corpus in tests/data/messages/: one Kafka value per
 * file, named <expected status>--<case>.json, with optional <case>.expect checks (see
 * tests/data/gen_messages.sh, which generates the corpus). The 5 MB values are built here. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_data.h"
#include <jansson.h>

#include "asset_message.h"

#define REASON_SIZE 512 /* what process_request passes */

/* The whole file in a buffer of exactly its size (no terminator), so reading past `len`
 * is caught by AddressSanitizer. NULL for an empty file. */
static unsigned char *read_exact(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	*len = (size_t)n;
	unsigned char *buf = NULL;
	if (n > 0) {
		buf = malloc((size_t)n);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	}
	fclose(f);
	return buf;
}

static const char *status_name(enum decode_status st)
{
	switch (st) {
	case DECODE_OK: return "ok";
	case DECODE_MALFORMED: return "malformed_message";
	case DECODE_UNSUPPORTED: return "unsupported_message";
	}
	return "?";
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + k >= n)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static const char *const field_names[] = { "request_id", "tenant_id",      "folder_id",
					   "name",       "content_sha256", "size_bytes",
					   "mime_type",  "storage_uri",    "metadata" };

static const char *field_value(const struct asset_request *r, const char *name)
{
	if (strcmp(name, "request_id") == 0) return r->request_id;
	if (strcmp(name, "tenant_id") == 0) return r->tenant_id;
	if (strcmp(name, "folder_id") == 0) return r->folder_id;
	if (strcmp(name, "name") == 0) return r->name;
	if (strcmp(name, "content_sha256") == 0) return r->content_sha256;
	if (strcmp(name, "size_bytes") == 0) return r->size_bytes;
	if (strcmp(name, "mime_type") == 0) return r->mime_type;
	if (strcmp(name, "storage_uri") == 0) return r->storage_uri;
	if (strcmp(name, "metadata") == 0) return r->metadata;
	fail_msg("unknown field %s in an .expect file", name);
	return NULL;
}

/* An independent reading of an `ok` value (jansson without the decoder): each string field
 * comes out verbatim, JSON null/absent as NULL, size_bytes as an integer literal of the same
 * value, metadata as JSON equal to the input's (the exact text is for the .expect files).
 * Returns the number of problems (printed). */
static int check_ok_against_json(const char *file, const unsigned char *buf, size_t len,
				 const struct asset_request *r)
{
	int problems = 0;
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)buf, len, JSON_DECODE_INT_AS_REAL, &jerr);
	if (!doc) {
		print_error("%s: decoded ok but jansson says: %s\n", file, jerr.text);
		return 1;
	}
	for (size_t i = 0; i < sizeof field_names / sizeof field_names[0]; i++) {
		const char *name = field_names[i];
		const char *got = field_value(r, name);
		json_t *v = json_object_get(doc, name);
		if (!v || json_is_null(v)) {
			if (got) {
				print_error("%s: %s should be NULL, is \"%s\"\n", file, name, got);
				problems++;
			}
		} else if (json_is_string(v)) {
			if (!got || strlen(got) != json_string_length(v) ||
			    strcmp(got, json_string_value(v)) != 0) {
				print_error("%s: %s is not the input verbatim\n", file, name);
				problems++;
			}
		} else if (json_is_number(v)) {
			char *end = NULL;
			double d = got ? strtod(got, &end) : 0;
			if (!got || *end || strpbrk(got, ".eE") || d != json_number_value(v)) {
				print_error("%s: %s = %s, expected the integer %.17g\n", file, name,
					    got ? got : "NULL", json_number_value(v));
				problems++;
			}
		} else if (json_is_object(v)) {
			json_t *back = got ? json_loads(got, JSON_DECODE_INT_AS_REAL, &jerr) : NULL;
			if (!back || !json_equal(back, v)) {
				print_error("%s: %s does not round-trip: %s\n", file, name,
					    got ? got : "NULL");
				problems++;
			}
			json_decref(back);
		} else {
			print_error("%s: %s has a JSON type the decoder should reject\n", file, name);
			problems++;
		}
	}
	json_decref(doc);
	return problems;
}

/* Applies <case>.expect if present. Returns the number of problems (printed). */
static int check_expect_file(const char *dir, const char *file, enum decode_status st,
			     const struct asset_request *r, const char *reason)
{
	char *path;
	size_t base = strlen(file) - strlen(".json");
	assert_true(asprintf(&path, "%s/%.*s.expect", dir, (int)base, file) > 0);
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return 0;
	int problems = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		char *eq = strchr(line, '=');
		char *tilde = strchr(line, '~');
		if (tilde && (!eq || tilde < eq)) {
			*tilde = '\0';
			assert_string_equal(line, "reason");
			if (!strstr(reason, tilde + 1)) {
				print_error("%s: reason \"%s\" lacks \"%s\"\n", file, reason, tilde + 1);
				problems++;
			}
			continue;
		}
		if (eq)
			*eq = '\0';
		if (st != DECODE_OK && strcmp(line, "request_id") != 0)
			fail_msg("%s: only request_id and reason can be checked on a failure", file);
		const char *got = field_value(r, line);
		if (!eq && got) {
			print_error("%s: %s should be NULL, is \"%s\"\n", file, line, got);
			problems++;
		} else if (eq && (!got || strcmp(got, eq + 1) != 0)) {
			print_error("%s: %s = %s%s%s, expected \"%s\"\n", file, line, got ? "\"" : "",
				    got ? got : "NULL", got ? "\"" : "", eq + 1);
			problems++;
		}
	}
	free(line);
	fclose(f);
	return problems;
}

struct corpus_stats {
	int files, ok, malformed, unsupported, problems;
	/* failures whose reason is unfit for x-error-message (control characters, bad UTF-8) */
	char dirty[2048];
};

static void run_corpus(struct corpus_stats *cs)
{
	char *dir = test_path("messages");
	DIR *d = opendir(dir);
	struct dirent *de;

	memset(cs, 0, sizeof *cs);
	if (!d)
		fail_msg("cannot open %s", dir);
	while ((de = readdir(d))) {
		const char *file = de->d_name;
		size_t flen = strlen(file);
		const char *sep = strstr(file, "--");
		if (flen < 5 || strcmp(file + flen - 5, ".json") != 0)
			continue;
		if (!sep)
			fail_msg("%s: name must be <expected>--<case>.json", file);

		enum decode_status want = DECODE_OK;
		size_t plen = (size_t)(sep - file);
		if (plen == 2 && strncmp(file, "ok", 2) == 0)
			want = DECODE_OK, cs->ok++;
		else if (plen == 17 && strncmp(file, "malformed_message", 17) == 0)
			want = DECODE_MALFORMED, cs->malformed++;
		else if (plen == 19 && strncmp(file, "unsupported_message", 19) == 0)
			want = DECODE_UNSUPPORTED, cs->unsupported++;
		else
			fail_msg("%s: unknown expected status", file);
		cs->files++;

		char *path;
		size_t len;
		assert_true(asprintf(&path, "%s/%s", dir, file) > 0);
		unsigned char *buf = read_exact(path, &len);
		free(path);

		struct asset_request req;
		char reason[REASON_SIZE];
		memset(&req, 0xff, sizeof req); /* the decoder must initialise everything */
		memset(reason, 'X', sizeof reason);
		enum decode_status st = asset_message_decode(buf, len, &req, reason, sizeof reason);
		if (st != want) {
			print_error("%s: expected %s, got %s (%s)\n", file, status_name(want),
				    status_name(st), st == DECODE_OK ? "" : reason);
			cs->problems++;
		}
		assert_non_null(memchr(reason, '\0', sizeof reason));
		if (st == DECODE_OK) {
			cs->problems += check_ok_against_json(file, buf, len, &req);
		} else {
			if (reason[0] == '\0') {
				print_error("%s: empty reason\n", file);
				cs->problems++;
			}
			if (has_control(reason) ||
			    !utf8_valid((const unsigned char *)reason, strlen(reason))) {
				size_t used = strlen(cs->dirty);
				snprintf(cs->dirty + used, sizeof cs->dirty - used, "  %s\n", file);
			}
		}
		cs->problems += check_expect_file(dir, file, st, &req, reason);
		asset_request_clear(&req);
		/* cleared: safe to clear again, and nothing left pointing anywhere */
		assert_null(req.doc);
		assert_null(req.request_id);
		assert_null(req.owned_metadata);
		asset_request_clear(&req);
		free(buf);
	}
	closedir(d);
	free(dir);
}

static void test_corpus(void **state)
{
	(void)state;
	struct corpus_stats cs;
	run_corpus(&cs);
	/* the corpus is really there and covers the three outcomes */
	assert_true(cs.files >= 100);
	assert_true(cs.ok >= 25);
	assert_true(cs.malformed >= 60);
	assert_true(cs.unsupported >= 10);
	assert_int_equal(cs.problems, 0);
}

/* The reason becomes x-error-message (SPEC section 4: UTF-8 text) and a log field: it must be
 * valid UTF-8 without raw control characters, whatever bytes the message held.
 * jansson quotes the offending token raw, and a long field may be cut mid-character:
 * asset_message_decode cleans the reason. */
static void test_reason_is_clean_text(void **state)
{
	(void)state;
	struct corpus_stats cs;
	run_corpus(&cs);
	assert_false(cs.dirty[0]);
}

/* 5 MB values, built here rather than committed: a valid head, then
 * "<field>":<open><fill repeated><tail>, `target` bytes in all. *fill_len gets the repeat count. */
static char *big_message(size_t target, const char *field, const char *open, char fill,
			 const char *tail, size_t *len, size_t *fill_len)
{
	char *buf = malloc(target);
	assert_non_null(buf);
	int n = snprintf(buf, target, "{\"type\":\"asset.create\",\"version\":1,"
			 "\"request_id\":\"0b5c2f8e-6a3d-4c1e-9f7a-2d4e6b8a1c3f\",\"%s\":%s",
			 field, open);
	assert_true(n > 0 && (size_t)n + strlen(tail) < target);
	size_t pos = (size_t)n;
	*fill_len = target - pos - strlen(tail);
	memset(buf + pos, fill, *fill_len);
	pos += *fill_len;
	memcpy(buf + pos, tail, strlen(tail));
	*len = pos + strlen(tail);
	return buf;
}

static void test_five_megabytes(void **state)
{
	(void)state;
	const size_t five_mb = 5u << 20;
	struct asset_request req;
	char reason[REASON_SIZE];
	size_t len, fill;

	/* a 5 MB name: JSON allows it, PostgreSQL's CHECK refuses it */
	char *buf = big_message(five_mb, "name", "\"", 'n', "\"}", &len, &fill);
	assert_int_equal(len, five_mb);
	assert_true(fill > five_mb - 200);
	assert_int_equal(asset_message_decode(buf, len, &req, reason, sizeof reason), DECODE_OK);
	assert_non_null(req.name);
	assert_int_equal(strlen(req.name), fill);
	assert_int_equal(req.name[0], 'n');
	assert_int_equal(req.name[fill - 1], 'n');
	assert_string_equal(req.request_id, "0b5c2f8e-6a3d-4c1e-9f7a-2d4e6b8a1c3f");
	asset_request_clear(&req);

	/* the same, unterminated: malformed, and nothing readable */
	assert_int_equal(asset_message_decode(buf, len - 2, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	assert_true(reason[0] != '\0');
	assert_null(req.request_id);
	asset_request_clear(&req);
	free(buf);

	/* 5 MB of '[' inside metadata: too deep, refused without blowing the stack */
	buf = big_message(five_mb, "metadata", "", '[', "", &len, &fill);
	assert_int_equal(asset_message_decode(buf, len, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	assert_true(reason[0] != '\0');
	asset_request_clear(&req);
	free(buf);

	/* 5 MB of whitespace before a value: fine */
	buf = big_message(five_mb, "size_bytes", "", ' ', "42}", &len, &fill);
	assert_int_equal(asset_message_decode(buf, len, &req, reason, sizeof reason), DECODE_OK);
	assert_string_equal(req.size_bytes, "42");
	asset_request_clear(&req);
	free(buf);

	/* a 5 MB metadata object round-trips */
	buf = big_message(five_mb, "metadata", "{\"blob\":\"", 'b', "\"}}", &len, &fill);
	assert_int_equal(asset_message_decode(buf, len, &req, reason, sizeof reason), DECODE_OK);
	assert_non_null(req.metadata);
	assert_int_equal(strlen(req.metadata), fill + strlen("{\"blob\":\"\"}"));
	assert_int_equal(strncmp(req.metadata, "{\"blob\":\"bbb", 12), 0);
	asset_request_clear(&req);
	free(buf);
}

static void test_empty_and_null_value(void **state)
{
	(void)state;
	struct asset_request req;
	char reason[REASON_SIZE];

	assert_int_equal(asset_message_decode(NULL, 0, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	assert_true(reason[0] != '\0');
	assert_null(req.doc);
	asset_request_clear(&req);
	/* a tombstone has payload NULL; its len is 0 but must not be trusted */
	assert_int_equal(asset_message_decode(NULL, 10, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	asset_request_clear(&req);
	assert_int_equal(asset_message_decode("{}", 0, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	asset_request_clear(&req);
}

/* Only `len` bytes are read: what follows in memory is not part of the value. */
static void test_len_is_respected(void **state)
{
	(void)state;
	const char *full = "{\"type\":\"asset.create\",\"version\":1,\"name\":\"n\"}GARBAGE";
	size_t len = strlen(full) - strlen("GARBAGE");
	struct asset_request req;
	char reason[REASON_SIZE];

	assert_int_equal(asset_message_decode(full, len, &req, reason, sizeof reason), DECODE_OK);
	assert_string_equal(req.name, "n");
	asset_request_clear(&req);
	assert_int_equal(asset_message_decode(full, strlen(full), &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	asset_request_clear(&req);
	/* one byte short: the closing brace is missing */
	assert_int_equal(asset_message_decode(full, len - 1, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	asset_request_clear(&req);
}

/* A small reason buffer truncates, never overflows. */
static void test_small_reason_buffer(void **state)
{
	(void)state;
	const char *v = "{\"type\":\"asset.create\",\"version\":1,\"metadata\":\"a long enough\"}";
	struct asset_request req;
	char reason[16];

	memset(reason, 'X', sizeof reason);
	assert_int_equal(asset_message_decode(v, strlen(v), &req, reason, 8), DECODE_MALFORMED);
	assert_int_equal(strlen(reason), 7);
	assert_int_equal(reason[8], 'X');
	asset_request_clear(&req);
	assert_int_equal(asset_message_decode(v, strlen(v), &req, reason, 1), DECODE_MALFORMED);
	assert_string_equal(reason, "");
	asset_request_clear(&req);
	assert_int_equal(asset_message_decode("[", 1, &req, reason, 5), DECODE_MALFORMED);
	assert_int_equal(strlen(reason), 4);
	asset_request_clear(&req);
}

/* The reason names what is wrong precisely enough for an operator. */
static void test_reason_wording(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		const char *want;
	} cases[] = {
		{ "{\"type\":\"asset.create\",\"version\":1,\"size_bytes\":\"10\"}",
		  "field \"size_bytes\" must be an integer, not string" },
		{ "{\"type\":\"asset.create\",\"version\":1,\"metadata\":[]}",
		  "field \"metadata\" must be an object, not array" },
		{ "{\"type\":\"asset.create\",\"version\":1,\"name\":true}",
		  "field \"name\" must be a string, not boolean" },
		{ "{\"type\":\"asset.create\",\"version\":1,\"name\":1.5}",
		  "field \"name\" must be a string, not number" },
		{ "{\"type\":\"asset.create\",\"version\":2}",
		  "unsupported version 2 of asset.create (expected 1)" },
		{ "{\"type\":\"asset.delete\",\"version\":1}",
		  "unsupported type \"asset.delete\" (expected \"asset.create\")" },
		{ "{\"version\":1}", "field \"type\" is missing" },
		{ "{\"type\":\"asset.create\"}", "field \"version\" is missing" },
		{ "{\"type\":\"asset.create\",\"version\":\"1\"}",
		  "field \"version\" must be an integer" },
		{ "[]", "message must be a JSON object, not array" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct asset_request req;
		char reason[REASON_SIZE];
		enum decode_status st = asset_message_decode(cases[i].value, strlen(cases[i].value),
							     &req, reason, sizeof reason);
		assert_int_not_equal(st, DECODE_OK);
		assert_string_equal(reason, cases[i].want);
		asset_request_clear(&req);
	}
}

/* The decoded strings live in the request, independent of the input buffer. */
static void test_independent_of_input(void **state)
{
	(void)state;
	char *v = strdup("{\"type\":\"asset.create\",\"version\":1,\"name\":\"kept\","
			 "\"size_bytes\":5,\"metadata\":{\"k\":\"v\"}}");
	struct asset_request req;
	char reason[REASON_SIZE];

	assert_non_null(v);
	assert_int_equal(asset_message_decode(v, strlen(v), &req, reason, sizeof reason), DECODE_OK);
	memset(v, 'Z', strlen(v));
	free(v);
	assert_string_equal(req.name, "kept");
	assert_string_equal(req.size_bytes, "5");
	assert_string_equal(req.metadata, "{\"k\":\"v\"}");
	assert_string_equal(reason, "");

	/* decoding again into a used request is the caller's job to clear first; after clear
	 * the same struct serves a failure and then a success */
	asset_request_clear(&req);
	assert_int_equal(asset_message_decode("{\"type\":1}", 10, &req, reason, sizeof reason),
			 DECODE_MALFORMED);
	asset_request_clear(&req);
	assert_int_equal(asset_message_decode("{\"type\":\"asset.create\",\"version\":1}", 35, &req,
					      reason, sizeof reason),
			 DECODE_OK);
	assert_null(req.name);
	assert_null(req.metadata);
	asset_request_clear(&req);
	asset_request_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_reason_is_clean_text),
		cmocka_unit_test(test_five_megabytes),
		cmocka_unit_test(test_empty_and_null_value),
		cmocka_unit_test(test_len_is_respected),
		cmocka_unit_test(test_small_reason_buffer),
		cmocka_unit_test(test_reason_wording),
		cmocka_unit_test(test_independent_of_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
