/*
 * peers.h: handshakes in progress per source address. lws 4.1 (as Debian
 * builds it, without LWS_WITH_PEER_LIMITS) holds a header slot for every
 * accepted socket until its headers are complete, so a few hundred silent
 * sockets could take them all; here an address holds at most
 * max_handshakes_per_address, and a new one from an address at its limit
 * closes that address's oldest, so a real client sharing the address with
 * a flood still gets in.
 */
#ifndef RELAY_PEERS_H
#define RELAY_PEERS_H

#include <libwebsockets.h>
#include <stdint.h>

/* A socket was accepted (LWS_CALLBACK_FILTER_NETWORK_CONNECTION: fd). */
void		peers_accepted(int fd);
/* Its wsi is known (LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED). */
void		peers_bound(struct lws *wsi);
/* Its headers are complete, or it is gone: no longer a handshake. */
void		peers_done(struct lws *wsi);
void		peers_free(void);

extern uint64_t peers_evicted;	/* handshakes closed for a newer one from their address */

#endif
