/*
 * ring.h
 *		The shared-memory event queue: a bounded multi-producer,
 *		single-consumer ring of variable-length blocks.
 */
#ifndef STREAMKAFKA_RING_H
#define STREAMKAFKA_RING_H

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* block states; the state word is the first word of every block */
#define SK_BLOCK_WRITING	1	/* reserved; being filled or awaiting commit */
#define SK_BLOCK_READY		2	/* committed: the worker may send it */
#define SK_BLOCK_ABANDONED	3	/* rolled back: the worker skips it */
#define SK_BLOCK_IN_DOUBT	4	/* WRITING at a crash, with an xid: the worker
								 * queues it if the xid committed */

/*
 * SkBlockHeader - what starts every block in the ring.  A block is one
 * transaction's events, or one non-transactional event.  Every field sits in
 * an 8-byte aligned word, so no field is ever split by the ring's wrap point
 * (the block as a whole may be).  Read and write fields with ring_field().
 */
typedef struct SkBlockHeader
{
	pg_atomic_uint32 state;
	uint32		nevents;
	uint64		length;			/* bytes, header included, multiple of 8 */
	int64		enqueued_at;	/* TimestampTz when it became READY */
	Oid			database;		/* where its events were published, or 0 */
	Oid			role;			/* the current_user that queued them, or 0 */
	uint64		owner;			/* a transaction's block: ring_owner_word() of
								 * the committing backend; else 0 */
} SkBlockHeader;

#define SK_BLOCK_HEADER_SIZE	((uint64) sizeof(SkBlockHeader))

/* the owner of a block read back from the WAL (durable mode): it is in the
 * WAL until Kafka has it, so a clean stop does not spill it */
#define SK_BLOCK_OWNER_WAL		PG_UINT64_MAX

/*
 * The queue's share per database: bytes of the blocks each database has
 * reserved and the worker has not released yet, so that no database can
 * take more than streamkafka.database_queue_share of the queue.  Slots are
 * claimed on a database's first reservation and never given back; the last
 * slot holds every database that finds no free slot (and blocks of unknown
 * origin).  Under the ring's lock.
 */
#define SK_RING_DATABASES	64

typedef struct SkDatabaseShare
{
	Oid			database;		/* InvalidOid while free */
	uint64		bytes;
} SkDatabaseShare;

/* what ring_reserve says */
typedef enum SkReserveResult
{
	SK_RESERVED,
	SK_QUEUE_FULL,				/* no room in the queue */
	SK_SHARE_FULL				/* the database's share is used up */
} SkReserveResult;

typedef struct SkRing
{
	/* set when the ring is made, then only read: a line of its own */
	uint64		magic;			/* SK_RING_MAGIC once initialised */
	uint64		size;			/* bytes of data[], multiple of 8 */
	uint64		instance_id;	/* differs for every creation of shared memory */
	char		pad0[PG_CACHE_LINE_SIZE];
	slock_t		lock;			/* protects head's writes, tail, consumer_latch */
	pg_atomic_uint64 head;		/* next offset to reserve (monotonic); written
								 * under lock, read by the worker without it */
	uint64		tail;			/* oldest offset still owned (monotonic) */
	uint64		high_water;		/* most bytes ever owned (since a reset) */
	Latch	   *consumer_latch; /* the worker's latch, NULL if none */
	uint32		producer_generation;	/* the worker's current producer (worker only) */
	ConditionVariable space_cv; /* broadcast when space is released */
	SkDatabaseShare shares[SK_RING_DATABASES];	/* under lock */
	/* written by backends only, apart from the lock's line */
	char		pad1[PG_CACHE_LINE_SIZE];
	pg_atomic_uint64 next_event_id;
	pg_atomic_uint64 evict_request; /* bytes drop_oldest sessions need */
	/* added to at commit, taken from by the worker for every event */
	char		pad_unfinished[PG_CACHE_LINE_SIZE];
	pg_atomic_uint64 unfinished;	/* events in READY blocks not yet
									 * finished: added as a block becomes
									 * READY, taken as each event finishes */
	/* written by the worker, read by every backend at commit */
	char		pad2[PG_CACHE_LINE_SIZE];
	pg_atomic_uint32 consumer_sleeping; /* 1 while the worker may sleep */
	pg_atomic_uint32 held_by_pid;	/* a commit waiting for synchronous
									 * replication holds the queue: its pid */
	/*
	 * Durable mode (decoder.c, worker only): how far the WAL's events are in
	 * the queue, so that reading the WAL again after a crash restart (which
	 * keeps the queue) does not queue them twice.  A position is a
	 * transaction's commit end LSN, or a non-transactional event's LSN.
	 */
	uint64		wal_queued_upto;	/* every event up to here is queued */
	uint64		wal_partial_at; /* a transaction partly queued, or 0 */
	uint32		wal_partial_count;	/* how many of its events are */
	char		pad3[PG_CACHE_LINE_SIZE];
	char		data[FLEXIBLE_ARRAY_MEMBER];
} SkRing;

