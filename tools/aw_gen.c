/* aw-gen: writes a stream of asset.create requests as aw-kafka --envelope JSON Lines, with a
 * chosen mix of good and bad requests, and a manifest of what each one must become. Used by
 * the demo, the tests and the benchmarks. Deterministic for a given --seed. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_NEW, K_DUPLICATE, K_RACE, K_FK, K_CHECK, K_NOT_NULL, K_MALFORMED, K_KINDS };

static const struct {
	const char *option;
	const char *expect; /* manifest: "ok" = must end in asset_requests; else the DLQ class */
} kinds[K_KINDS] = {
	[K_NEW] = { NULL, "ok" },
	[K_DUPLICATE] = { "duplicates", "ok" },
	[K_RACE] = { "races", "ok" },
	[K_FK] = { "fk", "foreign_key_violation" },
	[K_CHECK] = { "check", "check_violation" },
	[K_NOT_NULL] = { "not-null", "not_null_violation" },
	[K_MALFORMED] = { "malformed", "malformed_message" },
};

static uint64_t rng_state;
static uint64_t content_salt; /* fixed per run: the same content number, the same digest */

static uint64_t rng(void)
{
	/* splitmix64: small, fast, and the same sequence on every machine */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void uuid(char out[37])
{
	uint64_t a = rng(), b = rng();
	snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64,
		 a >> 32, (a >> 16) & 0xffff, a & 0xfff, (b >> 48) & 0xfff, b & (uint64_t)0xffffffffffff);
}

static void sha(char out[65], uint64_t n)
{
	/* Distinct content numbers give distinct digests; only the format matters here. */
	uint64_t x = n * 0x9e3779b97f4a7c15ULL + content_salt;
	for (int i = 0; i < 4; i++)
		snprintf(out + 16 * i, 17, "%016" PRIx64, x * (uint64_t)(i + 1) ^ (x >> 7));
}

static void usage(void)
{
	fprintf(stderr,
		"usage: aw-gen --count N --tenant UUID [--seed S] [--manifest FILE]\n"
		"              [--duplicates PCT] [--races PCT] [--fk PCT] [--check PCT]\n"
		"              [--not-null PCT] [--malformed PCT]\n"
		"Percentages may be fractional. --races makes pairs of requests for the same new\n"
		"content with different keys, so they land on different partitions.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },   { "tenant", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },    { "manifest", required_argument, NULL, 'm' },
		{ "duplicates", required_argument, NULL, K_DUPLICATE },
		{ "races", required_argument, NULL, K_RACE }, { "fk", required_argument, NULL, K_FK },
		{ "check", required_argument, NULL, K_CHECK },
		{ "not-null", required_argument, NULL, K_NOT_NULL },
		{ "malformed", required_argument, NULL, K_MALFORMED },
		{ NULL, 0, NULL, 0 },
	};
	double pct[K_KINDS] = { 0 };
	long count = -1;
	const char *tenant = NULL, *manifest_path = NULL;
	FILE *manifest = NULL;
	uint64_t contents = 0; /* content numbers handed out so far */
	int c;

	rng_state = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': count = atol(optarg); break;
		case 't': tenant = optarg; break;
		case 's': rng_state = strtoull(optarg, NULL, 10); break;
		case 'm': manifest_path = optarg; break;
		default:
			if (c > K_NEW && c < K_KINDS) {
				pct[c] = atof(optarg);
				break;
			}
			usage();
			return 2;
		}
	}
	content_salt = rng_state * 0xbf58476d1ce4e5b9ULL;
	if (count < 0 || !tenant || strlen(tenant) != 36) {
		usage();
		return 2;
	}
	if (manifest_path && !(manifest = fopen(manifest_path, "w"))) {
		perror(manifest_path);
		return 1;
	}
	double total_bad = 0;
	for (int k = K_DUPLICATE; k < K_KINDS; k++)
		total_bad += pct[k];
	if (total_bad > 100) {
		fprintf(stderr, "aw-gen: the percentages add up to more than 100\n");
		return 2;
	}

	for (long i = 0; i < count; i++) {
		char rid[37], other[37], digest[65];
		double roll = (double)(rng() % 1000000) / 10000.0, acc = 0;
		enum kind k = K_NEW;
		for (int j = K_DUPLICATE; j < K_KINDS; j++) {
			acc += pct[j];
			if (roll < acc) {
				k = (enum kind)j;
				break;
			}
		}
		if ((k == K_DUPLICATE && contents == 0) || (k == K_RACE && i + 1 == count))
			k = K_NEW;
		uuid(rid);
		const char *tenant_id = tenant;
		uint64_t content = ++contents;
		long size = (long)(rng() % 1000000);
		if (k == K_DUPLICATE)
			content = 1 + rng() % (contents - 1 ? contents - 1 : 1);
		if (k == K_FK) {
			uuid(other); /* a tenant that does not exist */
			tenant_id = other;
		}
		if (k == K_CHECK)
			size = -1 - (long)(rng() % 100);
		sha(digest, content);

		int emitted = k == K_RACE ? 2 : 1;
		for (int e = 0; e < emitted; e++) {
			if (e == 1)
				uuid(rid); /* same content, another key: another partition */
			printf("{\"key\":\"%s\",\"value\":", rid);
			switch (k) {
			case K_MALFORMED:
				/* Valid JSON, wrong JSON type: keeps its request_id for accounting. */
				printf("{\"type\":\"asset.create\",\"version\":1,\"request_id\":\"%s\","
				       "\"tenant_id\":\"%s\",\"name\":12345,\"content_sha256\":\"%s\","
				       "\"size_bytes\":1,\"storage_uri\":\"s3://demo/%s\"}",
				       rid, tenant_id, digest, rid);
				break;
			case K_NOT_NULL:
				printf("{\"type\":\"asset.create\",\"version\":1,\"request_id\":\"%s\","
				       "\"tenant_id\":\"%s\",\"name\":\"no-uri-%ld\","
				       "\"content_sha256\":\"%s\",\"size_bytes\":%ld}",
				       rid, tenant_id, i, digest, size);
				break;
			default:
				printf("{\"type\":\"asset.create\",\"version\":1,\"request_id\":\"%s\","
				       "\"tenant_id\":\"%s\",\"name\":\"asset-%ld.bin\","
				       "\"content_sha256\":\"%s\",\"size_bytes\":%ld,"
				       "\"mime_type\":\"application/octet-stream\","
				       "\"storage_uri\":\"s3://demo/%s\",\"metadata\":{\"n\":%ld}}",
				       rid, tenant_id, i, digest, size, digest, i);
			}
			printf("}\n");
			if (manifest)
				fprintf(manifest, "%s %s\n", rid, kinds[k].expect);
		}
		if (k == K_RACE)
			i++;
	}
	if (manifest && fclose(manifest) != 0) {
		perror(manifest_path);
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
