/*
 * ring.c
 *		The shared-memory event queue.
 *
 * One ring of bytes, addressed by monotonic 64-bit offsets (head and tail
 * never wrap; the physical position is offset % size).  The unit of
 * reservation is a block: a block header followed by packed events.  A block
 * may wrap past the physical end of the ring; every header word is 8-byte
 * aligned, so single fields never do, and bulk data is copied with
 * ring_write()/ring_read(), which split the copy at the wrap point.
 *
 * Locking protocol
 * ----------------
 * - lock (a spinlock) protects head, tail and consumer_latch.  It is held only
 *   for pointer arithmetic and the three header stores of a new block; never
 *   while copying event data.  The worker, which alone moves tail, reads head
 *   without the lock (ring_worker_bounds): head is an atomic, stored after a
 *   write barrier that follows the new block's header stores.
 * - A producer (any backend) reserves a block under the lock: it checks that
 *   length fits in size - (head - tail), writes the block's state (WRITING),
 *   length and event count, and advances head after a write barrier, so the
 *   consumer never sees a head past a block without a valid header.  Just
 *   before taking the lock it reads the place the header will likely go, so
 *   a page fault or cache miss there is not taken while holding the lock.
 * - The producer then fills the block without any lock, and finishes it by
 *   storing READY (after a write barrier) or ABANDONED into its state word.
 *   A transaction reserves at PRE_COMMIT, fills at PRE_COMMIT, and stores the
 *   state at COMMIT or ABORT: one store each, which cannot fail.
 * - The consumer (the worker, alone) walks blocks from tail to head.  It
 *   stops at a WRITING block (blocks are sent in reservation order), skips
 *   ABANDONED ones and sends READY ones; it passes a WRITING block only while
 *   its commit waits for synchronous replication (see sender.c).  It owns
 *   the events' state words (event.c).  When blocks at the tail are finished (all events
 *   delivered, dead-lettered or dropped), it moves tail forward under the lock;
 *   only then can producers reuse the space.
 * - Waking: the consumer sets consumer_sleeping before it sleeps and then
 *   looks for work once more; a producer that made a block READY reads the
 *   flag after a full barrier and sets the latch only if it was set, so the
 *   worker is woken once per sleep, not once per event.  Right after a busy
 *   turn the worker naps briefly without setting the flag (see worker.c).
 * - Waiting for space (overflow = block or drop_oldest) and kafka_flush()
 *   sleep on space_cv, which the worker broadcasts whenever it moves tail.
 * - unfinished counts the events of READY blocks that are not finished, from
 *   the queue's side: a session adds a block's event count just before it
 *   stores READY, the worker takes one as it marks an event finished
 *   (event_ring_finish, through ring_count_finished), before it adds to delivered, dropped or
 *   dead_lettered.  It is never derived from those counters, so kafka_stats
 *   can check them against it (see metrics.c).
 * - drop_oldest: a session that finds no room adds the bytes it needs to
 *   evict_request and wakes the worker, which discards the oldest events not
 *   held by librdkafka (see sender.c).
 */
#include "postgres.h"

#include "access/transam.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "ring.h"
#include "settings.h"

SkRing	   *sk_ring = NULL;

/* data bytes of the ring: the setting, rounded down to a multiple of 8 */
static uint64
ring_data_size(void)
{
	return ((uint64) sk_queue_size_kb * 1024) & ~(uint64) 7;
}

/*
 * ring_shmem_size - shared memory the ring needs
 */
Size
ring_shmem_size(void)
{
	return add_size(offsetof(SkRing, data), (Size) ring_data_size());
}

/* the fields that refer to processes: reset whenever shared memory is made */
static void
ring_reset_process_state(void)
{
	SpinLockInit(&sk_ring->lock);
	sk_ring->consumer_latch = NULL;
	pg_atomic_init_u32(&sk_ring->consumer_sleeping, 0);
	pg_atomic_init_u32(&sk_ring->held_by_pid, 0);
	pg_atomic_init_u64(&sk_ring->evict_request, 0);
	ConditionVariableInit(&sk_ring->space_cv);
}

