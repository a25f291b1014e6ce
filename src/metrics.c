/*
 * metrics.c
 *		Delivery counters and the worker's status in shared memory, and the
 *		SQL functions behind the kafka_stats view and kafka_health().
 *
 * Counters are atomics: backends add to queued, rejected and dropped
 * (drop_newest) with atomic adds; the worker to dropped (drop_oldest) the
 * same way, and to the counters only it writes (sent, delivered, failed:
 * refused by Kafka, dead_lettered, retried) with plain stores.
 * The text and timestamp fields sit under one spinlock, held only to copy
 * them.  Readers take no lock for the counters.
 *
 * The accounting identity, queued = delivered + dropped + dead_lettered +
 * queue_events, compares two independent counts: queue_events is not
 * derived from these counters but counted by the queue (ring.c: added when a
 * block becomes READY, taken when an event is marked finished).  A refused
 * event is in the queue until its dead letter is written.  Every event
 * reaches queued before the queue counts it, and leaves the queue's count
 * before it reaches delivered, dropped or dead_lettered; readers read the
 * finished counts, then queue_events, then queued.  So the difference read
 * is never negative, and it is the events moving between two counters at
 * that instant: zero whenever nothing moves (the worker idle).  A difference
 * that stays is a counting defect, reported by kafka_health()'s accounting
 * check and in the log (metrics_accounting_gap).
 *
 * kafka_test_freeze_counter() (tests only, superuser) stops one counter
 * from counting, to show that the identity's checks can fail.
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "brokers.h"
#include "compat.h"
#include "metrics.h"
#include "ring.h"
#include "settings.h"
#include "sqlvalue.h"
#include "streamkafka.h"
#include "topicstats.h"

#define SK_ERROR_LEN		256
#define SK_BOOTSTRAP_LEN	1024

/* kafka_test_freeze_counter(): the counters it can stop, as bits of frozen */
#define SK_FREEZE_QUEUED		0x1
#define SK_FREEZE_DELIVERED		0x2
#define SK_FREEZE_DROPPED		0x4
#define SK_FREEZE_DEAD_LETTERED	0x8

/* reads of the identity before a difference is taken as lasting */
#define ACCOUNTING_READS		5
#define ACCOUNTING_READ_GAP_US	10000

typedef struct SkMetrics
{
	/* written by backends; kept off the worker's cache line */
	pg_atomic_uint64 queued;	/* accepted into the queue */
	pg_atomic_uint64 rejected;	/* refused: queue or database share full */
	pg_atomic_uint64 dropped;	/* discarded by the overflow policy */
	pg_atomic_uint64 retried;	/* dead letters queued again */
	char		backend_pad[PG_CACHE_LINE_SIZE];

	/* written by the worker */
	pg_atomic_uint64 sent;		/* handed to librdkafka (again after a restart) */
	pg_atomic_uint64 delivered; /* acknowledged by Kafka */
	pg_atomic_uint64 failed;	/* refused by Kafka (each becomes a dead letter) */
	pg_atomic_uint64 dead_lettered; /* written to kafka_dead_letters */
	pg_atomic_uint64 delivered_bytes;
	char		worker_pad[PG_CACHE_LINE_SIZE];

	/* read by every count, written only by kafka_test_freeze_counter() */
	pg_atomic_uint32 frozen;	/* SK_FREEZE_* bits: counters not counting */
	char		frozen_pad[PG_CACHE_LINE_SIZE];

	slock_t		lock;			/* protects everything below */
	TimestampTz last_delivered_at;
	TimestampTz last_error_at;
	char		last_error[SK_ERROR_LEN];
	int			worker_pid;
	TimestampTz worker_started_at;
	bool		producer_ready;
	bool		mock_mode;
	char		bootstrap[SK_BOOTSTRAP_LEN];
	int			brokers_total;
	int			brokers_up;
	int			brokers_down;
	TimestampTz brokers_seen_at;
	TimestampTz reset_at;		/* kafka_stats_reset(), or first start */
	TimestampTz last_dead_letter_at;
} SkMetrics;

static SkMetrics *sk_metrics = NULL;

