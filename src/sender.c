/*
 * sender.c
 *		Walks the queue in the worker: hands READY blocks' events to the
 *		producer in queue order, records each delivery report in the event's
 *		flags, gives finished blocks back to the queue, and (overflow =
 *		drop_oldest) discards the oldest events.
 *
 * The walk keeps only its position in worker memory.  What it must not forget
 * lives in shared memory, in the event itself: the flags (DELIVERED, DROPPED,
 * DEAD_LETTERED: finished; REFUSED: waiting for the dead-letter table) and
 * sent_generation, the generation of the producer that holds the event.  An
 * event is in flight when it is neither finished nor refused and its
 * sent_generation is the current producer's.  A block is released when all
 * its events are finished; being finished never reverts, so the release scan
 * resumes where it stopped.  So when the worker restarts or builds a new
 * producer (a new generation), or after librdkafka's queue was purged, the
 * walk starts again from the tail and sends exactly the events that are
 * neither finished nor in flight.  Only events in flight when a worker or
 * producer went away (Kafka may have them; their report was lost) are sent
 * twice.
 *
 * Order.  Blocks are sent in reservation order (PRE_COMMIT), which follows
 * commit order for every transaction that could have seen another: one
 * reserves after the other became visible.  A commit waiting for synchronous
 * replication is not visible to anyone, and its block stays WRITING; the walk
 * passes it (it "holds" it, one at a time) for the blocks reserved while it
 * is still seen waiting: those transactions could not have seen it.  Blocks
 * reserved after its wait ended wait for it.  When it becomes READY, the walk
 * goes back to send it, then on from where it was.  Its events are never sent
 * before its commit is replicated (or the wait is cancelled: then it is
 * committed locally, and visible).  The queue's space is still released in
 * order, so a long wait holds space; kafka_health() shows it.  A block left
 * WRITING by a crash is IN_DOUBT: sent if its xid committed, else abandoned.
 *
 * Kafka's refusals (a delivery report with an error, or librdkafka refusing
 * an event outright) mark the event REFUSED and hand it to deadletter.c,
 * which writes it to the table and then marks it DEAD_LETTERED.  A walk
 * that meets a REFUSED event (after a restart) hands it over again.  The
 * circuit breaker decides whether the walk may send at all.
 */
#include "postgres.h"

#include "access/transam.h"
#include "replication/syncrep.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "breaker.h"
#include "deadletter.h"
#include "event.h"
#include "metrics.h"
#include "producer.h"
#include "ratelimit.h"
#include "ring.h"
#include "sender.h"
#include "topicstats.h"


typedef struct SenderState
{
	uint32		generation;		/* the current producer's */
	uint64		next_block;		/* the next block the walk visits */
	uint64		known_head;		/* the queue's head when last read */
	uint64		block;			/* the block being walked */
	uint64		next_event;		/* its next event */
	uint32		events_left;	/* its events not yet walked */
	uint64		inflight;		/* sent, no delivery report yet */
	bool		backpressure;	/* librdkafka said its queue is full */
	bool		delivered_since_check;
	bool		has_held;		/* the walk passed a WRITING block: */
	uint64		held;			/* that block (its commit waits) */
	uint64		held_limit;		/* blocks before this may pass it */
	uint64		scan_block;		/* release: the block partly found finished */
	uint64		scan_event;		/* ... and its first event not finished */
	uint64		dropped_unlogged;
	uint64		refused_dropped_unlogged;
	TimestampTz last_drop_log;
	TimestampTz poll_time;		/* when the current poll began (latency) */
} SenderState;

static SenderState sender;

/* copy of an event that wraps around the ring's end */
static char *wrapped = NULL;
static uint64 wrapped_size = 0;

/*
 * sender_rewind - walk again from the tail
 */
static void
sender_rewind(void)
{
	ring_worker_bounds(&sender.next_block, &sender.known_head);
	sender.events_left = 0;
	sender.backpressure = false;
	sender.has_held = false;
	ring_set_held_by(0);
	deadletter_forget_all();
}

/*
 * sender_resync - after an ERROR in the worker's loop: the walk may have
 * stopped anywhere, so it starts again from the tail (the producer and what
 * it holds are unchanged)
 */
void
sender_resync(void)
{
	sender.scan_block = 0;
	sender.scan_event = 0;
	sender_rewind();
}

/*
 * sender_restart - a new producer (generation) takes over; nothing is in
 * flight with it yet
 */
void
sender_restart(uint32 generation)
{
	sender.generation = generation;
	sender.inflight = 0;
	sender_rewind();
}