/*
 * ring_shmem_init - attach to the ring at place, which is memory that
 * outlives a crash restart (see streamkafka.c).  The first time, initialise
 * it and return false; after a crash restart, keep the queued events, reset
 * what referred to the dead processes and return true (the postmaster then
 * calls ring_recover()).  Called in the postmaster with no other process
 * attached.
 */
bool
ring_shmem_init(void *place)
{
	sk_ring = (SkRing *) place;
	if (sk_ring->magic == SK_RING_MAGIC)
	{
		ring_reset_process_state();
		return true;
	}

	/*
	 * Touch every page now, in the postmaster: a backend's first copy into a
	 * page then costs a mapping fault, not a fault that also zeroes the page.
	 */
	memset(sk_ring->data, 0, ring_data_size());

	ring_reset_process_state();
	pg_atomic_init_u64(&sk_ring->head, 0);
	pg_atomic_init_u64(&sk_ring->unfinished, 0);
	sk_ring->tail = 0;
	sk_ring->high_water = 0;
	memset(sk_ring->shares, 0, sizeof(sk_ring->shares));
	sk_ring->size = ring_data_size();
	sk_ring->producer_generation = 0;
	sk_ring->wal_queued_upto = 0;
	sk_ring->wal_partial_at = 0;
	sk_ring->wal_partial_count = 0;
	sk_ring->instance_id = ((uint64) GetCurrentTimestamp() << 16) ^ (uint64) MyProcPid;

	/*
	 * Event ids start at 16 x microseconds since 2000 at every server start:
	 * they keep increasing across restarts unless more than 16 million events
	 * a second were published for the whole previous uptime.
	 */
	pg_atomic_init_u64(&sk_ring->next_event_id,
					   (uint64) GetCurrentTimestamp() * 16);
	sk_ring->magic = SK_RING_MAGIC;
	return false;
}

/*
 * ring_recover - after a crash restart, in the postmaster: blocks still
 * WRITING belonged to transactions that were cut off while committing.  One
 * with an xid may have written its commit record (e.g. it was waiting for
 * synchronous replication): it becomes IN_DOUBT, and the worker asks the
 * commit log once recovery is over (sender.c).  Others are abandoned.
 * Counts again the events in READY blocks that are not finished, the queue's
 * content (count_unfinished says how many a block has), and returns that
 * number.
 */
uint64
ring_recover(RingBlockCounter count_unfinished)
{
	uint64		unfinished = 0;

	for (uint64 off = sk_ring->tail; off < pg_atomic_read_u64(&sk_ring->head);
		 off += *ring_field(off, uint64, length))
	{
		uint32		state = ring_block_state(off);
		TransactionId owner_xid = (TransactionId) *ring_field(off, uint64, owner);

		if (state == SK_BLOCK_WRITING)
			pg_atomic_write_u32(ring_field(off, pg_atomic_uint32, state),
								TransactionIdIsValid(owner_xid) ?
								SK_BLOCK_IN_DOUBT : SK_BLOCK_ABANDONED);
		if (state != SK_BLOCK_READY)
			continue;
		unfinished += count_unfinished(off, *ring_field(off, uint32, nevents));
	}
	pg_atomic_write_u64(&sk_ring->unfinished, unfinished);
	return unfinished;
}

/*
 * ring_next_event_id - a new cluster-wide increasing event id
 */
int64
ring_next_event_id(void)
{
	return (int64) pg_atomic_fetch_add_u64(&sk_ring->next_event_id, 1);
}

/*
 * share_slot - the slot of database's share (under the lock, or in the
 * worker for a database it met in a block, whose slot was claimed before)
 */
static int
share_slot(Oid database, bool claim)
{
	static Oid	last_database = InvalidOid;
	static int	last_slot = SK_RING_DATABASES - 1;

	if (database == InvalidOid)
		return SK_RING_DATABASES - 1;
	if (database == last_database)
		return last_slot;
	for (int i = 0; i < SK_RING_DATABASES - 1; i++)
	{
		if (sk_ring->shares[i].database == database ||
			(claim && sk_ring->shares[i].database == InvalidOid))
		{
			sk_ring->shares[i].database = database;
			last_database = database;
			last_slot = i;
			return i;
		}
	}
	return SK_RING_DATABASES - 1;
}

