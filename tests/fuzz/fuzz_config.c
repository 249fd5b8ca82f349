/* libFuzzer target: worker.yaml loading must never crash or leak, and a rejected file must
 * name file:line:col. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;
	struct config *cfg = NULL;
	char errbuf[4096];

	if (fd < 0) {
		fd = memfd_create("fuzz-config", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		setenv("FUZZ_SET", "value", 1);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (config_load(path, &cfg, errbuf, sizeof errbuf) == 0) {
		config_free(cfg);
	} else if (strncmp(errbuf, path, strlen(path)) != 0 || errbuf[strlen(path)] != ':') {
		abort(); /* every error names the file (then line:col) */
	}
	return 0;
}