/* the packed event at event_off, contiguous (copied if it wraps) */
static const char *
sender_event_bytes(uint64 event_off, bool *copied)
{
	uint32		length = event_ring_length(event_off);

	*copied = ring_contiguous(event_off) < length;
	if (!*copied)
		return ring_at(event_off);
	if (length > wrapped_size)
	{
		char	   *bigger = MemoryContextAllocExtended(TopMemoryContext, length,
														MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

		if (bigger == NULL)
			return NULL;
		if (wrapped)
			pfree(wrapped);
		wrapped = bigger;
		wrapped_size = length;
	}
	ring_read(event_off, wrapped, length);
	return wrapped;
}

/*
 * sender_copy_failed - no memory to copy the wrapped event at off: say so
 * (at most every 10 s) and let the walk try again later; the worker goes on
 */
static void
sender_copy_failed(uint64 off)
{
	static TimestampTz last_log = 0;
	TimestampTz now = GetCurrentTimestamp();
	char		text[256];

	snprintf(text, sizeof(text), "out of memory copying event %lld (%u bytes) to send it",
			 (long long) event_ring_id(off), event_ring_length(off));
	metrics_note_error(text);
	sender.backpressure = true;
	if (!log_interval_passed(&last_log, now, SK_DROP_LOG_INTERVAL_MS))
		return;
	ereport(LOG,
			(errmsg("streamkafka %s; the worker tries again", text),
			 errdetail("The events behind it wait in the queue.")));
}

/* mark an event finished (the queue counts it out) */
static void
sender_finish_event(uint64 event_off, uint32 flag)
{
	event_ring_finish(event_off, flag);
}

static bool
event_in_flight(const SkEventHeader *header)
{
	return !(header->flags & SK_EVENT_SETTLED) &&
		header->sent_generation == sender.generation;
}

/*
 * event_specific_error - does the error say something about this event
 * (its size, its topic, its partition) rather than about Kafka's health?
 * Those do not count against the circuit breaker.
 */
static bool
event_specific_error(rd_kafka_resp_err_t err)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
		case RD_KAFKA_RESP_ERR_INVALID_MSG:
		case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		case RD_KAFKA_RESP_ERR__INVALID_ARG:
			return true;
		default:
			return false;
	}
}

/*
 * sender_refuse - Kafka refused the event at off for good: count it, tell
 * the breaker, and hand it to the dead-letter writer (plain C)
 */
static void
sender_refuse(uint64 off, rd_kafka_resp_err_t err, const char *topic, int stats_slot)
{
	char		text[256];

	snprintf(text, sizeof(text), "event %lld%s%s: %s",
			 (long long) event_ring_id(off),
			 topic ? " to topic " : "", topic ? topic : "", rd_kafka_err2str(err));
	metrics_count_failed(text);
	topicstats_count_failed(stats_slot, text);
	if (event_ring_flags(off) & SK_EVENT_RETRY)
		metrics_count_retried(1);
	if (!event_specific_error(err))
		breaker_failure(text);
	event_ring_refuse(off, err);
	deadletter_add(off);
}

/* walk the event at next_event; false if the producer cannot take it now */
static bool
sender_walk_event(void)
{
	uint64		off = sender.next_event;
	bool		copied;
	SkEventView view;
	rd_kafka_resp_err_t err;
	const char *bytes = sender_event_bytes(off, &copied);

	if (bytes == NULL)
	{
		sender_copy_failed(off);
		return false;
	}
	event_view(bytes, &view);
	if (view.header->flags & SK_EVENT_FINISHED)
		;						/* done with */
	else if (view.header->flags & SK_EVENT_REFUSED)
		deadletter_add(off);	/* met again after a restart */
	else if (!event_in_flight(view.header))
	{
		int			slot;

		if (!breaker_may_send())
			return false;
		err = producer_send(&view, copied, off, &slot);
		if (!(view.header->flags & SK_EVENT_COUNTED))
		{
			topicstats_count_taken(slot);
			event_ring_add_flags(off, SK_EVENT_COUNTED);
		}
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			sender.backpressure = true;
			return false;
		}
		if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__STATE)
			return false;
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			event_ring_set_sent(off, sender.generation);
			sender.inflight++;
			breaker_sent();
			topicstats_count_sent(slot);
			metrics_count_sent();
		}
		else
			sender_refuse(off, err, view.topic, slot);
	}
	sender.next_event += view.header->length;
	sender.events_left--;
	return true;
}

