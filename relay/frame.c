/*
 * frame.c: building outgoing frames. Frames are final, unmasked text
 * frames (a server never masks): the header is computed here once, so
 * writer.c can put frames on the wire as raw bytes, several per write.
 */
#include "alloc.h"
#include "frame.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(LWS_PRE >= 10, "a frame header must fit in LWS_PRE");

struct frame *
frame_alloc(size_t len)
{
	struct frame *f = xmalloc(sizeof(*f) + LWS_PRE + len);
	unsigned char h[10];
	int			n = 0;

	h[n++] = 0x81;				/* FIN, text */
	if (len < 126)
		h[n++] = (unsigned char) len;
	else if (len < 65536)
	{
		h[n++] = 126;
		h[n++] = (unsigned char) (len >> 8);
		h[n++] = (unsigned char) len;
	}
	else
	{
		h[n++] = 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			h[n++] = (unsigned char) ((uint64_t) len >> shift);
	}
	f->refs = 1;
	f->queued = 0;
	f->len = (uint32_t) len;
	f->hlen = (uint8_t) n;
	memcpy(FRAME_WIRE(f), h, (size_t) n);
	return f;
}

struct frame *
frame_new(const char *data, size_t len)
{
	struct frame *f = frame_alloc(len);

	memcpy(FRAME_PAYLOAD(f), data, len);
	return f;
}

void
frame_unref(struct frame *f)
{
	if (--f->refs == 0)
		free(f);
}