/*
 * ring_reserve - reserve a block of length bytes (header included, multiple
 * of 8) holding nevents events published in database by role.  Reserves
 * nothing when the queue has not that much free space now (SK_QUEUE_FULL) or
 * the database's blocks would then take more than database_limit bytes
 * (SK_SHARE_FULL).
 */
SkReserveResult
ring_reserve(uint64 length, uint32 nevents, Oid database, Oid role, uint64 database_limit,
			 uint64 *off)
{
	uint64		head;
	SkBlockHeader *header;
	SkDatabaseShare *share;

	Assert(length % 8 == 0 && length >= SK_BLOCK_HEADER_SIZE);

	/*
	 * Read where the header will most likely go before taking the lock: a
	 * page this process has not mapped yet, or a line another core holds,
	 * then costs its fault or miss outside the lock.  (8 sessions publishing
	 * on 2 cores spent 5% of the machine spinning on this lock.)  A read,
	 * not an atomic add of 0: that was a locked instruction on a line other
	 * sessions were writing, and measured 40% slower with 8 sessions.
	 */
	(void) pg_atomic_read_u32((pg_atomic_uint32 *) ring_at(pg_atomic_read_u64(&sk_ring->head)));

	SpinLockAcquire(&sk_ring->lock);
	head = pg_atomic_read_u64(&sk_ring->head);
	share = &sk_ring->shares[share_slot(database, true)];
	if (share->bytes + length > database_limit)
	{
		SpinLockRelease(&sk_ring->lock);
		return SK_SHARE_FULL;
	}
	if (length > sk_ring->size - (head - sk_ring->tail))
	{
		SpinLockRelease(&sk_ring->lock);
		return SK_QUEUE_FULL;
	}
	share->bytes += length;
	if (ring_contiguous(head) >= SK_BLOCK_HEADER_SIZE)
	{
		/* the common case: one position, three stores */
		header = (SkBlockHeader *) ring_at(head);
		pg_atomic_write_u32(&header->state, SK_BLOCK_WRITING);
		header->nevents = nevents;
		header->length = length;
		header->database = database;
		header->role = role;
		header->owner = 0;
	}
	else
	{
		pg_atomic_write_u32(ring_field(head, pg_atomic_uint32, state), SK_BLOCK_WRITING);
		*ring_field(head, uint32, nevents) = nevents;
		*ring_field(head, uint64, length) = length;
		*ring_field(head, Oid, database) = database;
		*ring_field(head, Oid, role) = role;
		*ring_field(head, uint64, owner) = 0;
	}
	pg_write_barrier();			/* the header before head, for the worker */
	pg_atomic_write_u64(&sk_ring->head, head + length);
	if (head + length - sk_ring->tail > sk_ring->high_water)
		sk_ring->high_water = head + length - sk_ring->tail;
	SpinLockRelease(&sk_ring->lock);

	*off = head;
	return SK_RESERVED;
}

/*
 * ring_write - copy len bytes to offset off, splitting at the wrap point
 */
void
ring_write(uint64 off, const void *src, uint64 len)
{
	uint64		first = Min(len, ring_contiguous(off));

	memcpy(ring_at(off), src, first);
	if (first < len)
		memcpy(sk_ring->data, (const char *) src + first, len - first);
}

/*
 * ring_read - copy len bytes from offset off, splitting at the wrap point
 */
void
ring_read(uint64 off, void *dst, uint64 len)
{
	uint64		first = Min(len, ring_contiguous(off));

	memcpy(dst, ring_at(off), first);
	if (first < len)
		memcpy((char *) dst + first, sk_ring->data, len - first);
}

/*
 * ring_set_consumer_latch - wake the worker (if it runs)
 */
