/*
 * conn.h: the per-session data of the one lws protocol ("chat"): first an
 * HTTP request (or a WebSocket upgrade under check), then, once upgraded,
 * an open WebSocket of one user. Its lifecycle (enum conn_state) is all in
 * conn.c, in conn_set_state(); nothing else moves a connection between
 * lists or counts it.
 */
#ifndef RELAY_CONN_H
#define RELAY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

struct frame;
struct qnode;
struct user;
struct watch;

/* See the diagram in conn.c. */
enum conn_state
{
	CONN_HTTP = 0,				/* lws zeroes the session data: every session starts here */
	CONN_OPEN,					/* a user's WebSocket: indexed, sends and receives */
	CONN_CLOSING,				/* close frame owed (close_code); still indexed */
	CONN_CLOSED					/* unindexed, its memory freed; lws frees the rest */
};

struct conn
{
	struct lws *wsi;
	enum conn_state state;
	struct user *user;			/* OPEN and CLOSING: the user's entry */
	struct conn *u_prev,
			   *u_next;			/* the user's connections */
	struct conn *a_prev,
			   *a_next;			/* all connections */
	/* writer.c's: the bounded send queue and the dirty list */
	struct qnode *q_head,
			   *q_tail;
	struct conn *d_next,		/* on the dirty list: given frames in this */
			  **d_pprev;		/* batch or a held write; NULL: not */
	struct conn *b_next,		/* on the backlog list: its queue is not */
			  **b_pprev;		/* empty; NULL: not */
	uint32_t	q_len;
	uint32_t	q_bytes;
	int64_t		exp;			/* token expiry, unix seconds */
	char	   *rx;				/* message being assembled */
	uint32_t	rx_len;
	uint16_t	close_code;		/* CLOSING: the code of the close frame */
	uint32_t	refused_in_row; /* messages over the rate limit since the last one under */
	uint8_t		rx_binary:1,
				rx_too_large:1;
	lws_dll2_owner_t reqs;		/* request.c's: unanswered requests */
	struct watch *subs_head,	/* subscribe.c's: presence subscriptions, */
			   *subs_tail;		/* oldest first */
	uint32_t	n_subs;
	unsigned char *http_body;	/* HTTP: response being sent (LWS_PRE headroom) */
	size_t		http_len;
};

/* Queue a frame (a new reference); a full queue closes with 1013. */
void		conn_send(struct conn *c, struct frame *f);
void		conn_send_str(struct conn *c, const char *s, size_t len);
void		conn_sendf(struct conn *c, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* Close after what is being written now (a second close keeps the first code). */
void		conn_close(struct conn *c, uint16_t code);

/* Every open connection: queue f, or close with code. */
void		ws_broadcast(struct frame *f);
void		conn_close_all(uint16_t code);

/* Every second: close the connections whose token expired. */
void		conn_tick(void);

/* Is vapid_public_key empty or a well-formed key? 0, or -1 (logged). */
int			conn_check_vapid(void);

/* lws callbacks of a connection (ws.c dispatches them). */
int			conn_established(struct lws *wsi, struct conn *c);
void		conn_closed(struct conn *c);
int			conn_writeable(struct lws *wsi, struct conn *c);
void		conn_receive(struct lws *wsi, struct conn *c, const char *in, size_t len);

#endif
