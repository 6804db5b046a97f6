/*
 * alloc.c: malloc and friends that exit with a log line when memory runs
 * out, instead of handing a NULL to code that would crash on it.
 */
#include "alloc.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
out_of_memory(size_t size)
{
	log_error("out of memory (%zu bytes wanted): exiting", size);
	_exit(70);
}

void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	   *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory(n * size);
	return p;
}

void *
xrealloc(void *old, size_t size)
{
	void	   *p = realloc(old, size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* vasprintf that exits when out of memory; returns the length. */
int
xvasprintf(char **out, const char *fmt, va_list ap)
{
	int			n = vasprintf(out, fmt, ap);

	if (n < 0)
		out_of_memory(0);
	return n;
}

int
xasprintf(char **out, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = xvasprintf(out, fmt, ap);
	va_end(ap);
	return n;
}

char *
xstrndup(const char *s, size_t n)
{
	char	   *p = strndup(s, n);

	if (p == NULL)
		out_of_memory(n + 1);
	return p;
}
