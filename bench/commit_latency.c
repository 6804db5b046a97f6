/*
 * commit_latency: how long after send_message's commit is acknowledged the
 * event reaches a LISTEN client, at a light fixed rate.
 *
 *   commit_latency CONNINFO MODE COUNT RATE
 * MODE is chat.event_mode (deferred or direct). One connection sends
 * (autocommit), another LISTENs; after each acknowledged send the listener
 * waits for that message's event. An event already there when the ack
 * arrives counts as 0. prints: n=N p50_us=X p99_us=Y max_us=Z
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Microseconds, monotonic. */
static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Connect or die. */
static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

/* Run a query returning one value, or die. */
static char *
one_value(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);
	char	   *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	v = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
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
	PGconn	   *snd, *lst;
	char		sql[256], needle[64];
	char	   *chat;
	int			count, i;
	double		rate, *lat;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s CONNINFO deferred|direct COUNT RATE\n", argv[0]);
		return 2;
	}
	count = atoi(argv[3]);
	rate = atof(argv[4]);
	lat = calloc(count, sizeof(double));
	snd = connect_or_die(argv[1]);
	lst = connect_or_die(argv[1]);
	snprintf(sql, sizeof(sql), "SET chat.event_mode = %s", argv[2]);
	free(one_value(snd, sql));
	chat = one_value(snd, "SELECT chat.open_chat(900000001, 'direct', NULL, 900000002)");
	free(one_value(lst, "LISTEN chat_events"));

	for (i = 0; i < count; i++)
	{
		double		start = now_us(), acked, got = -1;
		char	   *seq;
		PGnotify   *n;

		snprintf(sql, sizeof(sql),
				 "SELECT (chat.send_message(900000001, %s, 'latency probe') ->> 'seq')", chat);
		seq = one_value(snd, sql);
		acked = now_us();
		snprintf(needle, sizeof(needle), "\"chat_id\":%s,\"seq\":%s,", chat, seq);
		while (got < 0)
		{
			int			sock = PQsocket(lst);
			fd_set		rf;
			struct timeval tv = {2, 0};

			if (!PQconsumeInput(lst))
				return 1;
			while ((n = PQnotifies(lst)) != NULL)
			{
				if (strstr(n->extra, needle))
					got = now_us();
				PQfreemem(n);
			}
			if (got >= 0)
				break;
			FD_ZERO(&rf);
			FD_SET(sock, &rf);
			if (select(sock + 1, &rf, NULL, NULL, &tv) == 0)
			{
				fprintf(stderr, "event for seq %s not received within 2 s\n", seq);
				return 1;
			}
		}
		lat[i] = got > acked ? got - acked : 0;
		free(seq);
		/* keep the rate: sleep what is left of this message's slot */
		if (1e6 / rate > now_us() - start)
			usleep((useconds_t) (1e6 / rate - (now_us() - start)));
	}
	qsort(lat, count, sizeof(double), cmp);
	printf("n=%d p50_us=%.0f p99_us=%.0f max_us=%.0f\n", count, lat[count / 2],
		   lat[(int) (count * 0.99)], lat[count - 1]);
	PQfinish(snd);
	PQfinish(lst);
	free(lat);
	free(chat);
	return 0;
}
