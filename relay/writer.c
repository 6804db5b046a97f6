/*
 * writer.c: from a connection's queue to its socket.
 *
 * All the queued frames of a connection go out in one write: straight away
 * at the end of a batch (the notifications and answers of one database
 * read, see ws_batch_begin), or under load up to coalesce_ms later, else in
 * SERVER_WRITEABLE. A connection whose queue passes send_queue frames or
 * send_queue_bytes is a reader too slow to keep up: writer_push says so,
 * and conn.c closes it with 1013 (which drops its queue). So does one
 * frame that would take all the queues together past max_total_queue_bytes:
 * conn.c then closes the largest queue, the likeliest slow reader, rather
 * than whoever the frame was for (a healthy reader's queue is empty).
 */
#include "alloc.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "metrics.h"
#include "relay.h"
#include "timer.h"
#include "writer.h"

#include <stdlib.h>
#include <string.h>

/*
 * While a batch is open, connections given their first frame are listed
 * here instead of asking lws for WRITEABLE; ws_batch_end() writes to them
 * directly. Most frames then cost one send(), not a send() plus two
 * epoll_ctl() and a trip round the loop.
 */
static bool batching;
static struct conn *dirty_head;

/*
 * Under load (over coalesce_rate frames/s in the last HOLD_WINDOW) the
 * dirty list is written at most every coalesce_ms instead of after every
 * read: frames that come close together share one write (many fewer send()
 * calls at group fan-out) for at most coalesce_ms more latency. Below that
 * rate nothing waits.
 */
#define HOLD_WINDOW	(100 * LWS_US_PER_MS)
static bool holding;			/* the last HOLD_WINDOW was over coalesce_rate */
static lws_sorted_usec_list_t hold_sul;	/* scheduled: it will write the dirty list */
static int64_t rate_since;
static uint64_t rate_frames;

static unsigned char *wbuf;		/* LWS_PRE headroom, then several frames */
static size_t wcap;

/* Put c on the dirty list (O(1) both ways: a held list can be long). */
static void
dirty_add(struct conn *c)
{
	c->d_next = dirty_head;
	if (dirty_head)
		dirty_head->d_pprev = &c->d_next;
	dirty_head = c;
	c->d_pprev = &dirty_head;
}

static void
dirty_remove(struct conn *c)
{
	*c->d_pprev = c->d_next;
	if (c->d_next)
		c->d_next->d_pprev = c->d_pprev;
	c->d_next = NULL;
	c->d_pprev = NULL;
}

/*
 * The bytes of the frames on the send queues, each frame counted once
 * however many queues hold it (an event fanned out to a group is one
 * buffer): what the queues keep in memory, bounded by max_total_queue_bytes.
 * Changed only by node_add and node_pop, as frames join and leave a queue.
 */
static uint64_t total_bytes;

/*
 * The connections whose queue is not empty (the slow ones, and those given
 * frames in this batch or held write): where the largest queue is looked
 * for when total_bytes is at its bound.
 */
static struct conn *backlog_head;

static void
backlog_add(struct conn *c)
{
	c->b_next = backlog_head;
	if (backlog_head)
		backlog_head->b_pprev = &c->b_next;
	backlog_head = c;
	c->b_pprev = &backlog_head;
}

static void
backlog_remove(struct conn *c)
{
	*c->b_pprev = c->b_next;
	if (c->b_next)
		c->b_next->b_pprev = c->b_pprev;
	c->b_next = NULL;
	c->b_pprev = NULL;
}

/* Append f to c's queue (a new reference). */
static void
node_add(struct conn *c, struct frame *f)
{
	struct qnode *n = xmalloc(sizeof(*n));

	n->next = NULL;
	n->f = f;
	f->refs++;
	if (f->queued++ == 0)
		total_bytes += f->len;
	if (c->q_tail)
		c->q_tail->next = n;
	else
		c->q_head = n;
	c->q_tail = n;
	c->q_bytes += f->len;
	if (c->q_len++ == 0)
		backlog_add(c);
}

/* Take the first frame off c's queue: written, or dropped with the queue. */
static void
node_pop(struct conn *c)
{
	struct qnode *head = c->q_head;
	struct frame *f = head->f;

	c->q_head = head->next;
	if (!c->q_head)
		c->q_tail = NULL;
	c->q_bytes -= f->len;
	if (--c->q_len == 0)
		backlog_remove(c);
	if (--f->queued == 0)
		total_bytes -= f->len;
	frame_unref(f);
	free(head);
}

/* Drop everything queued. */
static void
queue_free(struct conn *c)
{
	while (c->q_head)
		node_pop(c);
}

