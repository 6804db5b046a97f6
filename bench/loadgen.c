/*
 * loadgen.c: the benchmark's WebSocket client (libwebsockets). Opens N
 * connections as distinct users FIRST..FIRST+N-1 to chat-relay (an HS256
 * token per user, minted here) or to the Node peer (?user=N), then records,
 * for every frame holding "ts":<µs> or ts=<µs> (CLOCK_MONOTONIC at publish),
 * the delay until it arrived. Prints one JSON line when done.
 *
 *   loadgen --host 127.0.0.1 --port 18500 --n 1000 [--first 1]
 *           [--secret FILE --origin ORIGIN]   (chat-relay; else ?user=N)
 *           [--hold S] [--measure S] [--ready-file F]
 *           [--arrivals F] [--event-lib libev|poll]
 *
 * --arrivals writes "chat_id seq unix_µs" for every message event measured
 * (the full path: bench/commit_to_frame.py joins them with the commit
 * timestamps). The loop is libev (epoll) by default: with poll(2) over
 * 1,000 sockets the load generator spent more CPU than the relay it
 * measured, on the same 2 cores.
 *
 * After all connections are open it writes --ready-file (if given), waits
 * --hold seconds (idle: memory measurement), then counts frames for
 * --measure seconds.
 */
#include <ev.h>
#include <libwebsockets.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *host = "127.0.0.1";
static const char *origin = "http://bench.local";
static int	port = 18500;
static int	n_conns = 1000;
static long first_user = 1;
static char *secret;
static int	hold_s = 0;
static int	measure_s = 10;
static const char *ready_file;
static FILE *arrivals;
static const char *event_lib = "libev";

static struct lws_context *ctx;
static int	opened,
			failed,
			closed,
			next_user;
static int	pending;
static uint32_t *lat;
static size_t n_lat,
			cap_lat;
static uint64_t frames;
static int64_t t_measure_start,
			t_measure_end;
static bool interrupted;

