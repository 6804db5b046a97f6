/*
 * subscribe.c: presence subscriptions. The database publishes a presence
 * change once, to no one in particular; here it goes to the connections
 * that asked for that user with a presence request (request.c subscribes
 * the users the database answered for, which are the ones this user may
 * see). So a user with 20,000 chats costs one event per change, and only
 * the screens that show them hear of it.
 *
 * A subscription (struct watch) is on two lists: its watched user's
 * watchers and its connection's subscriptions, oldest first. Watched users
 * are in a chained hash table by id that doubles when it fills; an entry
 * goes with its last watcher.
 */
#include "subscribe.h"

#include "alloc.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "idhash.h"
#include "users.h"

#include <stdlib.h>

struct watched
{
	int64_t		id;
	struct watched *hnext;
	struct watch *watchers;
	uint32_t	n;
};

struct watch
{
	struct conn *c;
	struct watched *w;
	struct watch *w_prev,
			   *w_next;			/* the watched user's watchers */
	struct watch *c_prev,
			   *c_next;			/* the connection's, oldest first */
};

static struct watched **table;
static size_t table_size;
static size_t n_watched;
static size_t n_watches;

static void
grow(void)
{
	size_t		nsize = table_size ? table_size * 2 : 1024;
	struct watched **nt = xcalloc(nsize, sizeof(*nt));

	for (size_t i = 0; i < table_size; i++)
		while (table[i])
		{
			struct watched *w = table[i];
			size_t		b = id_bucket(w->id, nsize);

			table[i] = w->hnext;
			w->hnext = nt[b];
			nt[b] = w;
		}
	free(table);
	table = nt;
	table_size = nsize;
}

/* The watched entry of id; created when create, else NULL if none. */
static struct watched *
watched_get(int64_t id, bool create)
{
	struct watched *w;

	if (table_size)
		for (w = table[id_bucket(id, table_size)]; w; w = w->hnext)
			if (w->id == id)
				return w;
	if (!create)
		return NULL;
	if (n_watched >= table_size)
		grow();
	w = xcalloc(1, sizeof(*w));
	w->id = id;
	w->hnext = table[id_bucket(id, table_size)];
	table[id_bucket(id, table_size)] = w;
	n_watched++;
	return w;
}

static void
watched_free(struct watched *w)
{
	struct watched **pp = &table[id_bucket(w->id, table_size)];

	while (*pp != w)
		pp = &(*pp)->hnext;
	*pp = w->hnext;
	free(w);
	n_watched--;
}

/* c's subscription to w, or NULL: walks the shorter of the two lists. */
static struct watch *
find(struct conn *c, struct watched *w)
{
	if (w->n <= c->n_subs)
	{
		for (struct watch *s = w->watchers; s; s = s->w_next)
			if (s->c == c)
				return s;
	}
	else
		for (struct watch *s = c->subs_head; s; s = s->c_next)
			if (s->w == w)
				return s;
	return NULL;
}

/* Unlink and free one subscription (and its watched entry with its last watcher). */
static void
unwatch(struct watch *s)
{
	struct conn *c = s->c;
	struct watched *w = s->w;

	if (s->w_prev)
		s->w_prev->w_next = s->w_next;
	else
		w->watchers = s->w_next;
	if (s->w_next)
		s->w_next->w_prev = s->w_prev;
	if (s->c_prev)
		s->c_prev->c_next = s->c_next;
	else
		c->subs_head = s->c_next;
	if (s->c_next)
		s->c_next->c_prev = s->c_prev;
	else
		c->subs_tail = s->c_prev;
	c->n_subs--;
	if (--w->n == 0)
		watched_free(w);
	free(s);
	n_watches--;
}

void
subscribe_add(struct conn *c, int64_t user_id)
{
	struct watched *w = watched_get(user_id, true);
	struct watch *s;

	if (find(c, w))
		return;
	s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->w = w;
	s->w_next = w->watchers;
	if (w->watchers)
		w->watchers->w_prev = s;
	w->watchers = s;
	w->n++;
	s->c_prev = c->subs_tail;
	if (c->subs_tail)
		c->subs_tail->c_next = s;
	else
		c->subs_head = s;
	c->subs_tail = s;
	c->n_subs++;
	n_watches++;
	while (c->n_subs > (uint32_t) cf_max_presence_subscriptions && c->subs_head != s)
		unwatch(c->subs_head);
}

bool
subscribe_remove(struct conn *c, int64_t user_id)
{
	struct watched *w = watched_get(user_id, false);
	struct watch *s = w ? find(c, w) : NULL;

	if (s)
		unwatch(s);
	return s != NULL;
}

void
subscribe_drop_conn(struct conn *c)
{
	while (c->subs_head)
		unwatch(c->subs_head);
}

/* Every connection of user a stops hearing of b. */
static void
drop_one_way(int64_t a, int64_t b)
{
	struct user *u = users_find(a);

	if (!u)
		return;
	for (struct conn *c = u->conns; c; c = c->u_next)
		(void) subscribe_remove(c, b);
}

void
subscribe_drop_pair(int64_t a, int64_t b)
{
	drop_one_way(a, b);
	drop_one_way(b, a);
}

void
subscribe_route(int64_t user_id, const char *ev, size_t len)
{
	struct watched *w = watched_get(user_id, false);
	struct frame *f;

	if (!w)
		return;
	f = frame_new(ev, len);
	/* conn_send may close c (full queue), which unwatches: take next first */
	for (struct watch *s = w->watchers, *next; s; s = next)
	{
		next = s->w_next;
		conn_send(s->c, f);
	}
	frame_unref(f);
}

size_t
subscribe_count(void)
{
	return n_watches;
}

void
subscribe_free(void)
{
	for (size_t i = 0; i < table_size; i++)
		while (table[i])
		{
			struct watched *w = table[i];

			while (w->watchers)
				unwatch(w->watchers);	/* frees w with its last */
		}
	free(table);
	table = NULL;
	table_size = 0;
}
