/* UTF-8 hygiene for text that leaves the process (headers, log lines): header values must be
 * UTF-8 text (SPEC section 4), and a JSON log line must stay valid JSON. */
#ifndef AW_UTF8_H
#define AW_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one.
 * `avail` bytes may be read. */
size_t utf8_sequence_len(const unsigned char *s, size_t avail);

/* In place: replaces every byte that is not part of valid UTF-8, and every C0 control
 * character and DEL, with '?'. */
void utf8_sanitize(char *s);

/* In place: cuts s to at most max bytes without splitting a character. */
void utf8_truncate(char *s, size_t max);

#endif