/*
 * block_owner_waiting - the pid of the backend committing the WRITING block
 * at off if that commit waits for synchronous replication (so it is visible
 * to no one), else 0
 */
static int
block_owner_waiting(uint64 off)
{
	uint64		owner = *ring_field(off, uint64, owner);
	int			procno = (int) (owner >> 32) - 1;
	TransactionId xid = (TransactionId) owner;
	volatile PGPROC *proc;

	if (procno < 0 || procno >= (int) ProcGlobal->allProcCount || !TransactionIdIsValid(xid))
		return 0;
	proc = &ProcGlobal->allProcs[procno];
	pg_memory_barrier();
	if (proc->syncRepState != SYNC_REP_WAITING || proc->xid != xid)
		return 0;
	return proc->pid;
}

/*
 * sender_may_pass - may the walk go past the WRITING block at off, up to
 * the queue's head?  Only if its commit waits for a standby: head is read
 * first, so every block before it was reserved while that commit was not
 * visible.  Sets held_limit to that head.
 */
static bool
sender_may_pass(uint64 off)
{
	uint64		tail;
	uint64		head;
	int			pid;

	ring_worker_bounds(&tail, &head);
	pg_memory_barrier();
	pid = block_owner_waiting(off);
	if (pid == 0)
		return false;
	sender.held_limit = head;
	sender.known_head = Max(sender.known_head, head);
	ring_set_held_by(pid);
	return true;
}

/*
 * sender_return_to_held - the held block is no longer WRITING: walk it now
 * if READY (true); next_block is unchanged, so the walk goes on from there
 * afterwards
 */
static bool
sender_return_to_held(void)
{
	uint64		off = sender.held;
	uint32		state = ring_block_state(off);

	if (state == SK_BLOCK_WRITING)
		return false;
	pg_read_barrier();
	sender.has_held = false;
	ring_set_held_by(0);
	if (state != SK_BLOCK_READY)
		return false;			/* rolled back: nothing to send */
	sender.block = off;
	sender.next_event = off + SK_BLOCK_HEADER_SIZE;
	sender.events_left = *ring_field(off, uint32, nevents);
	return true;
}

/*
 * sender_resolve_in_doubt - a block left WRITING by a crash: queue it if its
 * transaction committed (its commit record survived), else abandon it; says
 * which in the log.  Returns the block's new state.
 */
static uint32
sender_resolve_in_doubt(uint64 off)
{
	TransactionId xid = (TransactionId) *ring_field(off, uint64, owner);
	uint32		nevents = *ring_field(off, uint32, nevents);

	if (TransactionIdPrecedes(xid, ReadNextTransactionId()) && TransactionIdDidCommit(xid))
	{
		metrics_count_queued(nevents);
		ring_block_ready(off);
		ereport(LOG,
				(errmsg("streamkafka: transaction %u committed before the crash: "
						"its %u events are queued",
						xid, nevents)));
		return SK_BLOCK_READY;
	}
	ring_block_abandon(off);
	ereport(LOG,
			(errmsg("streamkafka: transaction %u did not commit before the crash: "
					"its %u events are discarded", xid, nevents)));
	return SK_BLOCK_ABANDONED;
}

/*
 * move to the next READY block; false if there is none to walk yet.  The
 * queue's head is read again only when the walk reaches the head it knew:
 * backends write that cache line for every event.
 */
static bool
sender_next_block(void)
{
	uint64		tail;

	if (sender.has_held && sender_return_to_held())
		return true;
	if (sender.next_block >= sender.known_head)
		ring_worker_bounds(&tail, &sender.known_head);
	while (sender.next_block < sender.known_head)
	{
		uint64		off = sender.next_block;
		uint32		state = ring_block_state(off);

		/* past the limit, go on only if the held commit still waits */
		if (sender.has_held && off >= sender.held_limit && !sender_may_pass(sender.held))
			return false;
		if (state == SK_BLOCK_IN_DOUBT)
			state = sender_resolve_in_doubt(off);
		if (state == SK_BLOCK_WRITING)
		{
			/* wait for its transaction to finish, unless it may be passed */
			if (sender.has_held || !sender_may_pass(off))
				return false;
			sender.has_held = true;
			sender.held = off;
			sender.next_block += *ring_field(off, uint64, length);
			continue;
		}
		pg_read_barrier();
		sender.next_block += *ring_field(off, uint64, length);
		if (state == SK_BLOCK_ABANDONED)
			continue;
		Assert(state == SK_BLOCK_READY);
		sender.block = off;
		sender.next_event = off + SK_BLOCK_HEADER_SIZE;
		sender.events_left = *ring_field(off, uint32, nevents);
		return true;
	}
	return false;
}

