/*
 * writer.h: each connection's bounded send queue (and the bound on all of
 * them together) and how it reaches the socket: batches (every frame
 * queued during one database read goes out after it), coalescing under
 * load (coalesce_rate / coalesce_ms), and several frames per write.
 */
#ifndef RELAY_WRITER_H
#define RELAY_WRITER_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct frame;

/*
 * The most bytes of frames put in one write. Also the protocol's
 * tx_packet_size: without it lws cuts every send() to rx_buffer bytes.
 */
#define WRITE_BATCH (64 * 1024)

struct qnode
{
	struct qnode *next;
	struct frame *f;
};

enum writer_push
{
	WRITER_QUEUED,
	WRITER_FULL,				/* c's queue would pass send_queue or send_queue_bytes */
	WRITER_OVER_TOTAL			/* all queues would pass max_total_queue_bytes */
};

/*
 * Queue f on c (a new reference) and see that it gets written; unless
 * WRITER_QUEUED, nothing is queued.
 */
enum writer_push writer_push(struct conn *c, struct frame *f);

/* The connection with the largest queue in bytes (c itself on a tie). */
struct conn *writer_largest(struct conn *c);

/* Bytes of the frames on all queues, each frame once (the gauge). */
uint64_t	writer_total_bytes(void);

/* Write what is queued (SERVER_WRITEABLE of an open connection). -1: failed. */
int			writer_write(struct conn *c);

/* Nothing more will be written but a close frame: off the dirty list, queue freed. */
void		writer_forget(struct conn *c);

/* Open / close a batch: frames queued meanwhile wait for ws_batch_end(). */
void		ws_batch_begin(void);
void		ws_batch_end(void);

/* Before the lws context goes: no held write may fire. */
void		writer_stop(void);

/* At exit: the write buffer. */
void		writer_free(void);

#endif
