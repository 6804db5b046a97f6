/*
 * alloc.h: allocation that does not return NULL. Out of memory, the relay
 * logs it and exits: its clients reconnect to another relay and catch up,
 * which is safer than running on with a connection or a request half made.
 */
#ifndef RELAY_ALLOC_H
#define RELAY_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

void	   *xmalloc(size_t size);
void	   *xcalloc(size_t n, size_t size);
void	   *xrealloc(void *p, size_t size);
char	   *xstrdup(const char *s);
char	   *xstrndup(const char *s, size_t n);
int			xasprintf(char **out, const char *fmt,...) __attribute__((format(printf, 2, 3)));
int			xvasprintf(char **out, const char *fmt, va_list ap);

#endif
