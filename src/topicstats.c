/*
 * topicstats.c
 *		Per-topic counters and latency histograms, and the SQL function
 *		behind the kafka_topic_stats view.
 *
 * streamkafka.max_topics topics are tracked, in the order the worker first
 * meets them; events of any further topic are counted in one more row named
 * "_other", so the number of rows (and of Prometheus series) stays bounded.
 * Only the worker counts per topic: queued (an event counts when the worker
 * first takes it from the queue), sent, delivered, bytes, failed, dropped
 * (drop_oldest; drop_newest drops never reach the queue and are counted in
 * kafka_stats only), dead_lettered, and the latency from the moment the
 * event's transaction committed (or the non-transactional call) to its
 * acknowledgement.
 *
 * Counters are atomics, written by the worker alone with plain stores.  The
 * topic names and the text fields are guarded by an LWLock: the worker takes
 * it exclusively to add a topic or record an error (rare), readers share it
 * to copy.  The worker keeps a local map from
 * name to slot, rebuilt when kafka_stats_reset() empties the table (it bumps
 * generation).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "counter.h"
#include "event.h"
#include "locks.h"
#include "ring.h"
#include "settings.h"
#include "sqlvalue.h"
#include "streamkafka.h"
#include "topicstats.h"

#define TOPIC_ERROR_LEN		128

const double sk_latency_bounds_ms[SK_LATENCY_BUCKETS - 1] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000
};

typedef struct SkTopicSlot
{
	char		name[SK_TOPIC_MAX_LEN + 1];	/* "" while free */
	pg_atomic_uint64 queued;
	pg_atomic_uint64 sent;
	pg_atomic_uint64 delivered;
	pg_atomic_uint64 failed;
	pg_atomic_uint64 dropped;
	pg_atomic_uint64 dead_lettered;
	pg_atomic_uint64 bytes;
	pg_atomic_uint64 last_delivered_at;
	TimestampTz last_error_at;	/* under the lock */
	char		last_error[TOPIC_ERROR_LEN];	/* under the lock */
	SkLatency	latency;
} SkTopicSlot;

