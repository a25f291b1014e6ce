/*
 * sender.c
 *		Walks the queue in the worker: hands READY blocks' events to the
 *		producer in queue order, records each delivery report in the event's
 *		flags and its block's done count, and gives finished blocks back to
 *		the queue.
 *
 * The walk keeps its position in worker memory only.  Everything it must not
 * forget lives in shared memory, next to the event: an event is flagged
 * DELIVERED or FAILED when its report arrives, and its block is released
 * only when every event is flagged.  So when the worker restarts, or rebuilds
 * its producer, it walks again from the tail and sends just the events that
 * are not flagged: those that were in flight when it stopped (the only ones
 * that may reach Kafka twice) and those never sent.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "event.h"
#include "metrics.h"
#include "producer.h"
#include "ring.h"
#include "sender.h"

typedef struct SenderState
{
	uint64		next_block;		/* the next block the walk visits */
	uint64		block;			/* the block being sent */
	uint64		next_event;		/* its next event */
	uint32		events_left;	/* its events not yet sent */
	uint64		inflight;		/* sent, no delivery report yet */
	bool		backpressure;	/* librdkafka said its queue is full */
	bool		delivered_since_check;
} SenderState;

static SenderState sender;

/* copy of an event that wraps around the ring's end */
static char *wrapped = NULL;
static uint64 wrapped_size = 0;

/*
 * sender_reset - start walking again from the tail (at worker start, and
 * after the producer was rebuilt: nothing is in flight then)
 */
void
sender_reset(void)
{
	uint64		head;

	ring_bounds(&sender.next_block, &head);
	sender.events_left = 0;
	sender.inflight = 0;
	sender.backpressure = false;
}

static uint32
event_word(uint64 event_off, size_t field)
{
	return *(uint32 *) ring_at(event_off + field);
}

/* the packed event at event_off, contiguous (copied if it wraps) */
static const char *
sender_event_bytes(uint64 event_off, bool *copied)
{
	uint32		length = event_word(event_off, offsetof(SkEventHeader, length));

	*copied = ring_contiguous(event_off) < length;
	if (!*copied)
		return ring_at(event_off);
	if (length > wrapped_size)
	{
		if (wrapped)
			pfree(wrapped);
		wrapped = MemoryContextAllocHuge(TopMemoryContext, length);
		wrapped_size = length;
	}
	ring_read(event_off, wrapped, length);
	return wrapped;
}

/* mark an event finished: flag it and count it in its block */
static void
sender_finish_event(uint64 event_off, uint32 flag)
{
	uint32	   *flags = (uint32 *) ring_at(event_off + offsetof(SkEventHeader, flags));
	uint64		delta = *(uint64 *) ring_at(event_off + offsetof(SkEventHeader, block_delta));

	*flags |= flag;
	(*ring_field(event_off - delta, uint32, done))++;
}

/* send the event at next_event; false if the producer cannot take it now */
static bool
sender_send_next(void)
{
	uint64		off = sender.next_event;
	bool		copied;
	SkEventView view;
	rd_kafka_resp_err_t err;

	event_view(sender_event_bytes(off, &copied), &view);
	if (view.header->flags & SK_EVENT_FINISHED)
	{
		/* finished before a restart or rebuild: count it, do not resend */
		(*ring_field(sender.block, uint32, done))++;
	}
	else
	{
		err = producer_send(&view, copied, off);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			sender.backpressure = true;
			return false;
		}
		if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__STATE)
			return false;
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			char		text[256];

			snprintf(text, sizeof(text), "event %lld to topic %s: %s",
					 (long long) view.header->event_id, view.topic, rd_kafka_err2str(err));
			metrics_count_failed(text);
			sender_finish_event(off, SK_EVENT_FAILED);
		}
		else
			sender.inflight++;
	}
	sender.next_event += view.header->length;
	sender.events_left--;
	return true;
}

