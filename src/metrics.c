/*
 * metrics.c
 *		Delivery counters and the worker's status in shared memory, and the
 *		SQL functions behind the kafka_stats view and kafka_health().
 *
 * Counters are atomics: backends add to queued, rejected, retried and
 * dropped (drop_newest), the worker to delivered, failed (refused by Kafka),
 * dead_lettered and dropped (drop_oldest).
 * queued = delivered + dropped + dead_lettered + queue_events at every
 * moment; a refused event is in the queue until its dead letter is written.
 * The text and timestamp fields sit under one spinlock, held only to copy
 * them.  Readers take no lock for the counters;
 * they read the finished counts before queued, so queue_events (queued
 * minus the finished ones) is never negative.
 */
#include "postgres.h"

#include <signal.h>

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

#include "metrics.h"
#include "ring.h"
#include "settings.h"
#include "streamkafka.h"

#define SK_ERROR_LEN		256
#define SK_BOOTSTRAP_LEN	1024

typedef struct SkMetrics
{
	/* written by backends; kept off the worker's cache line */
	pg_atomic_uint64 queued;	/* accepted into the queue */
	pg_atomic_uint64 rejected;	/* refused: queue full, statement failed */
	pg_atomic_uint64 dropped;	/* discarded by the overflow policy */
	pg_atomic_uint64 retried;	/* dead letters queued again */
	char		backend_pad[PG_CACHE_LINE_SIZE];

	/* written by the worker */
	pg_atomic_uint64 delivered; /* acknowledged by Kafka */
	pg_atomic_uint64 failed;	/* refused by Kafka (each becomes a dead letter) */
	pg_atomic_uint64 dead_lettered; /* written to kafka_dead_letters */
	pg_atomic_uint64 delivered_bytes;
	char		worker_pad[PG_CACHE_LINE_SIZE];

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
	pg_atomic_init_u64(&sk_metrics->queued, 0);
	pg_atomic_init_u64(&sk_metrics->delivered, 0);
	pg_atomic_init_u64(&sk_metrics->failed, 0);
	pg_atomic_init_u64(&sk_metrics->rejected, 0);
	pg_atomic_init_u64(&sk_metrics->dropped, 0);
	pg_atomic_init_u64(&sk_metrics->delivered_bytes, 0);
	pg_atomic_init_u64(&sk_metrics->dead_lettered, 0);
	pg_atomic_init_u64(&sk_metrics->retried, 0);
}

void
metrics_count_queued(uint32 nevents)
{
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
	pg_atomic_fetch_add_u64(&sk_metrics->dropped, nevents);
}

void
metrics_count_retried(uint32 nevents)
{
	pg_atomic_fetch_add_u64(&sk_metrics->retried, nevents);
}

void
metrics_count_dead_lettered(uint64 nevents)
{
	pg_atomic_fetch_add_u64(&sk_metrics->dead_lettered, nevents);
}

