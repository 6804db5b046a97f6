/*
 * users.c: the index from user id to that user's connections on this relay
 * (a chained hash table that doubles when it fills).
 */
#include "alloc.h"
#include "relay.h"

#include <stdlib.h>

static struct user **table;
static size_t table_size;

/* Bucket of a user id (64-bit mix). */
static size_t
bucket(int64_t id, size_t size)
{
	uint64_t	x = (uint64_t) id;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t) (x & (size - 1));
}

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
			size_t		b = bucket(u->id, nsize);

			u->hnext = nt[b];
			nt[b] = u;
			u = next;
		}
	}
	free(table);
	table = nt;
	table_size = nsize;
}

/* The user's entry, or NULL when they have no connection here. */
struct user *
users_find(int64_t id)
{
	struct user *u;

	if (!table_size)
		return NULL;
	for (u = table[bucket(id, table_size)]; u; u = u->hnext)
		if (u->id == id)
			return u;
	return NULL;
}

/* The user's entry, created (with full rate buckets) if missing. */
struct user *
users_get(int64_t id)
{
	struct user *u = users_find(id);
	size_t		b;

	if (u)
		return u;
	if ((size_t) relay_users + 1 > table_size)
		grow();
	u = xcalloc(1, sizeof(*u));
	u->id = id;
	u->refill_us = -1;
	u->typing_refill_us = -1;
	b = bucket(id, table_size);
	u->hnext = table[b];
	table[b] = u;
	relay_users++;
	return u;
}

/* Drop an entry (its last connection closed). */
void
users_remove(struct user *u)
{
	struct user **pp = &table[bucket(u->id, table_size)];

	while (*pp && *pp != u)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = u->hnext;
	free(u);
	relay_users--;
}

/* Call fn for every user. */
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
	relay_users = 0;
}
