/*
 * enqueue.c
 *		Moves events into the shared-memory queue: a non-transactional event at
 *		once, a transaction's events as one block at commit (see pending.c),
 *		and says what happens when the queue has no room.
 *
 * When the queue is full, streamkafka.overflow decides:
 *   error       the statement (or the COMMIT) fails with SQLSTATE 53000;
 *   block       wait up to streamkafka.enqueue_timeout_ms for space, then fail;
 *   drop_newest the new event (a committing transaction: all its events) is
 *               counted as dropped and not queued; the statement succeeds;
 *   drop_oldest the worker discards the oldest events librdkafka does not
 *               hold; the session waits up to enqueue_timeout_ms for that,
 *               then drops its own events as drop_newest does.
 * A transaction is never half-published: its events are queued, dropped or
 * failed together.  Waiting is for queue space only, never for the network.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "utils/timestamp.h"

#include "ratelimit.h"
#include "ring.h"
#include "enqueue.h"
#include "metrics.h"
#include "settings.h"


/*
 * enqueue_check_fits - ERROR if a block of block_length bytes, the last event
 * of which takes event_size bytes, could never fit in the queue
 */
void
enqueue_check_fits(uint64 block_length, uint64 event_size)
{
	if (block_length <= ring_capacity())
		return;
	if (SK_BLOCK_HEADER_SIZE + event_size > ring_capacity())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Kafka event too large for the streamkafka queue"),
				 errdetail("The event needs %llu bytes, "
						   "but streamkafka.queue_size holds %llu bytes.",
						   (unsigned long long) event_size,
						   (unsigned long long) ring_capacity()),
				 errhint("Raise streamkafka.queue_size (needs a restart), "
						 "or publish a smaller event.")));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("transaction's Kafka events too large for the streamkafka queue"),
			 errdetail("With this event the transaction's events need %llu bytes, "
					   "but streamkafka.queue_size holds %llu bytes; "
					   "all of them must fit at commit.",
					   (unsigned long long) block_length,
					   (unsigned long long) ring_capacity()),
			 errhint("Raise streamkafka.queue_size (needs a restart), publish fewer events "
					 "per transaction, or use transactional => false.")));
}

/* the most bytes this database's events may take in the queue */
static uint64
enqueue_database_limit(void)
{
	if (sk_database_queue_share >= 100 || !IsUnderPostmaster)
		return PG_UINT64_MAX;
	return ring_capacity() / 100 * sk_database_queue_share;
}

/* reserve a block for this session's database and role */
static SkReserveResult
enqueue_try(uint64 block_length, uint32 nevents, uint64 *off)
{
	return ring_reserve(block_length, nevents, MyDatabaseId, GetUserId(),
						enqueue_database_limit(), off);
}

/* a wait for room in the queue: what to reserve, and what came of it */
typedef struct SpaceWait
{
	uint64		block_length;
	uint32		nevents;
	bool		evict;
	uint64	   *off;
	SkReserveResult result;
} SpaceWait;

/* enqueue_reserved - ring_wait's test: try to reserve; ask for eviction */
static bool
enqueue_reserved(void *arg)
{
	SpaceWait  *wait = (SpaceWait *) arg;

	wait->result = enqueue_try(wait->block_length, wait->nevents, wait->off);
	/* asked after each failed reserve only: a stale request evicts more */
	if (wait->evict && wait->result == SK_QUEUE_FULL)
		ring_request_eviction(wait->block_length);
	return wait->result == SK_RESERVED;
}

/*
 * enqueue_wait_for_space - wait up to enqueue_timeout_ms for room; with
 * evict, ask the worker to make it (not when the database's share is what is
 * used up: evicting would take other databases' events)
 */
static SkReserveResult
enqueue_wait_for_space(uint64 block_length, uint32 nevents, bool evict, uint64 *off)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   sk_enqueue_timeout_ms);
	SpaceWait	wait = {block_length, nevents, evict, off, SK_QUEUE_FULL};

	(void) ring_wait(enqueue_reserved, &wait, deadline, 0);
	return wait.result;
}

/* count events dropped by policy; log at most once per interval per session */
static void
enqueue_drop(uint32 nevents)
{
	static TimestampTz last_log = 0;
	static uint64 unlogged = 0;
	TimestampTz now = GetCurrentTimestamp();

	metrics_count_queued(nevents);
	metrics_count_dropped(nevents);
	unlogged += nevents;
	if (!log_interval_passed(&last_log, now, SK_DROP_LOG_INTERVAL_MS))
		return;
	ereport(LOG,
			(errmsg("streamkafka queue is full: dropped %llu new event(s) (overflow = %s)",
					(unsigned long long) unlogged, settings_overflow_name(sk_overflow))));
	unlogged = 0;
}

