/*
 * subscribe.h: presence subscriptions (subscribe.c). A connection hears of
 * a user's presence changes only once it asked for that user's presence
 * and the database let it see it (chat.presence: contacts, no block).
 */
#ifndef RELAY_SUBSCRIBE_H
#define RELAY_SUBSCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

/*
 * c hears of user_id's presence changes from now on. Past
 * max_presence_subscriptions, its oldest subscription goes.
 */
void		subscribe_add(struct conn *c, int64_t user_id);

/* c no longer hears of user_id; false if it did not. */
bool		subscribe_remove(struct conn *c, int64_t user_id);

/* c closes: every subscription of it goes. */
void		subscribe_drop_conn(struct conn *c);

/* a and b are now in a block: the subscriptions between them go, both ways round. */
void		subscribe_drop_pair(int64_t a, int64_t b);

/* A presence event of user_id: to every connection subscribed to them. */
void		subscribe_route(int64_t user_id, const char *ev, size_t len);

/* Subscriptions held on this relay (a gauge). */
size_t		subscribe_count(void);

/* At exit. */
void		subscribe_free(void);

#endif