/*
 * sender_drain - walk up to budget events; returns how many were walked
 */
uint32
sender_drain(uint32 budget)
{
	uint32		walked = 0;

	if (!producer_running())
		return 0;
	if (deadletter_missed())
		sender_rewind();		/* to find the refused events not listed */
	sender.backpressure = false;
	while (walked < budget && sender.inflight < SK_PRODUCER_WINDOW)
	{
		if (sender.events_left == 0 && !sender_next_block())
			break;
		if (!sender_walk_event())
			break;
		walked++;
	}
	return walked;
}

/*
 * block_finished - are all events of the walked block at off finished?
 * Resumes a partial scan of the same block.
 */
static bool
block_finished(uint64 off)
{
	uint64		end = off + *ring_field(off, uint64, length);
	uint64		event_off = off + SK_BLOCK_HEADER_SIZE;
	uint32		state = ring_block_state(off);

	if (state == SK_BLOCK_ABANDONED)
		return true;
	if (state != SK_BLOCK_READY)
		return false;			/* a held block, still WRITING */
	pg_read_barrier();
	if (sender.scan_block == off && sender.scan_event > event_off)
		event_off = sender.scan_event;
	while (event_off < end && (event_ring_flags(event_off) & SK_EVENT_FINISHED))
		event_off += event_ring_length(event_off);
	sender.scan_block = off;
	sender.scan_event = event_off;
	return event_off >= end;
}

/*
 * sender_release - give finished blocks at the tail back to the queue;
 * true if any space was released.  Only walked blocks (before next_block)
 * are looked at: a block beyond may still be WRITING.
 */
bool
sender_release(void)
{
	uint64		tail;
	uint64		head;
	uint64		off;

	ring_worker_bounds(&tail, &head);
	for (off = tail; off < sender.next_block && block_finished(off);)
		off += *ring_field(off, uint64, length);
	if (off == tail)
		return false;
	ring_release(off);
	return true;
}

/*
 * sender_can_send - could the producer take another event now?  When it
 * cannot, new events in the queue are no reason to wake the worker.
 */
bool
sender_can_send(void)
{
	return producer_running() && !sender.backpressure &&
		sender.inflight < SK_PRODUCER_WINDOW && breaker_may_send();
}

/*
 * sender_has_work - could sender_drain() walk something now?
 */
bool
sender_has_work(void)
{
	uint64		tail;
	uint64		head;

	if (!sender_can_send())
		return false;
	if (sender.events_left > 0)
		return true;
	if (sender.has_held &&
		ring_block_state(sender.held) != SK_BLOCK_WRITING)
		return true;
	ring_worker_bounds(&tail, &head);
	return sender.next_block < head &&
		ring_block_state(sender.next_block) != SK_BLOCK_WRITING;
}

/* log drops (and how many were refused events) at most every 10 s */
static void
sender_log_drops(uint64 dropped, uint64 refused)
{
	TimestampTz now = GetCurrentTimestamp();

	sender.dropped_unlogged += dropped;
	sender.refused_dropped_unlogged += refused;
	if (sender.dropped_unlogged == 0 ||
		!log_interval_passed(&sender.last_drop_log, now, SK_DROP_LOG_INTERVAL_MS))
		return;
	ereport(LOG,
			(errmsg("streamkafka dropped the %llu oldest queued events to make room "
					"(overflow = drop_oldest), %llu of them refused by Kafka and not yet "
					"in kafka_dead_letters",
					(unsigned long long) sender.dropped_unlogged,
					(unsigned long long) sender.refused_dropped_unlogged)));
	sender.dropped_unlogged = 0;
	sender.refused_dropped_unlogged = 0;
}

/* count a dropped event in its topic's statistics */
static void
sender_count_topic_drop(uint64 event_off, const SkEventHeader *header)
{
	int			slot = topicstats_event_slot(event_off);

	if (!(header->flags & SK_EVENT_COUNTED))
		topicstats_count_taken(slot);
	topicstats_count_dropped(slot);
}

/*
 * block_droppable - may the READY block at off be dropped (or released, if
 * all its events are finished)?  Not while an event is in flight, nor when
 * some events were delivered and others not: a transaction is dropped whole
 * or not at all, never half-published.
 */
