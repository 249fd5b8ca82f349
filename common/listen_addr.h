/* A listen address as written in worker.yaml (metrics.listen): "host:port", "[v6]:port" or
 * ":port" (every interface), port 0..65535 (0: the kernel picks one). Syntax only: the host
 * is resolved when the socket is bound. */
#ifndef AW_LISTEN_ADDR_H
#define AW_LISTEN_ADDR_H

#include <stddef.h>

#define LISTEN_ADDR_HOST_MAX 256

struct listen_addr {
	char host[LISTEN_ADDR_HOST_MAX]; /* "" for every interface; IPv6 without brackets */
	unsigned port;
};

/* Returns 0 and fills *out (may be NULL to only validate), or -1 with the reason in err. */
int listen_addr_parse(const char *s, struct listen_addr *out, char *err, size_t errsize);

#endif
