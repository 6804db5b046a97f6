/*
 * log.c: one line per record: time, level, message. Never logs a token:
 * libwebsockets' own lines are scrubbed of access_token values.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <libwebsockets.h>

int			log_level = LOGL_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/* Format and print one record. */
void
log_write(int level, const char *fmt,...)
{
	char		msg[2048];
	char		stamp[32];
	struct timeval tv;
	struct tm	tm;
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03dZ %s %s\n", stamp, (int) (tv.tv_usec / 1000),
			level_names[level], msg);
}

/* "error", "warn", "info" or "debug" to a level; -1 if unknown. */
int
log_parse_level(const char *name)
{
	for (int i = 0; i <= LOGL_DEBUG; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return LOGL_WARN;
	return -1;
}

/* libwebsockets' log sink: scrub tokens, map levels, drop the newline. */
void
log_lws_emit(int level, const char *line)
{
	char		buf[1024];
	char	   *p;
	size_t		n;

	snprintf(buf, sizeof(buf), "%s", line);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	for (p = strstr(buf, "access_token="); p; p = strstr(p, "access_token="))
	{
		char	   *v = p + strlen("access_token=");

		while (*v && *v != '&' && *v != ' ')
			*v++ = '*';
		p = v;
	}
	if ((p = strcasestr(buf, "bearer ")) != NULL)
		for (p += 7; *p && *p != ' '; p++)
			*p = '*';
	if (level & LLL_ERR)
		log_error("lws: %s", buf);
	else
		log_warn("lws: %s", buf);
}