Size
metrics_shmem_size(void)
{
	return MAXALIGN(sizeof(SkMetrics));
}

/*
 * metrics_shmem_init - attach to the metrics at place, memory that outlives a
 * crash restart (like the queue).  First time: zero them.  After a crash
 * restart (recovered): the counters go on, the status of the dead processes
 * is cleared, and queued is set so that the identity holds for the
 * queue_events events the queue kept.  Called in the postmaster.
 */
void
metrics_shmem_init(void *place, bool recovered, uint64 queue_events)
{
	sk_metrics = (SkMetrics *) place;
	SpinLockInit(&sk_metrics->lock);
	if (recovered)
	{
		pg_atomic_write_u64(&sk_metrics->queued,
							pg_atomic_read_u64(&sk_metrics->delivered) +
							pg_atomic_read_u64(&sk_metrics->dropped) +
							pg_atomic_read_u64(&sk_metrics->dead_lettered) + queue_events);
		sk_metrics->worker_pid = 0;
		sk_metrics->producer_ready = false;
		sk_metrics->brokers_total = sk_metrics->brokers_up = sk_metrics->brokers_down = 0;
		return;
	}
	memset(sk_metrics, 0, sizeof(SkMetrics));
	SpinLockInit(&sk_metrics->lock);
	sk_metrics->reset_at = GetCurrentTimestamp();
	pg_atomic_init_u64(&sk_metrics->queued, 0);
	pg_atomic_init_u64(&sk_metrics->delivered, 0);
	pg_atomic_init_u64(&sk_metrics->failed, 0);
	pg_atomic_init_u64(&sk_metrics->rejected, 0);
	pg_atomic_init_u64(&sk_metrics->dropped, 0);
	pg_atomic_init_u64(&sk_metrics->delivered_bytes, 0);
	pg_atomic_init_u64(&sk_metrics->dead_lettered, 0);
	pg_atomic_init_u64(&sk_metrics->retried, 0);
	pg_atomic_init_u64(&sk_metrics->sent, 0);
	pg_atomic_init_u32(&sk_metrics->frozen, 0);
}

/* has kafka_test_freeze_counter() stopped the counter of this bit? */
static inline bool
counter_frozen(uint32 bit)
{
	return unlikely((pg_atomic_read_u32(&sk_metrics->frozen) & bit) != 0);
}

void
metrics_count_queued(uint32 nevents)
{
	if (counter_frozen(SK_FREEZE_QUEUED))
		return;
	pg_atomic_fetch_add_u64(&sk_metrics->queued, nevents);
}

void
metrics_count_rejected(uint32 nevents)
{
	pg_atomic_fetch_add_u64(&sk_metrics->rejected, nevents);
}

void
metrics_count_dropped(uint64 nevents)
{
	if (counter_frozen(SK_FREEZE_DROPPED))
		return;
	pg_atomic_fetch_add_u64(&sk_metrics->dropped, nevents);
}

void
metrics_count_retried(uint32 nevents)
{
	worker_counter_add(&sk_metrics->retried, nevents);
}

void
metrics_count_dead_lettered(uint64 nevents)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!counter_frozen(SK_FREEZE_DEAD_LETTERED))
		worker_counter_add(&sk_metrics->dead_lettered, nevents);
	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->last_dead_letter_at = now;
	SpinLockRelease(&sk_metrics->lock);
}

void
metrics_count_sent(void)
{
	worker_counter_add(&sk_metrics->sent, 1);
}

void
metrics_count_delivered(uint64 bytes)
{
	if (!counter_frozen(SK_FREEZE_DELIVERED))
		worker_counter_add(&sk_metrics->delivered, 1);
	worker_counter_add(&sk_metrics->delivered_bytes, bytes);
}

/* plain C: safe inside librdkafka callbacks */
void
metrics_note_error(const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&sk_metrics->lock);
	strlcpy(sk_metrics->last_error, error, SK_ERROR_LEN);
	sk_metrics->last_error_at = now;
	SpinLockRelease(&sk_metrics->lock);
}

void
metrics_count_failed(const char *error)
{
	worker_counter_add(&sk_metrics->failed, 1);
	metrics_note_error(error);
}

