/*
 * users.c: the index from user id to that user's connections on this relay
 * (a chained hash table that doubles when it fills). A user whose last
 * connection closed while a rate bucket was not full stays in it, without
 * connections, until the bucket is full again: closing and reopening a
 * connection does not buy a fresh burst.
 *
 * An entry is connected (nconns > 0), lingering (nconns == 0, on the
 * lingering list) or freed; conn.c's lifecycle moves it between the first
 * two (users_get, users_release) and counts relay_users there.
 */
#include "alloc.h"
#include "config.h"
#include "idhash.h"
#include "users.h"

#include <stdlib.h>
#include <string.h>

static struct user **table;
static size_t table_size;
static size_t entries;			/* users connected, and lingering ones */
static lws_dll2_owner_t lingering;	/* entries with no connection left */

/* the longest an entry lingers, whatever the rate (rate 0 never refills) */
#define LINGER_MAX_US (60 * LWS_US_PER_SEC)

/* Double the table. */
static void
grow(void)
{
	size_t		nsize = table_size ? table_size * 2 : 1024;
	struct user **nt = xcalloc(nsize, sizeof(*nt));

	for (size_t i = 0; i < table_size; i++)
	{
		struct user *u = table[i];

		while (u)
		{
			struct user *next = u->hnext;
			size_t		b = id_bucket(u->id, nsize);

			u->hnext = nt[b];
			nt[b] = u;
			u = next;
		}
	}
	free(table);
	table = nt;
	table_size = nsize;
}

/* The entry of a user id, lingering or not; NULL if none. */
static struct user *
lookup(int64_t id)
{
	struct user *u;

	if (!table_size)
		return NULL;
	for (u = table[id_bucket(id, table_size)]; u; u = u->hnext)
		if (u->id == id)
			return u;
	return NULL;
}

/* The user's entry, or NULL when they have no connection here. */
struct user *
users_find(int64_t id)
{
	struct user *u = lookup(id);

	return u && u->nconns > 0 ? u : NULL;
}

struct user *
users_peek(int64_t id)
{
	return lookup(id);
}

/*
 * The entry of a user about to connect: created with full rate buckets, or
 * the lingering one with the buckets it left with.
 */
struct user *
users_get(int64_t id)
{
	struct user *u = lookup(id);
	size_t		b;

	if (u)
	{
		if (u->nconns == 0 && !lws_dll2_is_detached(&u->linger))
			lws_dll2_remove(&u->linger);	/* back with the buckets it left with */
		return u;
	}
	if (entries + 1 > table_size)
		grow();
	u = xcalloc(1, sizeof(*u));
	u->id = id;
	u->refill_us = -1;
	u->typing_refill_us = -1;
	/* this first connection is the first of upgrade_burst */
	u->upgrade_tokens = cf_upgrade_burst - 1;
	u->upgrade_refill_us = lws_now_usecs();
	b = id_bucket(id, table_size);
	u->hnext = table[b];
	table[b] = u;
	entries++;
	return u;
}

static void
entry_free(struct user *u)
{
	struct user **pp = &table[id_bucket(u->id, table_size)];

	while (*pp && *pp != u)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = u->hnext;
	free(u);
	entries--;
}

/* When a bucket left at tokens after refill_us is full again (0: it is). */
static int64_t
full_at(double tokens, int64_t refill_us, double rate, int burst)
{
	if (refill_us < 0 || tokens >= burst)
		return 0;
	if (rate <= 0)
		return INT64_MAX;
	return refill_us + (int64_t) ((burst - tokens) / rate * 1e6) + 1;
}

/*
 * The user's last connection closed. Its entry stays while a rate bucket
 * is not full yet (at most LINGER_MAX_US): reconnecting must not refill it.
 */
void
users_release(struct user *u)
{
	int64_t		a = full_at(u->tokens, u->refill_us, cf_rate, cf_burst);
	int64_t		b = full_at(u->typing_tokens, u->typing_refill_us, cf_typing_rate, cf_typing_burst);
	int64_t		c = full_at(u->upgrade_tokens, u->upgrade_refill_us, cf_upgrade_rate, cf_upgrade_burst);
	int64_t		until = a > b ? a : b;
	int64_t		now = lws_now_usecs();

	if (c > until)
		until = c;

	if (until <= now)
	{
		entry_free(u);
		return;
	}
	u->linger_until_us = until - now > LINGER_MAX_US ? now + LINGER_MAX_US : until;
	lws_dll2_add_head(&u->linger, &lingering);
}

/* Drop the lingering entries whose buckets are full by now. */
void
users_sweep(void)
{
	int64_t		now = lws_now_usecs();

	lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&lingering))
	{
		struct user *u = lws_container_of(d, struct user, linger);

		if (u->linger_until_us <= now)
		{
			lws_dll2_remove(d);
			entry_free(u);
		}
	} lws_end_foreach_dll_safe(d, d1);
}

/* Call fn for every user (lingering ones too: check nconns). */
void
users_foreach(void (*fn) (struct user *u, void *arg), void *arg)
{
	for (size_t i = 0; i < table_size; i++)
		for (struct user *u = table[i]; u; u = u->hnext)
			fn(u, arg);
}

/* Free the table and any entry left. */
void
users_free(void)
{
	for (size_t i = 0; i < table_size; i++)
	{
		struct user *u = table[i];

		while (u)
		{
			struct user *next = u->hnext;

			free(u);
			u = next;
		}
	}
	free(table);
	table = NULL;
	table_size = 0;
	entries = 0;
	memset(&lingering, 0, sizeof(lingering));
}