/* ERROR: the queue, or the database's share of it, has no room */
static void
enqueue_reject(SkReserveResult result, uint64 block_length, uint32 nevents, bool at_commit,
			   int policy)
{
	const char *waited = policy == SK_OVERFLOW_BLOCK ?
		", and no room came free within streamkafka.enqueue_timeout_ms" : "";

	metrics_count_rejected(nevents);
	if (result == SK_SHARE_FULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("this database's share of the streamkafka queue is full"),
				 at_commit ?
				 errdetail("Its events may take %d%% of the queue "
						   "(streamkafka.database_queue_share), "
						   "%llu bytes; the transaction's %u event(s) need %llu more%s, and the "
						   "transaction is rolled back.",
						   sk_database_queue_share, (unsigned long long) enqueue_database_limit(),
						   nevents, (unsigned long long) block_length, waited) :
				 errdetail("Its events may take %d%% of the queue "
						   "(streamkafka.database_queue_share), "
						   "%llu bytes; the event needs %llu more%s, and it was not published.",
						   sk_database_queue_share, (unsigned long long) enqueue_database_limit(),
						   (unsigned long long) block_length, waited),
				 errhint("Events wait in the queue until Kafka acknowledges them: check "
						 "SELECT kafka_health(), or raise streamkafka.database_queue_share.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("streamkafka queue is full"),
			 at_commit ?
			 errdetail("The transaction's %u Kafka event(s) need %llu bytes%s; "
					   "the transaction is rolled back and none of them is published.",
					   nevents, (unsigned long long) block_length, waited) :
			 errdetail("The event needs %llu bytes%s; it was not published.",
					   (unsigned long long) block_length, waited),
			 errhint("Events wait in the queue until Kafka acknowledges them: check "
					 "SELECT kafka_health(), raise streamkafka.queue_size, or choose "
					 "another streamkafka.overflow policy.")));
}

/*
 * enqueue_reserve_policy - reserve a block under an overflow policy.  False:
 * the events were dropped by the policy (counted).  Fails with SQLSTATE
 * 53000 under error and block.
 * A database whose share of the queue is used up is treated as a full queue,
 * except that drop_oldest then evicts nothing (the oldest events may be
 * another database's).
 */
static bool
enqueue_reserve_policy(uint64 block_length, uint32 nevents, bool at_commit, int policy,
					   uint64 *off)
{
	SkReserveResult result = enqueue_try(block_length, nevents, off);

	if (result == SK_RESERVED)
		return true;
	if (policy == SK_OVERFLOW_BLOCK || policy == SK_OVERFLOW_DROP_OLDEST)
	{
		result = enqueue_wait_for_space(block_length, nevents,
										policy == SK_OVERFLOW_DROP_OLDEST, off);
		if (result == SK_RESERVED)
			return true;
	}
	if (policy == SK_OVERFLOW_DROP_NEWEST || policy == SK_OVERFLOW_DROP_OLDEST)
	{
		enqueue_drop(nevents);
		return false;
	}
	enqueue_reject(result, block_length, nevents, at_commit, policy);
	pg_unreachable();
}

/* enqueue_reserve - reserve a block under streamkafka.overflow */
bool
enqueue_reserve(uint64 block_length, uint32 nevents, bool at_commit, uint64 *off)
{
	return enqueue_reserve_policy(block_length, nevents, at_commit, sk_overflow, off);
}

/*
 * enqueue_now - put one event in the queue, ready to send; false if the
 * overflow policy dropped it.  An event never_dropped (a snapshot's row)
 * waits for room as under overflow = block, whatever the policy.
 */
bool
enqueue_now(const SkEvent *event, uint64 size, int64 event_id)
{
	uint64		block_length = SK_BLOCK_HEADER_SIZE + size;
	uint64		off;

	enqueue_check_fits(block_length, size);
	if (!enqueue_reserve_policy(block_length, 1, false,
								event->never_dropped ? SK_OVERFLOW_BLOCK : sk_overflow, &off))
		return false;
	/* from here to ring_block_ready nothing can fail */
	if (ring_contiguous(off + SK_BLOCK_HEADER_SIZE) >= size)
		event_pack(ring_at(off + SK_BLOCK_HEADER_SIZE), event, event_id, SK_BLOCK_HEADER_SIZE);
	else
		event_pack_ring(off + SK_BLOCK_HEADER_SIZE, event, event_id, SK_BLOCK_HEADER_SIZE);
	metrics_count_queued(1);
	ring_block_ready(off);
	return true;
}