/* move to the next READY block; false if there is none to send yet */
static bool
sender_next_block(void)
{
	uint64		tail;
	uint64		head;

	ring_bounds(&tail, &head);
	while (sender.next_block < head)
	{
		uint64		off = sender.next_block;
		uint32		state = pg_atomic_read_u32(ring_field(off, pg_atomic_uint32, state));
		uint64		length = *ring_field(off, uint64, length);

		if (state == SK_BLOCK_WRITING)
			return false;		/* wait for its transaction to finish */
		pg_read_barrier();
		sender.next_block += length;
		if (state == SK_BLOCK_ABANDONED)
			continue;
		Assert(state == SK_BLOCK_READY);
		sender.block = off;
		sender.next_event = off + SK_BLOCK_HEADER_SIZE;
		sender.events_left = *ring_field(off, uint32, nevents);
		*ring_field(off, uint32, done) = 0;
		return true;
	}
	return false;
}

/*
 * sender_drain - send up to budget events; returns how many were handed over
 */
uint32
sender_drain(uint32 budget)
{
	uint32		sent = 0;

	if (!producer_running())
		return 0;
	sender.backpressure = false;
	while (sent < budget && sender.inflight < SK_PRODUCER_WINDOW)
	{
		if (sender.events_left == 0 && !sender_next_block())
			break;
		if (!sender_send_next())
			break;
		sent++;
	}
	return sent;
}

/*
 * sender_release - give finished blocks at the tail back to the queue;
 * true if any space was released
 */
bool
sender_release(void)
{
	uint64		tail;
	uint64		head;
	uint64		off;

	ring_bounds(&tail, &head);
	off = tail;
	while (off < sender.next_block)
	{
		uint32		state = pg_atomic_read_u32(ring_field(off, pg_atomic_uint32, state));

		if (state == SK_BLOCK_READY &&
			*ring_field(off, uint32, done) < *ring_field(off, uint32, nevents))
			break;
		off += *ring_field(off, uint64, length);
	}
	if (off == tail)
		return false;
	ring_release(off);
	return true;
}

/*
 * sender_has_work - could sender_drain() send something now?
 */
bool
sender_has_work(void)
{
	uint64		tail;
	uint64		head;
	uint32		state;

	if (!producer_running() || sender.backpressure ||
		sender.inflight >= SK_PRODUCER_WINDOW)
		return false;
	if (sender.events_left > 0)
		return true;
	ring_bounds(&tail, &head);
	if (sender.next_block >= head)
		return false;
	state = pg_atomic_read_u32(ring_field(sender.next_block, pg_atomic_uint32, state));
	return state != SK_BLOCK_WRITING;
}

/*
 * sender_unfinished_events - events sent and not yet acknowledged
 */
uint64
sender_unfinished_events(void)
{
	return sender.inflight;
}

/*
 * sender_take_delivered_flag - was anything delivered since the last call?
 */
bool
sender_take_delivered_flag(void)
{
	bool		delivered = sender.delivered_since_check;

	sender.delivered_since_check = false;
	return delivered;
}

/*
 * sender_on_delivery - a delivery report (called inside rd_kafka_poll: plain
 * C only, no elog)
 */
void
sender_on_delivery(uint64 event_off, rd_kafka_resp_err_t err, size_t len)
{
	char		text[256];

	if (sender.inflight > 0)
		sender.inflight--;
	sender.backpressure = false;

	if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		return;					/* stays unfinished: sent again by the next producer */

	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		sender_finish_event(event_off, SK_EVENT_DELIVERED);
		metrics_count_delivered(len);
		sender.delivered_since_check = true;
		return;
	}
	snprintf(text, sizeof(text), "event %lld: %s",
			 (long long) *(int64 *) ring_at(event_off + offsetof(SkEventHeader, event_id)),
			 rd_kafka_err2str(err));
	metrics_count_failed(text);
	sender_finish_event(event_off, SK_EVENT_FAILED);
}
