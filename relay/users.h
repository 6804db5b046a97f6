/*
 * users.h: the users with connections on this relay, by id, each with its
 * rate buckets (which outlive the user's last connection for a while, see
 * users.c). conn.c links connections into u->conns and counts them.
 */
#ifndef RELAY_USERS_H
#define RELAY_USERS_H

#include <stdint.h>

#include <libwebsockets.h>

struct conn;

struct user
{
	int64_t		id;
	struct user *hnext;
	struct conn *conns;			/* conn.c's: OPEN and CLOSING connections */
	int			nconns;
	double		tokens;			/* request bucket */
	double		typing_tokens;
	int64_t		refill_us;
	int64_t		typing_refill_us;
	double		upgrade_tokens; /* new connections (upgrade_rate) */
	int64_t		upgrade_refill_us;
	/* no connection left, kept until its buckets are full again */
	struct lws_dll2 linger;		/* on the lingering list while nconns == 0 */
	int64_t		linger_until_us;
};

/* The user's entry, or NULL when they have no connection here. */
struct user *users_find(int64_t id);

/* The user's entry, connected or lingering (its buckets), or NULL. */
struct user *users_peek(int64_t id);

/*
 * The entry of a user about to connect: created with full rate buckets,
 * or the lingering one with the buckets it left with.
 */
struct user *users_get(int64_t id);

/* The user's last connection closed (nconns is 0): linger or free. */
void		users_release(struct user *u);

/* Every second: drop the lingering entries whose buckets are full. */
void		users_sweep(void);

/* Call fn for every entry (lingering ones too: check nconns). */
void		users_foreach(void (*fn) (struct user *u, void *arg), void *arg);

/* At exit: the table and every entry left. */
void		users_free(void);

#endif
