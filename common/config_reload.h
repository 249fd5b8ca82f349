/* SIGHUP: a whole new config is read and checked; only then are the reloadable keys
 * (config_table.c, CONFIG_RELOADABLE) swapped into the running one. Keys that need a
 * restart are reported and keep their running value. */
#ifndef AW_CONFIG_RELOAD_H
#define AW_CONFIG_RELOAD_H

#include "config.h"

/* Reads live->path again. Returns the number of keys changed (>= 0), or -1 if the file is
 * invalid (logged with file:line:col; `live` untouched). */
int config_reload(struct config *live);

#endif