void
metrics_note_delivery_time(TimestampTz when)
{
	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->last_delivered_at = when;
	SpinLockRelease(&sk_metrics->lock);
}

void
metrics_worker_started(int pid)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->worker_pid = pid;
	sk_metrics->worker_started_at = now;
	sk_metrics->producer_ready = false;
	sk_metrics->brokers_total = sk_metrics->brokers_up = sk_metrics->brokers_down = 0;
	SpinLockRelease(&sk_metrics->lock);
}

void
metrics_worker_stopped(void)
{
	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->worker_pid = 0;
	sk_metrics->producer_ready = false;
	SpinLockRelease(&sk_metrics->lock);
}

void
metrics_producer_state(bool ready, bool mock, const char *bootstrap)
{
	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->producer_ready = ready;
	sk_metrics->mock_mode = mock;
	strlcpy(sk_metrics->bootstrap, bootstrap ? bootstrap : "", SK_BOOTSTRAP_LEN);
	if (!ready)
		sk_metrics->brokers_total = sk_metrics->brokers_up = sk_metrics->brokers_down = 0;
	SpinLockRelease(&sk_metrics->lock);
}

void
metrics_set_brokers(int total, int up, int down)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->brokers_total = total;
	sk_metrics->brokers_up = up;
	sk_metrics->brokers_down = down;
	sk_metrics->brokers_seen_at = now;
	SpinLockRelease(&sk_metrics->lock);
}

/*
 * metrics_read_identity - the four counters and the queue's own count of its
 * events, in the order that keeps queued - (the rest) from going negative
 * while events move (see the file's header)
 */
static void
metrics_read_identity(SkStatsSnapshot *snap)
{
	snap->delivered = pg_atomic_read_u64(&sk_metrics->delivered);
	snap->dropped = pg_atomic_read_u64(&sk_metrics->dropped);
	snap->dead_lettered = pg_atomic_read_u64(&sk_metrics->dead_lettered);
	pg_read_barrier();
	snap->queue_events = ring_unfinished_events();
	pg_read_barrier();
	snap->queued = pg_atomic_read_u64(&sk_metrics->queued);
}

/* queued minus what the identity says it is made of */
static int64
identity_difference(const SkStatsSnapshot *snap)
{
	return (int64) (snap->queued - (snap->delivered + snap->dropped +
									snap->dead_lettered + snap->queue_events));
}

/*
 * metrics_accounting_gap - events counted in queued that are neither
 * finished nor in the queue (negative: counted finished or queued more often
 * than queued), once the difference lasts: a difference read up to
 * ACCOUNTING_READS times, ACCOUNTING_READ_GAP_US apart, that never reached
 * zero.  Events move between counters within a few instructions, so a
 * correct count reads zero at once or at the next read.  Returns the
 * smallest difference seen (by size) and the counts it was read with.
 */
int64
metrics_accounting_gap(SkStatsSnapshot *snap)
{
	int64		smallest = 0;

	for (int reads = 0; reads < ACCOUNTING_READS; reads++)
	{
		SkStatsSnapshot now;
		int64		difference;

		if (reads > 0)
			pg_usleep(ACCOUNTING_READ_GAP_US);
		metrics_read_identity(&now);
		difference = identity_difference(&now);
		if (reads == 0 || Abs(difference) < Abs(smallest))
		{
			smallest = difference;
			*snap = now;
		}
		if (difference == 0)
			break;
	}
	return smallest;
}

/*
 * metrics_snapshot - a copy of the counters and status; the identity's
 * counts are read in the order metrics_read_identity() keeps
 */
