/*
 * utf8.h: cutting UTF-8 text (the database's, so valid) without splitting
 * a character: email subjects and previews, push bodies.
 */
#ifndef NOTIFY_UTF8_H
#define NOTIFY_UTF8_H

#include <stddef.h>

/* The length of s (len bytes) cut to at most max bytes, not inside a character. */
static inline size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char) s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* The bytes of the first max_chars characters of s (len bytes). */
static inline size_t
utf8_chars(const char *s, size_t len, size_t max_chars)
{
	size_t		i = 0;

	for (size_t chars = 0; i < len && chars < max_chars; chars++)
		do
			i++;
		while (i < len && ((unsigned char) s[i] & 0xc0) == 0x80);
	return i;
}

#endif
