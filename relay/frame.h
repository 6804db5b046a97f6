/*
 * frame.h: outgoing WebSocket frames. A frame is built once and shared by
 * every connection it goes to (refcounted), so an event fanned out to a
 * thousand connections is one buffer, not a thousand copies.
 */
#ifndef RELAY_FRAME_H
#define RELAY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

/*
 * Its header (2, 4 or 10 bytes) is written once, at the end of the LWS_PRE
 * headroom, so header and payload are one contiguous run of wire bytes.
 */
struct frame
{
	uint32_t	refs;
	uint32_t	len;			/* payload bytes */
	uint32_t	queued;			/* writer.c's: send queues holding it */
	uint8_t		hlen;			/* header bytes, just before the payload */
	unsigned char buf[];		/* LWS_PRE bytes (header at the end), then the payload */
};

#define FRAME_PAYLOAD(f) ((f)->buf + LWS_PRE)
#define FRAME_WIRE(f) ((f)->buf + LWS_PRE - (f)->hlen)
#define FRAME_WIRE_LEN(f) ((size_t) (f)->hlen + (f)->len)

/* A new frame (one reference) for len bytes, to be filled at FRAME_PAYLOAD. */
struct frame *frame_alloc(size_t len);

/* A new frame (one reference) holding a copy of data. */
struct frame *frame_new(const char *data, size_t len);

/* Drop one reference; the last one frees the frame. */
void		frame_unref(struct frame *f);

#endif
