/*
 * enqueue.c
 *		Moves events into the shared-memory queue: a non-transactional event at
 *		once, a transaction's events as one block at commit (see pending.c),
 *		and says what happens when the queue has no room.
 *
 * When the queue is full the statement (or the COMMIT) fails with SQLSTATE
 * 53000 and nothing is queued: the caller's data is never half-published.
 */
#include "postgres.h"

#include "ring.h"
#include "enqueue.h"
#include "metrics.h"

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
				 errdetail("The event needs %llu bytes, but streamkafka.queue_size holds %llu bytes.",
						   (unsigned long long) event_size,
						   (unsigned long long) ring_capacity()),
				 errhint("Raise streamkafka.queue_size (needs a restart), or publish a smaller event.")));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("transaction's Kafka events too large for the streamkafka queue"),
			 errdetail("With this event the transaction's events need %llu bytes, "
					   "but streamkafka.queue_size holds %llu bytes; all of them must fit at commit.",
					   (unsigned long long) block_length,
					   (unsigned long long) ring_capacity()),
			 errhint("Raise streamkafka.queue_size (needs a restart), publish fewer events "
					 "per transaction, or use transactional => false.")));
}

/*
 * enqueue_reserve - reserve a block or fail with SQLSTATE 53000
 */
uint64
enqueue_reserve(uint64 block_length, uint32 nevents, bool at_commit)
{
	uint64		off;

	if (ring_reserve(block_length, nevents, &off))
		return off;

	metrics_count_rejected(nevents);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("streamkafka queue is full"),
			 at_commit ?
			 errdetail("The transaction's %u Kafka event(s) need %llu bytes; "
					   "the transaction is rolled back and none of them is published.",
					   nevents, (unsigned long long) block_length) :
			 errdetail("The event needs %llu bytes; it was not published.",
					   (unsigned long long) block_length),
			 errhint("Events wait in the queue until Kafka acknowledges them: check "
					 "SELECT kafka_health(), or raise streamkafka.queue_size.")));
	pg_unreachable();
}

/*
 * enqueue_now - put one event in the queue, ready to send
 */
void
enqueue_now(const SkEvent *event, uint64 size, int64 event_id)
{
	uint64		block_length = SK_BLOCK_HEADER_SIZE + size;
	uint64		off;

	enqueue_check_fits(block_length, size);
	off = enqueue_reserve(block_length, 1, false);
	/* from here to ring_block_ready nothing can fail */
	event_pack_ring(off + SK_BLOCK_HEADER_SIZE, event, event_id, SK_BLOCK_HEADER_SIZE);
	metrics_count_queued(1);
	ring_block_ready(off);
}
