/*
 * daemon.c: the start-up and loop steps every daemon shares (daemon.h).
 *
 * Signals go through a signalfd adopted by lws as a raw file: the handler
 * then runs as a loop callback and may do anything (reload, begin a
 * shutdown), unlike a real signal handler.
 *
 * The libev loop is our own, lent to lws: lws's internal one would keep
 * lws_service() inside ev_run() until the context dies, so the loop could
 * not be left at shutdown. libev must not touch the signal mask: SIGTERM
 * and SIGHUP stay blocked for the signalfd. A daemon may add its own
 * watchers to it (chat-notify's libcurl sockets and timer).
 */
#include "daemon.h"

#include "alloc.h"
#include "db.h"
#include "log.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static struct ev_loop *own_loop;
static int	signal_marker;		/* opaque of the signalfd's wsi */
static daemon_signal_fn on_signal_fn;
static bool interrupted;

/* The signals the signalfd takes. */
static void
signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void
daemon_block_signals(void)
{
	sigset_t	set;

	signal(SIGPIPE, SIG_IGN);
	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

void
daemon_prepare(void)
{
	struct rlimit rl;

	srand((unsigned) (time(NULL) ^ getpid()));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, log_lws_emit);
}

char *
daemon_default_id(const char *fallback, long suffix)
{
	char		hn[200];
	char	   *id;

	if (gethostname(hn, sizeof(hn) - 1) != 0 || !*hn)
		snprintf(hn, sizeof(hn), "%s", fallback);
	hn[sizeof(hn) - 1] = '\0';
	xasprintf(&id, "%s:%ld", hn, suffix);
	return id;
}

int
daemon_listen_setting(const char *name, const char *value, char *host, size_t hostlen, int *port)
{
	if (daemon_parse_listen(value, host, hostlen, port) == 0)
		return 0;
	log_error("%s must be HOST:PORT, not \"%s\"", name, value);
	return 2;
}

int
daemon_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	char	   *end;
	long		p;

	if (!colon || (size_t) (colon - s) >= hostlen)
		return -1;
	memcpy(host, s, (size_t) (colon - s));
	host[colon - s] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535)
		return -1;
	*port = (int) p;
	return 0;
}

int
daemon_lend_loop(struct lws_context_creation_info *info)
{
	own_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (own_loop == NULL)
	{
		log_error("cannot create the libev loop");
		return 1;
	}
	info->options |= LWS_SERVER_OPTION_LIBEV;
	info->foreign_loops = (void **) &own_loop;
	return 0;
}

struct ev_loop *
daemon_loop(void)
{
	return own_loop;
}

int
daemon_watch_signals(struct lws_vhost *vh, const char *raw_protocol, daemon_signal_fn on)
{
	sigset_t	set;
	int			fd;
	lws_adopt_desc_t info;

	signal_set(&set);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	on_signal_fn = on;
	memset(&info, 0, sizeof(info));
	info.vh = vh;
	info.type = LWS_ADOPT_RAW_FILE_DESC;
	info.fd.filefd = fd;
	info.vh_prot_name = raw_protocol;
	info.opaque = &signal_marker;
	if (lws_adopt_descriptor_vhost_via_info(&info) == NULL)
	{
		close(fd);
		return -1;
	}
	return 0;
}

/* Read the signals waiting on the signalfd. */
static int
read_signals(struct lws *wsi)
{
	struct signalfd_siginfo si;

	while (read(lws_get_socket_fd(wsi), &si, sizeof(si)) == (ssize_t) sizeof(si))
		on_signal_fn((int) si.ssi_signo);
	return 0;
}

int
daemon_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	(void) user;
	(void) in;
	(void) len;
	if (wsi && lws_get_opaque_user_data(wsi) == &signal_marker)
		return reason == LWS_CALLBACK_RAW_RX_FILE ? read_signals(wsi) : 0;
	return db_raw_callback(wsi, reason);
}

void
daemon_run(struct lws_context *ctx)
{
	while (!interrupted)
	{
		if (own_loop)
			ev_run(own_loop, EVRUN_ONCE);
		else if (lws_service(ctx, 0) < 0)
			break;
	}
}

void
daemon_quit(struct lws_context *ctx)
{
	interrupted = true;
	lws_cancel_service(ctx);
}

void
daemon_end(struct lws_context *ctx)
{
	if (ctx)
		lws_context_destroy(ctx);
	if (own_loop)
		ev_loop_destroy(own_loop);
	own_loop = NULL;
}
