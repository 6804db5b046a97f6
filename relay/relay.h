/*
 * relay.h: the shared state of chat-relay: connections, users, frames,
 * metrics. Everything runs on the one libwebsockets service thread.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "timer.h"

#define RELAY_VERSION "0.1.0"

/*
 * An outgoing WebSocket frame, shared by every connection it goes to: its
 * header (2, 4 or 10 bytes) is written once, at the end of the LWS_PRE
 * headroom, so header and payload are one contiguous run of wire bytes.
 */
struct frame
{
	uint32_t	refs;
	uint32_t	len;			/* payload bytes */
	uint8_t		hlen;			/* header bytes, just before the payload */
	unsigned char buf[];		/* LWS_PRE bytes (header at the end), then the payload */
};

#define FRAME_PAYLOAD(f) ((f)->buf + LWS_PRE)
#define FRAME_WIRE(f) ((f)->buf + LWS_PRE - (f)->hlen)
#define FRAME_WIRE_LEN(f) ((size_t) (f)->hlen + (f)->len)

/*
 * The most bytes of frames put in one write. Also the protocol's
 * tx_packet_size: without it lws cuts every send() to rx_buffer bytes.
 */
#define WRITE_BATCH (64 * 1024)

struct qnode
{
	struct qnode *next;
	struct frame *f;
};

struct req;

/* Per-session data of the one protocol: an HTTP request or a WebSocket. */
struct conn
{
	struct lws *wsi;
	struct user *user;			/* NULL until established */
	struct conn *u_prev,
			   *u_next;			/* the user's connections */
	struct conn *a_prev,
			   *a_next;			/* all connections */
	struct qnode *q_head,
			   *q_tail;			/* bounded send queue */
	struct conn *d_next,		/* on the dirty list (ws.c): given frames */
			  **d_pprev;		/* in this batch or a held write; NULL: not */
	uint32_t	q_len;
	uint32_t	q_bytes;
	int64_t		exp;			/* token expiry, unix seconds */
	char	   *rx;				/* message being assembled */
	uint32_t	rx_len;
	uint16_t	close_code;		/* closing: sent at the next WRITEABLE */
	uint8_t		rx_binary:1,
				rx_too_large:1,
				established:1;
	int			inflight;
	struct req *reqs;			/* unanswered requests */
	unsigned char *http_body;	/* HTTP: response being sent (LWS_PRE headroom) */
	size_t		http_len;
};

/* A user with connections on this relay. */
struct user
{
	int64_t		id;
	struct user *hnext;
	struct conn *conns;
	int			nconns;
	double		tokens;			/* request bucket */
	double		typing_tokens;
	int64_t		refill_us;
	int64_t		typing_refill_us;
	/* no connection left, kept until its buckets are full again */
	struct lws_dll2 linger;		/* on the lingering list while nconns == 0 */
	int64_t		linger_until_us;
};

struct metrics
{
	uint64_t	connections_total;
	uint64_t	notifications_in;
	uint64_t	events_in;
	uint64_t	events_bad;
	uint64_t	frames_out;
	uint64_t	held_writes;	/* writes held under load (ws_batch_end) */
	uint64_t	bytes_out;
	uint64_t	queue_drops;	/* slow readers closed with 1013 */
	uint64_t	requests;
	uint64_t	rate_limited;
	uint64_t	db_reconnects;
	uint64_t	auth_refused;
	uint64_t	origin_refused;
	uint64_t	resyncs;
	uint64_t	fetches;
	uint64_t	errors[8];		/* by error code */
	/* request latency histogram, seconds */
	uint64_t	lat_buckets[16];
	uint64_t	lat_count;
	double		lat_sum;
};

extern struct metrics metrics;
extern struct lws_context *relay_context;
extern struct lws_vhost *relay_vhost;
extern bool relay_shutting_down;
extern bool relay_destroying;
extern int	relay_conns;		/* established WebSockets */
extern int	relay_users;


/* frames (ws.c) */
struct frame *frame_alloc(size_t len);
struct frame *frame_new(const char *data, size_t len);
void		frame_unref(struct frame *f);
bool		origin_allowed(struct lws *wsi, bool missing_ok);

/* connections (ws.c) */
void		conn_send(struct conn *c, struct frame *f);
void		conn_send_str(struct conn *c, const char *s, size_t len);
void		conn_sendf(struct conn *c, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		conn_close(struct conn *c, uint16_t code);
void		ws_broadcast(struct frame *f);
void		ws_batch_begin(void);
void		ws_batch_end(void);
void		ws_close_all(uint16_t code);
void		ws_tick(void);
void		ws_stop(void);
void		ws_free(void);
int			ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
						void *user, void *in, size_t len);

/* users (users.c) */
struct user *users_find(int64_t id);
struct user *users_get(int64_t id);
void		users_release(struct user *u);
void		users_sweep(void);
void		users_foreach(void (*fn) (struct user *u, void *arg), void *arg);
void		users_free(void);

/* requests (request.c) */
void		request_message(struct conn *c, const char *data, size_t len, bool binary, bool too_large);
void		request_detach_all(struct conn *c);

/* events (event.c) */
void		event_resync(const char *reason);
void		event_free(void);

/* presence (presence.c) */
void		presence_changed(int64_t user_id);
void		presence_db_ready(void);
void		presence_kick(void);
void		presence_start(void);
void		presence_stop(void);
bool		presence_stopped(void);
void		presence_free(void);

/* metrics (metrics.c) */
void		metrics_latency(double seconds);
char	   *metrics_render(size_t *len, size_t headroom);

#endif