void
ring_set_consumer_latch(void)
{
	Latch	   *latch;

	SpinLockAcquire(&sk_ring->lock);
	latch = sk_ring->consumer_latch;
	SpinLockRelease(&sk_ring->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/* ring_wake_consumer - wake the worker if it said it may be sleeping */
void
ring_wake_consumer(void)
{
	pg_memory_barrier();
	if (pg_atomic_read_u32(&sk_ring->consumer_sleeping) == 0 ||
		pg_atomic_exchange_u32(&sk_ring->consumer_sleeping, 0) == 0)
		return;
	ring_set_consumer_latch();
}

/*
 * ring_request_eviction - ask the worker to discard the oldest events until
 * bytes more are free (overflow = drop_oldest)
 */
void
ring_request_eviction(uint64 bytes)
{
	uint64		current = pg_atomic_read_u64(&sk_ring->evict_request);

	while (current < bytes &&
		   !pg_atomic_compare_exchange_u64(&sk_ring->evict_request, &current, bytes))
		;
	ring_set_consumer_latch();
}

/*
 * ring_take_eviction_request - the worker takes the bytes asked for (0: none)
 */
uint64
ring_take_eviction_request(void)
{
	return pg_atomic_exchange_u64(&sk_ring->evict_request, 0);
}

/*
 * ring_new_producer_generation - the worker starts a new producer; events
 * marked with an older generation are no longer in flight
 */
uint32
ring_new_producer_generation(void)
{
	if (++sk_ring->producer_generation == 0)
		sk_ring->producer_generation = 1;
	return sk_ring->producer_generation;
}

/*
 * ring_block_ready - a filled block may be sent.  Cannot fail.
 */
void
ring_block_ready(uint64 off)
{
	*ring_field(off, int64, enqueued_at) = GetCurrentTimestamp();
	/* counted before READY (a full barrier): the worker may finish them next */
	pg_atomic_fetch_add_u64(&sk_ring->unfinished, *ring_field(off, uint32, nevents));
	pg_atomic_write_u32(ring_field(off, pg_atomic_uint32, state), SK_BLOCK_READY);
	ring_wake_consumer();
}

/*
 * ring_unfinished_events - the events in READY blocks not yet finished
 */
uint64
ring_unfinished_events(void)
{
	return pg_atomic_read_u64(&sk_ring->unfinished);
}

/*
 * ring_wait - call done(arg) until it says true or deadline passes, sleeping
 * on space_cv in between (at most max_nap_ms at a time, if positive); false
 * if the deadline passed first.  Ctrl-C ends the wait (the sleep checks for
 * interrupts).
 */
bool
ring_wait(RingWaitDone done, void *arg, TimestampTz deadline, long max_nap_ms)
{
	bool		finished = false;

	ConditionVariablePrepareToSleep(&sk_ring->space_cv);
	for (;;)
	{
		long		remaining;

		if (done(arg))
		{
			finished = true;
			break;
		}
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			break;
		if (max_nap_ms > 0)
			remaining = Min(remaining, max_nap_ms);
		(void) ConditionVariableTimedSleep(&sk_ring->space_cv, remaining, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return finished;
}

/*
 * ring_instance_id - what tells this creation of shared memory from others
 */
uint64
ring_instance_id(void)
{
	return sk_ring->instance_id;
}

/*
 * ring_held_by - the pid of the commit waiting for synchronous replication
 * that holds the queue, or 0
 */
int
ring_held_by(void)
{
	return (int) pg_atomic_read_u32(&sk_ring->held_by_pid);
}

/*
 * ring_set_held_by - the worker: the queue is held by the commit of pid (0:
 * by none)
 */
void
ring_set_held_by(int pid)
{
	pg_atomic_write_u32(&sk_ring->held_by_pid, (uint32) pid);
}

/*
 * ring_count_finished - the worker finished n events of READY blocks: the
 * queue counts them out of its unfinished events
 */
void
ring_count_finished(uint64 n)
{
	pg_atomic_fetch_sub_u64(&sk_ring->unfinished, n);
}

/*
 * ring_block_abandon - a reserved block will never be sent (its transaction
 * rolled back).  Cannot fail.
 */
void
ring_block_abandon(uint64 off)
{
	pg_write_barrier();
	pg_atomic_write_u32(ring_field(off, pg_atomic_uint32, state), SK_BLOCK_ABANDONED);
	ring_wake_consumer();
}

/*
 * ring_consumer_attach - the worker registers its latch
 */
void
ring_consumer_attach(Latch *latch)
{
	SpinLockAcquire(&sk_ring->lock);
	sk_ring->consumer_latch = latch;
	SpinLockRelease(&sk_ring->lock);
}

/*
 * ring_consumer_detach - the worker is going away
 */
void
ring_consumer_detach(void)
{
	ring_consumer_attach(NULL);
	pg_atomic_write_u32(&sk_ring->consumer_sleeping, 0);
}

/*
 * ring_bounds - the owned range [tail, head) as the worker sees it now
 */
void
ring_bounds(uint64 *tail, uint64 *head)
{
	SpinLockAcquire(&sk_ring->lock);
	*tail = sk_ring->tail;
	*head = pg_atomic_read_u64(&sk_ring->head);
	SpinLockRelease(&sk_ring->lock);
}

/*
 * ring_high_water - the most bytes the queue held; with reset, start again
 * from what it holds now
 */
uint64
ring_high_water(bool reset)
{
	uint64		high;

	SpinLockAcquire(&sk_ring->lock);
	if (reset)
		sk_ring->high_water = pg_atomic_read_u64(&sk_ring->head) - sk_ring->tail;
	high = sk_ring->high_water;
	SpinLockRelease(&sk_ring->lock);
	return high;
}

/*
 * ring_worker_bounds - ring_bounds for the worker, without the lock: it
 * alone moves tail, and head is read atomically; every block header before
 * head is complete (reserve stores it before head, after a write barrier)
 */
void
ring_worker_bounds(uint64 *tail, uint64 *head)
{
	*tail = sk_ring->tail;
	*head = pg_atomic_read_u64(&sk_ring->head);
	pg_read_barrier();
}

/*
 * ring_release - give the space before new_tail back to producers
 */
void
ring_release(uint64 new_tail)
{
	uint64		released[SK_RING_DATABASES] = {0};
	int			first = SK_RING_DATABASES;
	int			last = -1;

	/* the blocks given back, by database: only the worker moves tail */
	for (uint64 off = sk_ring->tail; off < new_tail; off += *ring_field(off, uint64, length))
	{
		int			slot = share_slot(*ring_field(off, Oid, database), false);

		released[slot] += *ring_field(off, uint64, length);
		first = Min(first, slot);
		last = Max(last, slot);
	}
	SpinLockAcquire(&sk_ring->lock);
	Assert(new_tail >= sk_ring->tail && new_tail <= pg_atomic_read_u64(&sk_ring->head));
	sk_ring->tail = new_tail;
	for (int i = first; i <= last; i++)
		sk_ring->shares[i].bytes -= Min(released[i], sk_ring->shares[i].bytes);
	SpinLockRelease(&sk_ring->lock);
	ConditionVariableBroadcast(&sk_ring->space_cv);
}

/*
 * ring_database_shares - copy the databases' shares into shares (room for
 * SK_RING_DATABASES); returns how many are in use
 */
int
ring_database_shares(SkDatabaseShare *shares)
{
	int			n = 0;

	SpinLockAcquire(&sk_ring->lock);
	for (int i = 0; i < SK_RING_DATABASES; i++)
		if (sk_ring->shares[i].bytes > 0 || sk_ring->shares[i].database != InvalidOid)
			shares[n++] = sk_ring->shares[i];
	SpinLockRelease(&sk_ring->lock);
	return n;
}

/*
 * ring_consumer_may_sleep - the worker announces (true) that it is about to
 * sleep, or (false) that it is awake.  After announcing true it must look for
 * work once more before it sleeps.
 */
void
ring_consumer_may_sleep(bool sleeping)
{
	pg_atomic_write_u32(&sk_ring->consumer_sleeping, sleeping ? 1 : 0);
	pg_memory_barrier();
}