void
metrics_count_delivered(uint64 bytes)
{
	pg_atomic_fetch_add_u64(&sk_metrics->delivered, 1);
	pg_atomic_fetch_add_u64(&sk_metrics->delivered_bytes, bytes);
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
	pg_atomic_fetch_add_u64(&sk_metrics->failed, 1);
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

/* a consistent copy of the counters and status */
typedef struct MetricsSnapshot
{
	uint64		queued;
	uint64		delivered;
	uint64		failed;
	uint64		rejected;
	uint64		dropped;
	uint64		dead_lettered;
	uint64		retried;
	uint64		delivered_bytes;
	uint64		queue_bytes;
	SkMetrics	status;			/* only the lock-protected fields are used */
} MetricsSnapshot;

static void
metrics_snapshot(MetricsSnapshot *snap)
{
	uint64		tail;
	uint64		head;

	snap->delivered = pg_atomic_read_u64(&sk_metrics->delivered);
	snap->failed = pg_atomic_read_u64(&sk_metrics->failed);
	snap->dropped = pg_atomic_read_u64(&sk_metrics->dropped);
	snap->dead_lettered = pg_atomic_read_u64(&sk_metrics->dead_lettered);
	pg_read_barrier();
	snap->queued = pg_atomic_read_u64(&sk_metrics->queued);
	snap->rejected = pg_atomic_read_u64(&sk_metrics->rejected);
	snap->retried = pg_atomic_read_u64(&sk_metrics->retried);
	snap->delivered_bytes = pg_atomic_read_u64(&sk_metrics->delivered_bytes);
	ring_bounds(&tail, &head);
	snap->queue_bytes = head - tail;

	SpinLockAcquire(&sk_metrics->lock);
	memcpy(&snap->status, sk_metrics, sizeof(SkMetrics));
	SpinLockRelease(&sk_metrics->lock);
}

/* is the worker process alive? */
static bool
worker_running(const MetricsSnapshot *snap)
{
	return snap->status.worker_pid != 0 && kill(snap->status.worker_pid, 0) == 0;
}

static Datum
timestamp_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

PG_FUNCTION_INFO_V1(streamkafka_stats);

/*
 * streamkafka_stats - the one row of the kafka_stats view
 */
Datum
streamkafka_stats(PG_FUNCTION_ARGS)
{
	MetricsSnapshot snap;
	TupleDesc	tupdesc;
	Datum		values[14];
	bool		nulls[14] = {0};
	uint64		finished;

	streamkafka_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	metrics_snapshot(&snap);
	finished = snap.delivered + snap.dropped + snap.dead_lettered;

	values[0] = Int64GetDatum(snap.queued);
	values[1] = Int64GetDatum(snap.delivered);
	values[2] = Int64GetDatum(snap.failed);
	values[3] = Int64GetDatum(snap.dropped);
	values[4] = Int64GetDatum(snap.rejected);
	values[5] = Int64GetDatum(snap.queued > finished ? snap.queued - finished : 0);
	values[6] = Int64GetDatum(snap.queue_bytes);
	values[7] = Int64GetDatum(ring_capacity());
	values[8] = Int64GetDatum(snap.delivered_bytes);
	values[9] = timestamp_or_null(snap.status.last_delivered_at, &nulls[9]);
	values[10] = CStringGetTextDatum(snap.status.last_error);
	nulls[10] = snap.status.last_error[0] == '\0';
	values[11] = timestamp_or_null(snap.status.last_error_at, &nulls[11]);
	/* 0.1.0's view has no more columns: heap_form_tuple uses what it has */
	values[12] = Int64GetDatum(snap.dead_lettered);
	values[13] = Int64GetDatum(snap.retried);
	Assert(tupdesc->natts <= lengthof(values));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

static void
json_key_string(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, "\"%s\": ", key);
	escape_json(buf, value);
	appendStringInfoString(buf, ", ");
}

/* the health verdict and the check behind each part of it */
static const char *
health_status(const MetricsSnapshot *snap, bool running, double fill,
			  StringInfo checks)
{
	bool		unhealthy = false;
	bool		degraded = false;
	const SkMetrics *st = &snap->status;

	appendStringInfoChar(checks, '{');
	json_key_string(checks, "worker", running ? "ok" : "not running");
	unhealthy |= !running;

	json_key_string(checks, "producer", st->producer_ready ? "ok" :
					"not started (see last_error and the server log)");
	unhealthy |= running && !st->producer_ready;

	if (st->brokers_total == 0)
		json_key_string(checks, "brokers", "connecting");
	else if (st->brokers_up == 0 && st->brokers_down > 0)
		json_key_string(checks, "brokers", "all brokers down");
	else if (st->brokers_down > 0)
		json_key_string(checks, "brokers", "some brokers down");
	else
		json_key_string(checks, "brokers", "ok");
	unhealthy |= st->brokers_up == 0 && st->brokers_down > 0;
	degraded |= st->brokers_down > 0;

	json_key_string(checks, "queue", fill >= 0.8 ? "over 80% full" : "ok");
	degraded |= fill >= 0.8;
	checks->len -= 2;			/* the last ", " */
	appendStringInfoChar(checks, '}');

	return unhealthy ? "unhealthy" : degraded ? "degraded" : "healthy";
}

PG_FUNCTION_INFO_V1(streamkafka_health);

/*
 * streamkafka_health - kafka_health(): one jsonb with the verdict and the
 * facts behind it
 */
Datum
streamkafka_health(PG_FUNCTION_ARGS)
{
	MetricsSnapshot snap;
	StringInfoData buf;
	StringInfoData checks;
	bool		running;
	double		fill;
	const SkMetrics *st = &snap.status;

	streamkafka_require_preload();
	metrics_snapshot(&snap);
	running = worker_running(&snap);
	fill = (double) snap.queue_bytes / (double) ring_capacity();

	initStringInfo(&checks);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_key_string(&buf, "status", health_status(&snap, running, fill, &checks));
	appendStringInfo(&buf, "\"checks\": %s, ", checks.data);
	json_key_string(&buf, "mode",
					(st->producer_ready ? st->mock_mode : settings_mock_mode()) ?
					"mock" : "brokers");
	json_key_string(&buf, "bootstrap_servers", st->bootstrap);
	appendStringInfo(&buf, "\"worker_running\": %s, ", running ? "true" : "false");
	appendStringInfo(&buf, "\"worker_pid\": %d, ", running ? st->worker_pid : 0);
	appendStringInfo(&buf, "\"producer_ready\": %s, ", st->producer_ready ? "true" : "false");
	appendStringInfo(&buf, "\"brokers_total\": %d, \"brokers_up\": %d, \"brokers_down\": %d, ",
					 st->brokers_total, st->brokers_up, st->brokers_down);
	appendStringInfo(&buf, "\"queue_fill\": %.4f, ", fill);
	json_key_string(&buf, "last_error", st->last_error);
	json_key_string(&buf, "version", STREAMKAFKA_VERSION);
	buf.len -= 2;
	appendStringInfoChar(&buf, '}');

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