/* Monotonic microseconds (same clock as the publishers' timestamps). */
static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* base64url without padding. */
static void
b64url(const unsigned char *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t		i,
				o = 0;

	for (i = 0; i + 2 < len; i += 3)
	{
		out[o++] = a[in[i] >> 2];
		out[o++] = a[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = a[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		out[o++] = a[in[i + 2] & 63];
	}
	if (len - i == 1)
	{
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	}
	else if (len - i == 2)
	{
		out[o++] = a[in[i] >> 2];
		out[o++] = a[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = a[(in[i + 1] & 15) << 2];
	}
	out[o] = '\0';
}

/* An HS256 token for user. */
static void
make_token(long user, char *out)
{
	char		claims[128],
				head[64],
				body[256],
				signing[512];
	unsigned char mac[32];
	unsigned int maclen = 32;
	char		sig[64];

	b64url((const unsigned char *) "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, head);
	snprintf(claims, sizeof(claims), "{\"sub\":\"%ld\",\"exp\":%ld}", user, (long) time(NULL) + 86400);
	b64url((const unsigned char *) claims, strlen(claims), body);
	snprintf(signing, sizeof(signing), "%s.%s", head, body);
	HMAC(EVP_sha256(), secret, (int) strlen(secret), (unsigned char *) signing, strlen(signing), mac, &maclen);
	b64url(mac, maclen, sig);
	sprintf(out, "%s.%s", signing, sig);
}

/* Open the next connection. */
static void
open_one(void)
{
	struct lws_client_connect_info ci;
	char		path[1024];
	long		user;

	if (next_user >= n_conns)
		return;
	user = first_user + next_user++;
	if (secret)
	{
		char		tok[600];

		make_token(user, tok);
		snprintf(path, sizeof(path), "/ws?access_token=%s", tok);
	}
	else
		snprintf(path, sizeof(path), "/?user=%ld", user);
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = host;
	ci.port = port;
	ci.path = path;
	ci.host = host;
	ci.origin = secret ? origin : NULL;
	ci.protocol = NULL;
	pending++;
	if (!lws_client_connect_via_info(&ci))
	{
		pending--;
		failed++;
	}
}

/* Keep up to 128 handshakes in flight. */
static void
open_more(void)
{
	while (pending < 128 && next_user < n_conns)
		open_one();
}

/* Record one frame's latency. */
static void
record(const char *in, size_t len)
{
	const char *p = memmem(in, len, "\"ts\":", 5);
	int64_t		ts,
				now;

	if (p)
		p += 5;
	else if ((p = memmem(in, len, "ts=", 3)) != NULL)
		p += 3;
	else
		return;
	now = now_us();
	if (t_measure_start == 0 || now < t_measure_start || now > t_measure_end)
		return;
	ts = strtoll(p, NULL, 10);
	frames++;
	if (arrivals)
	{
		const char *chat = memmem(in, len, "\"chat_id\":", 10);
		const char *seq = memmem(in, len, "\"seq\":", 6);
		struct timespec rt;

		clock_gettime(CLOCK_REALTIME, &rt);
		if (chat && seq)
			fprintf(arrivals, "%lld %lld %lld\n", strtoll(chat + 10, NULL, 10), strtoll(seq + 6, NULL, 10),
					(long long) rt.tv_sec * 1000000 + rt.tv_nsec / 1000);
	}
	if (n_lat == cap_lat)
	{
		cap_lat = cap_lat ? cap_lat * 2 : 1 << 16;
		lat = realloc(lat, cap_lat * sizeof(*lat));
	}
	lat[n_lat++] = (uint32_t) (now - ts > 0 ? now - ts : 0);
}

/* Client protocol callback. */
static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	switch (reason)
	{
		case LWS_CALLBACK_CLIENT_ESTABLISHED:
			pending--;
			opened++;
			open_more();
			break;
		case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
			pending--;
			failed++;
			if (failed < 5)
				fprintf(stderr, "connect error: %s\n", in ? (char *) in : "?");
			open_more();
			break;
		case LWS_CALLBACK_CLIENT_RECEIVE:
			record(in, len);
			break;
		case LWS_CALLBACK_CLIENT_CLOSED:
			closed++;
			break;
		default:
			break;
	}
	return 0;
}

static struct lws_protocols protocols[] = {
	{"bench", callback, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

/* Compare for qsort. */
static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a,
				y = *(const uint32_t *) b;

	return (x > y) - (x < y);
}

/* Quantile in ms. */
static double
q(double p)
{
	size_t		i;

	if (!n_lat)
		return -1;
	i = (size_t) (p * (double) n_lat);
	if (i >= n_lat)
		i = n_lat - 1;
	return lat[i] / 1000.0;
}

static struct ev_loop *loop;
static ev_timer wake;

/* Wakes the loop every 50 ms, so main() keeps the phases' time when idle. */
static void
on_wake(struct ev_loop *l, ev_timer *w, int revents)
{
	(void) l;
	(void) w;
	(void) revents;
}

/* Stop on a signal. */
static void
on_sig(int s)
{
	(void) s;
	interrupted = true;
}

/* Entry point. */
int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	int64_t		t_open;
	int			phase = 0;
	int64_t		t_hold_end = 0;

	for (int i = 1; i + 1 < argc; i += 2)
	{
		if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--n"))
			n_conns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--first"))
			first_user = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--origin"))
			origin = argv[i + 1];
		else if (!strcmp(argv[i], "--hold"))
			hold_s = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--measure"))
			measure_s = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ready-file"))
			ready_file = argv[i + 1];
		else if (!strcmp(argv[i], "--event-lib"))
		{
			event_lib = argv[i + 1];
			if (strcmp(event_lib, "libev") && strcmp(event_lib, "poll"))
			{
				fprintf(stderr, "--event-lib must be libev or poll, not %s\n", event_lib);
				return 2;
			}
		}
		else if (!strcmp(argv[i], "--arrivals"))
		{
			if ((arrivals = fopen(argv[i + 1], "w")) == NULL)
			{
				fprintf(stderr, "cannot write %s\n", argv[i + 1]);
				return 2;
			}
		}
		else if (!strcmp(argv[i], "--secret"))
		{
			FILE	   *f = fopen(argv[i + 1], "r");
			char		buf[512];

			if (!f || !fgets(buf, sizeof(buf), f))
			{
				fprintf(stderr, "cannot read %s\n", argv[i + 1]);
				return 2;
			}
			fclose(f);
			buf[strcspn(buf, "\r\n")] = '\0';
			secret = strdup(buf);
		}
		else
		{
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.fd_limit_per_thread = (unsigned) n_conns + 64;
	if (!strcmp(event_lib, "libev"))
	{
		/* our loop, lent to lws, so that each turn comes back here */
		loop = ev_loop_new(EVFLAG_AUTO);
		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = (void **) &loop;
		ev_timer_init(&wake, on_wake, 0.05, 0.05);
		ev_timer_start(loop, &wake);
	}
	ctx = lws_create_context(&info);
	if (!ctx)
		return 1;
	t_open = now_us();
	open_more();
	while (!interrupted && (loop ? (ev_run(loop, EVRUN_ONCE), 1) : lws_service(ctx, 0) >= 0))
	{
		int64_t		now = now_us();

		if (phase == 0 && opened + failed >= n_conns)
		{
			fprintf(stderr, "connected %d failed %d in %.1f s\n", opened, failed, (now - t_open) / 1e6);
			if (ready_file)
			{
				FILE	   *f = fopen(ready_file, "w");

				if (f)
					fclose(f);
			}
			phase = 1;
			t_hold_end = now + (int64_t) hold_s * 1000000;
		}
		if (phase == 1 && now >= t_hold_end)
		{
			phase = 2;
			t_measure_start = now;
			t_measure_end = now + (int64_t) measure_s * 1000000;
		}
		if (phase == 2 && now > t_measure_end)
			break;
		if (phase == 0 && now - t_open > 120 * 1000000LL)
			break;
	}
	qsort(lat, n_lat, sizeof(*lat), cmp_u32);
	printf("{\"connected\":%d,\"failed\":%d,\"closed\":%d,\"frames\":%llu,\"frames_per_s\":%.1f,"
		   "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
		   opened, failed, closed, (unsigned long long) frames, frames / (double) (measure_s ? measure_s : 1),
		   q(0.5), q(0.9), q(0.99), n_lat ? lat[n_lat - 1] / 1000.0 : -1);
	lws_context_destroy(ctx);
	if (loop)
	{
		ev_timer_stop(loop, &wake);
		ev_loop_destroy(loop);
	}
	if (arrivals)
		fclose(arrivals);
	free(lat);
	free(secret);
	return 0;
}
