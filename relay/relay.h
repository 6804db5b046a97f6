/*
 * relay.h: what chat-relay's modules share: the lws context and the
 * shutdown flags.
 * Everything runs on the one libwebsockets service thread.
 *
 * For now it also includes the headers of the connection modules (frame,
 * conn, writer, users, presence) so that files including only relay.h keep
 * compiling while the core moves; new code includes what it uses.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "event.h"
#include "metrics.h"
#include "request.h"
#include "timer.h"

/* the umbrella, for now (see above) */
#include "conn.h"
#include "frame.h"
#include "presence.h"
#include "users.h"
#include "writer.h"

#define RELAY_VERSION "0.1.0"

extern struct lws_context *relay_context;
extern struct lws_vhost *relay_vhost;
extern bool relay_shutting_down;
extern bool relay_destroying;
extern int	relay_conns;		/* OPEN and CLOSING WebSockets (conn.c counts them) */
extern int	relay_users;		/* users with one of them (likewise) */

#endif