static bool
block_droppable(uint64 off)
{
	uint64		event_off = off + SK_BLOCK_HEADER_SIZE;
	uint32		nevents = *ring_field(off, uint32, nevents);
	bool		delivered = false;
	bool		unfinished = false;

	for (uint32 i = 0; i < nevents; i++)
	{
		SkEventHeader header;

		(void) event_ring_read_header(event_off, &header);
		if (event_in_flight(&header))
			return false;
		if (header.flags & SK_EVENT_DELIVERED)
			delivered = true;
		else if (!(header.flags & SK_EVENT_FINISHED))
			unfinished = true;
		event_off += header.length;
	}
	return !(delivered && unfinished);
}

/*
 * sender_drop_block - drop every unfinished event of the block at off,
 * refused ones (waiting for their dead-letter row) included; counts them
 */
static void
sender_drop_block(uint64 off, uint64 *dropped, uint64 *refused)
{
	uint64		event_off = off + SK_BLOCK_HEADER_SIZE;
	uint32		nevents = *ring_field(off, uint32, nevents);

	for (uint32 i = 0; i < nevents; i++)
	{
		SkEventHeader header;

		(void) event_ring_read_header(event_off, &header);
		if (!(header.flags & SK_EVENT_FINISHED))
		{
			sender_finish_event(event_off, SK_EVENT_DROPPED);
			sender_count_topic_drop(event_off, &header);
			if (header.flags & SK_EVENT_RETRY)
				deadletter_retry_dropped(header.event_id);
			(*dropped)++;
			if (header.flags & SK_EVENT_REFUSED)
				(*refused)++;
		}
		event_off += header.length;
	}
}

/*
 * sender_evict - overflow = drop_oldest: take back from librdkafka the events
 * it has not put on the wire, then drop the oldest blocks until a block of
 * bytes_wanted fits (only the shortfall is freed), stopping at a block that
 * is being written or has an event delivered or in flight.  Refused events
 * still waiting for their dead-letter row are dropped with their block and
 * counted.  Returns bytes freed.
 */
uint64
sender_evict(uint64 bytes_wanted)
{
	uint64		tail;
	uint64		head;
	uint64		off;
	uint64		shortfall;
	uint64		dropped = 0;
	uint64		refused = 0;

	ring_worker_bounds(&tail, &head);
	if (bytes_wanted <= ring_capacity() - (head - tail))
		return 0;				/* room came free meanwhile */
	producer_purge_queued();
	ring_worker_bounds(&tail, &head);
	shortfall = bytes_wanted - (ring_capacity() - (head - tail));
	for (off = tail; off < head && off - tail < shortfall;)
	{
		uint32		state = ring_block_state(off);

		if (state != SK_BLOCK_READY && state != SK_BLOCK_ABANDONED)
			break;				/* WRITING or IN_DOUBT: not decided yet */
		pg_read_barrier();
		if (state == SK_BLOCK_READY)
		{
			if (!block_droppable(off))
				break;
			sender_drop_block(off, &dropped, &refused);
		}
		off += *ring_field(off, uint64, length);
	}
	if (dropped > 0)
		metrics_count_dropped(dropped);
	sender_log_drops(dropped, refused);
	if (off != tail)
		ring_release(off);
	sender_rewind();
	return off - tail;
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
sender_on_delivery(uint64 event_off, rd_kafka_resp_err_t err, size_t len, int stats_slot)
{
	if (sender.inflight > 0)
		sender.inflight--;
	sender.backpressure = false;

	if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
	{
		/* taken back: no longer in flight, sent again by the next walk */
		event_ring_set_sent(event_off, 0);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		uint64		block = event_ring_block(event_off);

		sender_finish_event(event_off, SK_EVENT_DELIVERED);
		metrics_count_delivered(len);
		topicstats_count_delivered(stats_slot, len, *ring_field(block, int64, enqueued_at),
								   sender.poll_time);
		breaker_success();
		if (event_ring_flags(event_off) & SK_EVENT_RETRY)
		{
			metrics_count_retried(1);
			deadletter_retry_delivered(event_ring_id(event_off));
		}
		sender.delivered_since_check = true;
		return;
	}
	sender_refuse(event_off, err, NULL, stats_slot);
}

/*
 * sender_poll_begins - delivery reports are about to be served: their
 * latency is measured to now
 */
void
sender_poll_begins(void)
{
	sender.poll_time = GetCurrentTimestamp();
}

/*
 * sender_in_flight - does librdkafka hold any event of ours?
 */
bool
sender_in_flight(void)
{
	return sender.inflight > 0;
}