void
metrics_snapshot(SkStatsSnapshot *snap)
{
	uint64		tail;
	uint64		head;

	metrics_read_identity(snap);
	snap->failed = pg_atomic_read_u64(&sk_metrics->failed);
	snap->sent = pg_atomic_read_u64(&sk_metrics->sent);
	snap->rejected = pg_atomic_read_u64(&sk_metrics->rejected);
	snap->retried = pg_atomic_read_u64(&sk_metrics->retried);
	snap->delivered_bytes = pg_atomic_read_u64(&sk_metrics->delivered_bytes);
	ring_bounds(&tail, &head);
	snap->queue_bytes = head - tail;
	snap->queue_size = ring_capacity();
	snap->queue_high_water = ring_high_water(false);

	SpinLockAcquire(&sk_metrics->lock);
	snap->last_delivered_at = sk_metrics->last_delivered_at;
	snap->last_error_at = sk_metrics->last_error_at;
	strlcpy(snap->last_error, sk_metrics->last_error, sizeof(snap->last_error));
	snap->reset_at = sk_metrics->reset_at;
	snap->last_dead_letter_at = sk_metrics->last_dead_letter_at;
	snap->worker_pid = sk_metrics->worker_pid;
	snap->producer_ready = sk_metrics->producer_ready;
	snap->mock_mode = sk_metrics->producer_ready ? sk_metrics->mock_mode : settings_mock_mode();
	strlcpy(snap->bootstrap, sk_metrics->bootstrap, sizeof(snap->bootstrap));
	snap->brokers_total = sk_metrics->brokers_total;
	snap->brokers_up = sk_metrics->brokers_up;
	snap->brokers_down = sk_metrics->brokers_down;
	SpinLockRelease(&sk_metrics->lock);
	snap->worker_running = snap->worker_pid != 0 && kill(snap->worker_pid, 0) == 0;
}

/*
 * metrics_reset - kafka_stats_reset(): counters start again from zero, with
 * queued set to what the queue holds, so the identity holds again (also
 * after a counter was frozen).  An event finished while the counters are
 * zeroed may be counted on the wrong side of the reset: a difference that
 * lasts after it is taken out of queued.
 */
void
metrics_reset(void)
{
	SkStatsSnapshot snap;
	int64		gap;
	TimestampTz now = GetCurrentTimestamp();

	metrics_snapshot(&snap);
	pg_atomic_write_u64(&sk_metrics->delivered, 0);
	pg_atomic_write_u64(&sk_metrics->failed, 0);
	pg_atomic_write_u64(&sk_metrics->dropped, 0);
	pg_atomic_write_u64(&sk_metrics->dead_lettered, 0);
	pg_atomic_write_u64(&sk_metrics->queued, snap.queue_events);
	gap = metrics_accounting_gap(&snap);
	if (gap != 0)
		pg_atomic_fetch_sub_u64(&sk_metrics->queued, (uint64) gap);
	pg_atomic_write_u64(&sk_metrics->sent, 0);
	pg_atomic_write_u64(&sk_metrics->rejected, 0);
	pg_atomic_write_u64(&sk_metrics->retried, 0);
	pg_atomic_write_u64(&sk_metrics->delivered_bytes, 0);
	(void) ring_high_water(true);
	SpinLockAcquire(&sk_metrics->lock);
	sk_metrics->reset_at = now;
	sk_metrics->last_error[0] = '\0';
	sk_metrics->last_error_at = 0;
	sk_metrics->last_dead_letter_at = 0;
	SpinLockRelease(&sk_metrics->lock);
}

PG_FUNCTION_INFO_V1(streamkafka_stats);

/*
 * streamkafka_stats - the one row of the kafka_stats view.  Columns are
 * filled in their order; a view of an older version has fewer, and
 * heap_form_tuple uses what it has.
 */
