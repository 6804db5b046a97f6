/*
 * daemon.h: what every daemon's main() does the same way: signals read
 * from a signalfd on the loop (so their handlers are ordinary loop
 * callbacks), a libev loop of our own lent to lws, the run loop and its
 * end, HOST:PORT settings.
 */
#ifndef CORE_DAEMON_H
#define CORE_DAEMON_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct ev_loop;

/* SIGTERM, SIGINT or SIGHUP, taken from the signalfd. */
typedef void (*daemon_signal_fn) (int signo);

/* SIGPIPE ignored; SIGTERM, SIGINT and SIGHUP blocked for the signalfd. */
void		daemon_block_signals(void);

/* Descriptors up to the hard limit, rand() seeded, lws's log lines to log.c. */
void		daemon_prepare(void);

/*
 * An id for this process when none is configured: "HOSTNAME:suffix" (the
 * hostname, or fallback when it is unknown); malloc'd.
 */
char	   *daemon_default_id(const char *fallback, long suffix);

/*
 * The HOST:PORT of setting name (its value): 0, or 2 (the exit status of
 * a bad setting) after saying what is wrong.
 */
int			daemon_listen_setting(const char *name, const char *value, char *host, size_t hostlen, int *port);

/* Split HOST:PORT; 0, or -1 when it is not that. */
int			daemon_parse_listen(const char *s, char *host, size_t hostlen, int *port);

/*
 * Make the daemon's libev loop and lend it to the lws context about to be
 * made with info; 0, or 1 (logged) when it cannot.
 */
int			daemon_lend_loop(struct lws_context_creation_info *info);

/* The loop lent to lws, or NULL when lws runs its own poll loop. */
struct ev_loop *daemon_loop(void);

/* Adopt a signalfd on vh as a raw file of raw_protocol; 0, or -1. */
int			daemon_watch_signals(struct lws_vhost *vh, const char *raw_protocol, daemon_signal_fn on);

/*
 * The callback of raw_protocol: the signalfd, and every other descriptor
 * for db_raw_callback (the database sockets, their host lookups' wake-ups).
 */
int			daemon_raw_callback(struct lws *wsi, enum lws_callback_reasons reason,
								void *user, void *in, size_t len);

/* Serve until daemon_quit(). */
void		daemon_run(struct lws_context *ctx);
void		daemon_quit(struct lws_context *ctx);

/* Destroy the context (when there is one), then the loop. */
void		daemon_end(struct lws_context *ctx);

#endif
