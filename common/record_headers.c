#include "record_headers.h"

#include "utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int record_header_int(rd_kafka_headers_t *hdrs, const char *name, int64_t *out)
{
	const void *val;
	size_t len;
	char buf[32], *end;

	if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    !val || len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, val, len);
	buf[len] = '\0';
	/* Plain decimal only: strtoll would also take " 1", "+1", and stop at an inner NUL. */
	if (strlen(buf) != len || !(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
		return -1;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end || end == buf)
		return -1;
	*out = v;
	return 0;
}

static int utf8_valid(const void *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence_len((const unsigned char *)p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

void record_origin_read(const rd_kafka_message_t *m, const char *retry_topic,
			struct record_origin *o)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *val;
	size_t len;
	int64_t v;

	memset(o, 0, sizeof *o);
	snprintf(o->topic, sizeof o->topic, "%s", rd_kafka_topic_name(m->rkt));
	o->partition = m->partition;
	o->offset = m->offset;
	/* headers are owned by the message */
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	if (rd_kafka_header_get_last(hdrs, HDR_ORIGINAL_TOPIC, &val, &len) == 0 && val &&
	    len > 0 && len < sizeof o->topic && !memchr(val, '\0', len) &&
	    utf8_valid(val, len) &&
	    record_header_int(hdrs, HDR_ORIGINAL_PARTITION, &v) == 0 && v >= 0 && v <= INT32_MAX) {
		int64_t off;
		if (record_header_int(hdrs, HDR_ORIGINAL_OFFSET, &off) == 0 && off >= 0) {
			memcpy(o->topic, val, len);
			o->topic[len] = '\0';
			o->partition = (int32_t)v;
			o->offset = off;
		}
	}
	if (strcmp(rd_kafka_topic_name(m->rkt), retry_topic) != 0)
		return;
	if (record_header_int(hdrs, HDR_ATTEMPT, &v) == 0 && v >= 0 && v < 1000000)
		o->attempts = (int)v;
	if (record_header_int(hdrs, HDR_RETRY_NOT_BEFORE, &v) == 0 && v > 0)
		o->not_before_ms = v;
}

void record_headers_strip_decision(rd_kafka_headers_t *hdrs)
{
	static const char *const names[] = { HDR_ERROR_CLASS, HDR_ERROR_SQLSTATE,
					     HDR_ERROR_CONSTRAINT, HDR_ERROR_MESSAGE, HDR_ATTEMPT,
					     HDR_RETRY_NOT_BEFORE, HDR_WORKER_ID };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		rd_kafka_header_remove(hdrs, names[i]);
}

void record_header_add_int(rd_kafka_headers_t *hdrs, const char *name, int64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%" PRId64, v);
	rd_kafka_header_add(hdrs, name, -1, buf, n);
}
