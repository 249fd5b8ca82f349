/* Parsing "host:port", "[v6]:port" and ":port". */
#include "listen_addr.h"

#include <stdio.h>
#include <string.h>

/* Letters, digits, '.', '-', '_': hostnames and IPv4 literals. */
static int listen_addr_host_ok(const char *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Hex digits, ':' and '.' (an embedded IPv4), and a "%zone" suffix. */
static int listen_addr_v6_ok(const char *h, size_t n)
{
	size_t colons = 0;
	const char *zone = memchr(h, '%', n);
	size_t addr_len = zone ? (size_t)(zone - h) : n;

	for (size_t i = 0; i < addr_len; i++) {
		char c = h[i];
		colons += c == ':';
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		      c == ':' || c == '.'))
			return 0;
	}
	if (zone && (n - addr_len < 2 || !listen_addr_host_ok(zone + 1, n - addr_len - 1)))
		return 0;
	return colons >= 2;
}

int listen_addr_parse(const char *s, struct listen_addr *out, char *err, size_t errsize)
{
	const char *host = s, *colon, *p;
	size_t hlen;
	unsigned long port = 0;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errsize, "\"%.80s\" is not [address]:port", s);
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		if (!listen_addr_v6_ok(host, hlen)) {
			snprintf(err, errsize, "\"%.*s\" is not an IPv6 address", (int)(hlen > 80 ? 80 : hlen),
				 host);
			return -1;
		}
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			snprintf(err, errsize, "\"%.80s\" is not host:port or :port", s);
			return -1;
		}
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen)) {
			snprintf(err, errsize, "\"%.80s\": an IPv6 address needs brackets, "
					       "e.g. [::1]:9464", s);
			return -1;
		}
		if (!listen_addr_host_ok(s, hlen)) {
			snprintf(err, errsize, "\"%.80s\": the host is not a name or an address", s);
			return -1;
		}
	}
	if (hlen >= LISTEN_ADDR_HOST_MAX) {
		snprintf(err, errsize, "the host is longer than %d bytes", LISTEN_ADDR_HOST_MAX - 1);
		return -1;
	}
	p = colon + 1;
	if (!*p) {
		snprintf(err, errsize, "\"%.80s\" has no port (host:port or :port)", s);
		return -1;
	}
	for (; *p; p++) {
		if (*p < '0' || *p > '9') {
			snprintf(err, errsize, "port \"%.20s\" is not a number", colon + 1);
			return -1;
		}
		port = port * 10 + (unsigned long)(*p - '0');
		if (port > 65535) {
			snprintf(err, errsize, "port \"%.20s\" is out of range 0..65535", colon + 1);
			return -1;
		}
	}
	if (out) {
		memcpy(out->host, host, hlen);
		out->host[hlen] = '\0';
		out->port = (unsigned)port;
	}
	return 0;
}
