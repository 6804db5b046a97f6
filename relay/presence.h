/*
 * presence.h: this relay's share of the cluster-wide presence (presence.c
 * says how it reaches the database, and its lifecycle).
 */
#ifndef RELAY_PRESENCE_H
#define RELAY_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

/* A user's first connection opened or last one closed. */
void		presence_changed(int64_t user_id);

/* The LISTEN connection (and the relay's lock) is back: send the whole set. */
void		presence_db_ready(void);

/* A pool connection is ready: send what waits. */
void		presence_kick(void);

/* At start: the heartbeat. */
void		presence_start(void);

/* SIGTERM: take this relay's users offline (relay_gone), once. */
void		presence_stop(void);

/* Has relay_gone been answered (or given up)? */
bool		presence_stopped(void);

/* At exit: the dirty list and the heartbeat timer. */
void		presence_free(void);

#endif