extern SkRing *sk_ring;

#define SK_RING_MAGIC	UINT64CONST(0x534b52494e470001)	/* "SKRING" v1 */

extern Size ring_shmem_size(void);
extern bool ring_shmem_init(void *place);
/* how many events of the block at block_off (of nevents) are unfinished */
typedef uint64 (*RingBlockCounter) (uint64 block_off, uint32 nevents);

extern uint64 ring_recover(RingBlockCounter count_unfinished);

/* pointer to the byte at a monotonic offset */
static inline char *
ring_at(uint64 off)
{
	return sk_ring->data + (off % sk_ring->size);
}

/* pointer to one field of the block header at offset off */
#define ring_field(off, type, field) \
	((type *) ring_at((off) + offsetof(SkBlockHeader, field)))

static inline uint64
ring_capacity(void)
{
	return sk_ring->size;
}

/* the state (SK_BLOCK_*) of the block at offset off */
static inline uint32
ring_block_state(uint64 off)
{
	return pg_atomic_read_u32(ring_field(off, pg_atomic_uint32, state));
}

/* bytes from off to the physical end of the ring */
static inline uint64
ring_contiguous(uint64 off)
{
	return sk_ring->size - (off % sk_ring->size);
}

/*
 * ring_owner_word - the owner field of a transaction's block: its backend's
 * pgprocno (plus 1) and its top-level xid (InvalidTransactionId if none)
 */
static inline uint64
ring_owner_word(int pgprocno, TransactionId xid)
{
	return ((uint64) (pgprocno + 1) << 32) | xid;
}

/* producers (backends) */
extern SkReserveResult ring_reserve(uint64 length, uint32 nevents, Oid database, Oid role,
									uint64 database_limit, uint64 *off);
extern int	ring_database_shares(SkDatabaseShare *shares);
extern void ring_write(uint64 off, const void *src, uint64 len);
extern void ring_block_ready(uint64 off);
extern void ring_block_abandon(uint64 off);
extern uint64 ring_unfinished_events(void);
extern int64 ring_next_event_id(void);
extern void ring_request_eviction(uint64 bytes);
extern void ring_set_consumer_latch(void);
extern void ring_wake_consumer(void);
extern uint64 ring_instance_id(void);
extern int	ring_held_by(void);

/* ring_wait's test: is what the caller waits for done? */
typedef bool (*RingWaitDone) (void *arg);

extern bool ring_wait(RingWaitDone done, void *arg, TimestampTz deadline, long max_nap_ms);

/* the consumer (worker) */
extern void ring_consumer_attach(Latch *latch);
extern void ring_consumer_detach(void);
extern void ring_bounds(uint64 *tail, uint64 *head);
extern void ring_worker_bounds(uint64 *tail, uint64 *head);
extern uint64 ring_high_water(bool reset);
extern void ring_release(uint64 new_tail);
extern void ring_read(uint64 off, void *dst, uint64 len);
extern void ring_consumer_may_sleep(bool sleeping);
extern uint64 ring_take_eviction_request(void);
extern uint32 ring_new_producer_generation(void);
extern void ring_count_finished(uint64 n);
extern void ring_set_held_by(int pid);

#endif							/* STREAMKAFKA_RING_H */
