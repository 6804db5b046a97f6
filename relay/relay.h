/*
 * relay.h: what chat-relay's modules share: the lws context and the
 * shutdown flags.
 * Everything runs on the one libwebsockets service thread.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#define RELAY_VERSION "0.1.0"

extern struct lws_context *relay_context;
extern struct lws_vhost *relay_vhost;
extern bool relay_shutting_down;
extern bool relay_destroying;
extern int	relay_conns;		/* OPEN and CLOSING WebSockets (conn.c counts them) */
extern int	relay_users;		/* users with one of them (likewise) */

#endif