enum writer_push
writer_push(struct conn *c, struct frame *f)
{
	if (c->q_len >= (uint32_t) cf_send_queue ||
		(uint64_t) c->q_bytes + f->len > (uint64_t) cf_send_queue_bytes)
		return WRITER_FULL;
	/* queued elsewhere already, f costs this queue its node only */
	if (f->queued == 0 && total_bytes + f->len > (uint64_t) cf_max_total_queue_bytes)
		return WRITER_OVER_TOTAL;
	node_add(c, f);
	if (c->q_len == 1)
	{
		/* held, then emptied in WRITEABLE: it is on the list already */
		if (!batching)
			lws_callback_on_writable(c->wsi);
		else if (!c->d_pprev)
			dirty_add(c);
	}
	return WRITER_QUEUED;
}

struct conn *
writer_largest(struct conn *c)
{
	struct conn *largest = c;

	for (struct conn *b = backlog_head; b; b = b->b_next)
		if (b->q_bytes > largest->q_bytes)
			largest = b;
	return largest;
}

uint64_t
writer_total_bytes(void)
{
	return total_bytes;
}

void
writer_forget(struct conn *c)
{
	if (c->d_pprev)
		dirty_remove(c);
	queue_free(c);
}

/*
 * Write the queued frames in one system call however many a burst brought
 * (whole frames, up to WRITE_BATCH bytes, at least one). They are framed
 * already, so they go out as raw bytes; lws keeps what the socket does not
 * take and sends it before the next WRITEABLE. -1 if the connection failed.
 */
int
writer_write(struct conn *c)
{
	struct qnode *q;
	unsigned char *out;
	size_t		total = 0;
	int			n = 0;

	if (!c->q_head)
		return 0;
	for (q = c->q_head; q && (n == 0 || total + FRAME_WIRE_LEN(q->f) <= WRITE_BATCH); q = q->next)
	{
		total += FRAME_WIRE_LEN(q->f);
		n++;
	}
	if (n == 1)
		out = FRAME_WIRE(c->q_head->f); /* the shared buffer, no copy */
	else
	{
		size_t		used = 0;

		if (LWS_PRE + total > wcap)
		{
			wcap = LWS_PRE + total;
			wbuf = xrealloc(wbuf, wcap);
		}
		for (q = c->q_head; used < total; q = q->next)
		{
			memcpy(wbuf + LWS_PRE + used, FRAME_WIRE(q->f), FRAME_WIRE_LEN(q->f));
			used += FRAME_WIRE_LEN(q->f);
		}
		out = wbuf + LWS_PRE;
	}
	if (lws_write(c->wsi, out, total, LWS_WRITE_HTTP) < (int) total)
		return -1;

	while (n-- > 0)
	{
		metrics.frames_out++;
		metrics.bytes_out += c->q_head->f->len;
		node_pop(c);
	}
	if (c->q_head)
		lws_callback_on_writable(c->wsi);
	return 0;
}

void
ws_batch_begin(void)
{
	batching = true;
}

/*
 * Write to every connection that was given frames. A connection closing
 * meanwhile gets its close frame in WRITEABLE, and so does one whose last
 * write lws still holds in part: writing more now would move the frames
 * from the bounded queue into lws's unbounded buffer (a slow reader would
 * never be found out), or put them after a close frame lws is still
 * sending. One whose socket failed is closed by lws at once.
 */
static void
flush_dirty(void)
{
	while (dirty_head)
	{
		struct conn *c = dirty_head;

		dirty_remove(c);
		if (!c->q_head)			/* dropped: a reader too slow (1013) */
			continue;
		if (c->state != CONN_OPEN || lws_partial_buffered(c->wsi))
			lws_callback_on_writable(c->wsi);
		else if (writer_write(c) < 0)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

static void
held_flush(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	flush_dirty();
}

/*
 * Close the batch: write now, or under load (more than coalesce_rate
 * frames/s over the last HOLD_WINDOW) at most coalesce_ms from now, so that
 * a connection given several frames meanwhile gets them in one write.
 */
void
ws_batch_end(void)
{
	int64_t		now = lws_now_usecs();

	batching = false;
	if (now - rate_since >= HOLD_WINDOW)
	{
		holding = cf_coalesce_rate > 0 &&
			(metrics.frames_out - rate_frames) * LWS_US_PER_SEC > (uint64_t) cf_coalesce_rate * (uint64_t) (now - rate_since);
		rate_since = now;
		rate_frames = metrics.frames_out;
	}
	else if (cf_coalesce_rate == 0)
		holding = false;		/* turned off by a reload: at once */
	if (!dirty_head)
		return;
	if (holding)
	{
		if (lws_dll2_is_detached(&hold_sul.list))
		{
			metrics.held_writes++;
			timer_schedule(&hold_sul, held_flush, (lws_usec_t) cf_coalesce_ms * LWS_US_PER_MS);
		}
		return;
	}
	flush_dirty();
}

void
writer_stop(void)
{
	timer_cancel(&hold_sul);
}

void
writer_free(void)
{
	free(wbuf);
	wbuf = NULL;
	wcap = 0;
}