typedef struct SkTopicStats
{
	LWLock	   *lock;
	pg_atomic_uint32 generation;	/* bumped by every reset */
	int			nslots;			/* max_topics + 1: the last is "_other" */
	int			used;			/* slots named, not counting "_other" */
	SkLatency	total;
	SkTopicSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SkTopicStats;

typedef struct LocalSlot
{
	char		name[SK_TOPIC_MAX_LEN + 1];
	int			slot;
} LocalSlot;

static SkTopicStats *sk_topics = NULL;
static HTAB *local_slots = NULL;
static uint32 local_generation = 0;

Size
topicstats_shmem_size(void)
{
	return add_size(offsetof(SkTopicStats, slots),
					mul_size(sk_max_topics + 1, sizeof(SkTopicSlot)));
}

static void
latency_init(SkLatency *latency)
{
	for (int i = 0; i < SK_LATENCY_BUCKETS; i++)
		pg_atomic_init_u64(&latency->buckets[i], 0);
	pg_atomic_init_u64(&latency->sum_us, 0);
	pg_atomic_init_u64(&latency->max_us, 0);
}

static void
slot_init(SkTopicSlot *slot, const char *name)
{
	strlcpy(slot->name, name, sizeof(slot->name));
	pg_atomic_init_u64(&slot->queued, 0);
	pg_atomic_init_u64(&slot->sent, 0);
	pg_atomic_init_u64(&slot->delivered, 0);
	pg_atomic_init_u64(&slot->failed, 0);
	pg_atomic_init_u64(&slot->dropped, 0);
	pg_atomic_init_u64(&slot->dead_lettered, 0);
	pg_atomic_init_u64(&slot->bytes, 0);
	pg_atomic_init_u64(&slot->last_delivered_at, 0);
	slot->last_error_at = 0;
	slot->last_error[0] = '\0';
	latency_init(&slot->latency);
}

/* empty the table; the lock is held exclusively (or nobody else runs) */
static void
topicstats_clear(void)
{
	for (int i = 0; i < sk_topics->nslots; i++)
		slot_init(&sk_topics->slots[i], i == sk_topics->nslots - 1 ? SK_OVERFLOW_TOPIC : "");
	sk_topics->used = 0;
	latency_init(&sk_topics->total);
}

/*
 * topicstats_shmem_init - attach to the table at place, memory that outlives
 * a crash restart (like the queue and kafka_stats' counters).  First time:
 * empty it.  After a crash restart (recovered) the counters go on.  Called in
 * the postmaster.
 */
void
topicstats_shmem_init(void *place, bool recovered)
{
	sk_topics = (SkTopicStats *) place;
	if (!recovered)
	{
		sk_topics->nslots = sk_max_topics + 1;
		pg_atomic_init_u32(&sk_topics->generation, 1);
		topicstats_clear();
	}
	/* the lock lives in the main shared memory, made anew at a crash restart */
	sk_topics->lock = sk_lwlock(SK_LWLOCK_TOPICS);
}

/*
 * topicstats_reset_seen - the worker: was the table emptied since the last
 * call?  Then slots it remembers elsewhere must be looked up again.
 */
bool
topicstats_reset_seen(void)
{
	static uint32 seen = 0;
	uint32		generation = pg_atomic_read_u32(&sk_topics->generation);

	if (generation == seen)
		return false;
	seen = generation;
	return true;
}

/*
 * topicstats_slot - the worker: the slot counting a topic, added if new
 */
int
topicstats_slot(const char *topic)
{
	uint32		generation = pg_atomic_read_u32(&sk_topics->generation);
	LocalSlot  *entry;
	bool		found;

	if (local_slots == NULL || generation != local_generation)
	{
		HASHCTL		ctl = {0};

		if (local_slots != NULL)
			hash_destroy(local_slots);
		ctl.keysize = SK_TOPIC_MAX_LEN + 1;
		ctl.entrysize = sizeof(LocalSlot);
		local_slots = hash_create("streamkafka topic slots", 64, &ctl, HASH_ELEM | HASH_STRINGS);
		local_generation = generation;
	}
	entry = hash_search(local_slots, topic, HASH_ENTER, &found);
	if (found)
		return entry->slot;

	LWLockAcquire(sk_topics->lock, LW_EXCLUSIVE);
	entry->slot = sk_topics->nslots - 1;
	for (int i = 0; i < sk_topics->used; i++)
		if (strcmp(sk_topics->slots[i].name, topic) == 0)
			entry->slot = i;
	if (entry->slot == sk_topics->nslots - 1 && sk_topics->used < sk_topics->nslots - 1)
	{
		entry->slot = sk_topics->used++;
		strlcpy(sk_topics->slots[entry->slot].name, topic, SK_TOPIC_MAX_LEN + 1);
	}
	LWLockRelease(sk_topics->lock);
	return entry->slot;
}

/*
 * topicstats_event_slot - the worker: the slot of the event at event_off in
 * the queue (its topic read from there)
 */
int
topicstats_event_slot(uint64 event_off)
{
	char		topic[SK_TOPIC_MAX_LEN + 1];

	event_ring_topic(event_off, topic);
	return topicstats_slot(topic);
}

static void
latency_add(SkLatency *latency, uint64 us)
{
	double		ms = us / 1000.0;
	int			bucket = 0;
	uint64		max = pg_atomic_read_u64(&latency->max_us);

	while (bucket < SK_LATENCY_BUCKETS - 1 && ms > sk_latency_bounds_ms[bucket])
		bucket++;
	worker_counter_add(&latency->buckets[bucket], 1);
	worker_counter_add(&latency->sum_us, us);
	if (us > max)
		pg_atomic_write_u64(&latency->max_us, us);	/* one writer: the worker */
}

void
topicstats_count_taken(int slot)
{
	worker_counter_add(&sk_topics->slots[slot].queued, 1);
}

void
topicstats_count_sent(int slot)
{
	worker_counter_add(&sk_topics->slots[slot].sent, 1);
}

/* plain C: called from delivery reports */
void
topicstats_count_delivered(int slot, uint64 bytes, TimestampTz enqueued_at, TimestampTz now)
{
	SkTopicSlot *s = &sk_topics->slots[slot];
	uint64		us = now > enqueued_at ? (uint64) (now - enqueued_at) : 0;

	worker_counter_add(&s->delivered, 1);
	worker_counter_add(&s->bytes, bytes);
	pg_atomic_write_u64(&s->last_delivered_at, (uint64) now);
	latency_add(&s->latency, us);
	latency_add(&sk_topics->total, us);
}

/* called from delivery reports: LWLockConditionalAcquire never waits or fails */
void
topicstats_count_failed(int slot, const char *error)
{
	SkTopicSlot *s = &sk_topics->slots[slot];

	worker_counter_add(&s->failed, 1);
	if (!LWLockConditionalAcquire(sk_topics->lock, LW_EXCLUSIVE))
		return;
	strlcpy(s->last_error, error, TOPIC_ERROR_LEN);
	s->last_error_at = GetCurrentTimestamp();
	LWLockRelease(sk_topics->lock);
}

void
topicstats_count_dropped(int slot)
{
	worker_counter_add(&sk_topics->slots[slot].dropped, 1);
}

void
topicstats_count_dead_lettered(int slot)
{
	worker_counter_add(&sk_topics->slots[slot].dead_lettered, 1);
}

static void
latency_copy(SkLatency *latency, SkLatencyCopy *copy)
{
	copy->count = 0;
	for (int i = 0; i < SK_LATENCY_BUCKETS; i++)
	{
		copy->buckets[i] = pg_atomic_read_u64(&latency->buckets[i]);
		copy->count += copy->buckets[i];
	}
	copy->sum_us = pg_atomic_read_u64(&latency->sum_us);
	copy->max_us = pg_atomic_read_u64(&latency->max_us);
}

void
topicstats_total_latency(SkLatencyCopy *copy)
{
	latency_copy(&sk_topics->total, copy);
}

/*
 * topicstats_percentile_ms - the q-quantile (0 < q <= 1) of a histogram in
 * milliseconds, interpolated linearly inside its bucket and never above the
 * largest value seen; -1 when empty
 */
double
topicstats_percentile_ms(const SkLatencyCopy *copy, double q)
{
	double		rank = q * copy->count;
	double		max_ms = copy->max_us / 1000.0;
	uint64		below = 0;

	if (copy->count == 0)
		return -1;
	for (int i = 0; i < SK_LATENCY_BUCKETS; i++)
	{
		double		lower = i == 0 ? 0 : sk_latency_bounds_ms[i - 1];
		double		upper = i < SK_LATENCY_BUCKETS - 1 ? sk_latency_bounds_ms[i] : max_ms;

		if (copy->buckets[i] > 0 && below + copy->buckets[i] >= rank)
			return Min(lower + (upper - lower) * (rank - below) / copy->buckets[i], max_ms);
		below += copy->buckets[i];
	}
	return max_ms;
}

/*
 * topicstats_reset - kafka_stats_reset(): forget every topic and histogram
 */
void
topicstats_reset(void)
{
	LWLockAcquire(sk_topics->lock, LW_EXCLUSIVE);
	topicstats_clear();
	pg_atomic_fetch_add_u32(&sk_topics->generation, 1);
	LWLockRelease(sk_topics->lock);
}

/*
 * topicstats_rows - a palloc'd copy of the tracked topics and the overflow
 * row (if it counted anything); returns how many
 */
int
topicstats_rows(SkTopicRow **rows)
{
	SkTopicRow *out = palloc0(sizeof(SkTopicRow) * sk_topics->nslots);
	int			n = 0;

	LWLockAcquire(sk_topics->lock, LW_SHARED);
	for (int i = 0; i < sk_topics->nslots; i++)
	{
		SkTopicSlot *s = &sk_topics->slots[i];
		SkTopicRow *r = &out[n];

		if (i >= sk_topics->used && i != sk_topics->nslots - 1)
			continue;
		strlcpy(r->topic, s->name, sizeof(r->topic));
		r->queued = pg_atomic_read_u64(&s->queued);
		r->sent = pg_atomic_read_u64(&s->sent);
		r->delivered = pg_atomic_read_u64(&s->delivered);
		r->failed = pg_atomic_read_u64(&s->failed);
		r->dropped = pg_atomic_read_u64(&s->dropped);
		r->dead_lettered = pg_atomic_read_u64(&s->dead_lettered);
		r->bytes = pg_atomic_read_u64(&s->bytes);
		r->last_delivered_at = (TimestampTz) pg_atomic_read_u64(&s->last_delivered_at);
		r->last_error_at = s->last_error_at;
		strlcpy(r->last_error, s->last_error, sizeof(r->last_error));
		latency_copy(&s->latency, &r->latency);
		if (i == sk_topics->nslots - 1 && r->queued == 0 && r->dropped == 0)
			continue;			/* an unused overflow row is not shown */
		n++;
	}
	LWLockRelease(sk_topics->lock);
	*rows = out;
	return n;
}

PG_FUNCTION_INFO_V1(streamkafka_topic_stats);

/*
 * streamkafka_topic_stats - the rows of kafka_topic_stats
 */
Datum
streamkafka_topic_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SkTopicRow *rows;
	int			n;

	streamkafka_require_preload();
	SK_InitMaterializedSRF(fcinfo);
	n = topicstats_rows(&rows);
	for (int i = 0; i < n; i++)
	{
		SkTopicRow *r = &rows[i];
		Datum		values[15];
		bool		nulls[15] = {0};

		values[0] = CStringGetTextDatum(r->topic);
		values[1] = Int64GetDatum(r->queued);
		values[2] = Int64GetDatum(r->sent);
		values[3] = Int64GetDatum(r->delivered);
		values[4] = Int64GetDatum(r->failed);
		values[5] = Int64GetDatum(r->dropped);
		values[6] = Int64GetDatum(r->dead_lettered);
		values[7] = Int64GetDatum(r->bytes);
		values[8] = timestamp_or_null(r->last_delivered_at, &nulls[8]);
		values[9] = CStringGetTextDatum(r->last_error);
		nulls[9] = r->last_error[0] == '\0';
		values[10] = timestamp_or_null(r->last_error_at, &nulls[10]);
		values[11] = ms_or_null(topicstats_percentile_ms(&r->latency, 0.50), &nulls[11]);
		values[12] = ms_or_null(topicstats_percentile_ms(&r->latency, 0.95), &nulls[12]);
		values[13] = ms_or_null(topicstats_percentile_ms(&r->latency, 0.99), &nulls[13]);
		values[14] = ms_or_null(r->latency.count ? r->latency.max_us / 1000.0 : -1, &nulls[14]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
