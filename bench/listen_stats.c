/*
 * listen_stats: LISTEN on chat_events for a fixed time and report how many
 * payloads and events arrived and the latency from each event's created_at
 * (stamped inside the sending transaction, just before its commit) to its
 * receipt here. Same machine, same clock.
 *
 *   listen_stats CONNINFO SECONDS
 * prints: payloads=N events=M p50_us=X p99_us=Y max_us=Z
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>

static double *lat;
static long nlat, caplat;

/* Microseconds since the epoch, now. */
static double
now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1e6 + tv.tv_usec;
}

/* Parse "YYYY-MM-DDTHH:MM:SS[.ffffff]±HH:MM" (or space for T) to epoch µs; <0 if not. */
static double
parse_ts(const char *s)
{
	struct tm tm;
	int			y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	double		frac = 0;
	char		sign = '+';
	const char *p;

	if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	p = s + n;
	if (*p == '.')
	{
		double		scale = 0.1;

		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	if (*p == '+' || *p == '-')
	{
		sign = *p;
		sscanf(p + 1, "%2d:%2d", &oh, &om);
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return ((double) timegm(&tm) - (sign == '+' ? 1 : -1) * (oh * 3600 + om * 60)) * 1e6 + frac * 1e6;
}

/* Count the events of one payload and record the latency of each stamped one. */
static long
scan_payload(const char *payload, double received)
{
	long		events = 0;
	const char *p;

	/*
	 * every chat event's envelope starts {"to":[ (inside a JSON string the
	 * quotes would be escaped); resync's "to" is null and is not counted
	 */
	for (p = payload; (p = strstr(p, "{\"to\":[")) != NULL; p += 7)
		events++;
	for (p = payload; (p = strstr(p, "\"created_at\"")) != NULL;)
	{
		double		ts;

		p = strchr(p + 12, '"');
		if (p == NULL)
			break;
		ts = parse_ts(++p);
		if (ts > 0)
		{
			if (nlat == caplat)
			{
				caplat = caplat ? caplat * 2 : 65536;
				lat = realloc(lat, caplat * sizeof(double));
			}
			lat[nlat++] = received - ts;
		}
	}
	return events;
}

static int
cmp(const void *a, const void *b)
{
	double		x = *(const double *) a, y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	double		until;
	long		payloads = 0, events = 0;

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s CONNINFO SECONDS\n", argv[0]);
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	res = PQexec(conn, "LISTEN chat_events");
	PQclear(res);
	printf("listening\n");
	fflush(stdout);
	until = now_us() + atof(argv[2]) * 1e6;
	while (now_us() < until)
	{
		fd_set		rf;
		struct timeval tv = {0, 100000};
		PGnotify   *n;
		int			sock = PQsocket(conn);

		FD_ZERO(&rf);
		FD_SET(sock, &rf);
		if (select(sock + 1, &rf, NULL, NULL, &tv) < 0)
			break;
		if (!PQconsumeInput(conn))
			break;
		while ((n = PQnotifies(conn)) != NULL)
		{
			payloads++;
			events += scan_payload(n->extra, now_us());
			PQfreemem(n);
		}
	}
	qsort(lat, nlat, sizeof(double), cmp);
	printf("payloads=%ld events=%ld p50_us=%.0f p99_us=%.0f max_us=%.0f\n", payloads, events,
		   nlat ? lat[nlat / 2] : 0, nlat ? lat[(long) (nlat * 0.99)] : 0, nlat ? lat[nlat - 1] : 0);
	PQfinish(conn);
	free(lat);
	return 0;
}