Datum
streamkafka_stats(PG_FUNCTION_ARGS)
{
	SkStatsSnapshot snap;
	SkLatencyCopy latency;
	SkBrokerSnapshot *brokers;
	TupleDesc	tupdesc;
	Datum		values[25];
	bool		nulls[25] = {0};
	int64		connects = 0;
	int64		disconnects = 0;

	streamkafka_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	Assert(tupdesc->natts <= lengthof(values));
	metrics_snapshot(&snap);
	topicstats_total_latency(&latency);
	brokers = brokers_snapshot();
	for (int i = 0; i < brokers->count; i++)
	{
		connects += brokers->brokers[i].connects;
		disconnects += brokers->brokers[i].disconnects;
	}

	values[0] = Int64GetDatum(snap.queued);
	values[1] = Int64GetDatum(snap.delivered);
	values[2] = Int64GetDatum(snap.failed);
	values[3] = Int64GetDatum(snap.dropped);
	values[4] = Int64GetDatum(snap.rejected);
	values[5] = Int64GetDatum(snap.queue_events);
	values[6] = Int64GetDatum(snap.queue_bytes);
	values[7] = Int64GetDatum(snap.queue_size);
	values[8] = Int64GetDatum(snap.delivered_bytes);
	values[9] = timestamp_or_null(snap.last_delivered_at, &nulls[9]);
	values[10] = CStringGetTextDatum(snap.last_error);
	nulls[10] = snap.last_error[0] == '\0';
	values[11] = timestamp_or_null(snap.last_error_at, &nulls[11]);
	values[12] = Int64GetDatum(snap.dead_lettered);
	values[13] = Int64GetDatum(snap.retried);
	values[14] = Int64GetDatum(snap.sent);
	values[15] = Int64GetDatum(snap.queue_high_water);
	values[16] = ms_or_null(topicstats_percentile_ms(&latency, 0.50), &nulls[16]);
	values[17] = ms_or_null(topicstats_percentile_ms(&latency, 0.95), &nulls[17]);
	values[18] = ms_or_null(topicstats_percentile_ms(&latency, 0.99), &nulls[18]);
	values[19] = ms_or_null(latency.count ? latency.max_us / 1000.0 : -1, &nulls[19]);
	values[20] = Float8GetDatum(brokers->batch_messages_avg);
	values[21] = Float8GetDatum(brokers->batch_messages_p99);
	values[22] = Int64GetDatum(connects);
	values[23] = Int64GetDatum(disconnects);
	values[24] = TimestampTzGetDatum(snap.reset_at);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(streamkafka_stats_reset);

/*
 * streamkafka_stats_reset - kafka_stats_reset()
 */
Datum
streamkafka_stats_reset(PG_FUNCTION_ARGS)
{
	streamkafka_require_preload();
	metrics_reset();
	topicstats_reset();
	PG_RETURN_VOID();
}

/* the SK_FREEZE_* bit of a counter's name; ERROR for any other name */
static uint32
freeze_bit(const char *counter)
{
	if (strcmp(counter, "queued") == 0)
		return SK_FREEZE_QUEUED;
	if (strcmp(counter, "delivered") == 0)
		return SK_FREEZE_DELIVERED;
	if (strcmp(counter, "dropped") == 0)
		return SK_FREEZE_DROPPED;
	if (strcmp(counter, "dead_lettered") == 0)
		return SK_FREEZE_DEAD_LETTERED;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("kafka_test_freeze_counter cannot freeze \"%s\"", counter),
			 errhint("Use queued, delivered, dropped or dead_lettered.")));
	return 0;					/* keep the compiler quiet */
}

PG_FUNCTION_INFO_V1(streamkafka_test_freeze_counter);

/*
 * streamkafka_test_freeze_counter - kafka_test_freeze_counter(counter,
 * frozen): for tests only, stop (or restart) one counter of the accounting
 * identity, so a test can show its checks fail.  Superuser only.
 */
Datum
streamkafka_test_freeze_counter(PG_FUNCTION_ARGS)
{
	uint32		bit;

	streamkafka_require_preload();
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for kafka_test_freeze_counter"),
				 errdetail("Freezing a counter falsifies kafka_stats; it is for tests."),
				 errhint("Run it as a superuser, on a test server.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kafka_test_freeze_counter arguments must not be null"),
				 errhint("Name queued, delivered, dropped or dead_lettered, and true or false.")));
	bit = freeze_bit(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (PG_GETARG_BOOL(1))
		pg_atomic_fetch_or_u32(&sk_metrics->frozen, bit);
	else
		pg_atomic_fetch_and_u32(&sk_metrics->frozen, ~bit);
	ereport(LOG,
			(errmsg("streamkafka counter %s is %s by kafka_test_freeze_counter",
					text_to_cstring(PG_GETARG_TEXT_PP(0)),
					PG_GETARG_BOOL(1) ? "frozen" : "counting again")));
	PG_RETURN_VOID();
}
