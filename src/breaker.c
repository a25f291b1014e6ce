/*
 * breaker.c
 *		The circuit breaker, run by the worker, and the kafka_breaker view.
 *
 * CLOSED: events flow.  After streamkafka.breaker_failure_threshold
 * consecutive failures it opens.  A failure is a delivery report with an
 * error, an event librdkafka refused, an error event saying that
 * authentication or name resolution failed, and, while events wait (sent
 * or not), an error event saying every broker is down or a statistics
 * report (every second) in which no broker is up and one was tried.  An
 * idle producer's brokers are not failing: Kafka closes connections nobody
 * used (connections.max.idle.ms, 10 minutes by default), librdkafka reports
 * that as every broker down, and connects again when it has something to
 * send.  A successful delivery resets the count.
 *
 * OPEN: the sender hands nothing more to librdkafka; new events wait in the
 * shared-memory queue.  (Events librdkafka already holds stay with it and
 * are retried by it until streamkafka.message_timeout_ms.)  After
 * streamkafka.breaker_recovery_timeout_ms (its value at that time, so a
 * reload applies to an open breaker) it becomes HALF_OPEN.
 *
 * HALF_OPEN: one event is sent as a probe.  Its acknowledgement closes the
 * breaker; its failure, or no answer within the recovery timeout, opens it
 * again.  With no event to probe with, a statistics report with a broker up
 * closes it.
 *
 * A new producer (the worker's first, or one rebuilt after a reload or a
 * fatal error) starts CLOSED, whatever the previous one's state.
 *
 * The state is in shared memory for the view, under a spinlock; only the
 * worker writes it.  Failures and successes are recorded from librdkafka
 * callbacks (plain C, no elog), so state changes are logged later, by
 * breaker_tick(), once each.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "breaker.h"
#include "ring.h"
#include "settings.h"
#include "sqlvalue.h"
#include "streamkafka.h"

#define BREAKER_ERROR_LEN	256
#define BREAKER_LOG_MAX		8

typedef struct SkBreaker
{
	slock_t		lock;
	SkBreakerState state;
	TimestampTz since;
	int			consecutive_failures;
	uint64		opened_count;
	char		last_error[BREAKER_ERROR_LEN];
} SkBreaker;

static SkBreaker *sk_breaker = NULL;

/* worker-local: the probe, and state changes not logged yet */
static bool probe_sent = false;
static TimestampTz probe_sent_at = 0;
static SkBreakerState unlogged[BREAKER_LOG_MAX];
static int	nunlogged = 0;


/* when an open breaker sends its probe (with the current setting) */
static TimestampTz
breaker_next_probe_at(const SkBreaker *breaker)
{
	return TimestampTzPlusMilliseconds(breaker->since, sk_breaker_recovery_timeout_ms);
}

Size
breaker_shmem_size(void)
{
	return MAXALIGN(sizeof(SkBreaker));
}

void
breaker_shmem_init(void)
{
	bool		found;

	sk_breaker = ShmemInitStruct("streamkafka breaker", breaker_shmem_size(), &found);
	if (found)
		return;
	memset(sk_breaker, 0, sizeof(SkBreaker));
	SpinLockInit(&sk_breaker->lock);
	sk_breaker->state = SK_BREAKER_CLOSED;
}

/* change state; the lock is held */
static void
breaker_enter(SkBreakerState state, TimestampTz now)
{
	sk_breaker->state = state;
	sk_breaker->since = now;
	if (state == SK_BREAKER_OPEN)
		sk_breaker->opened_count++;
	if (state == SK_BREAKER_CLOSED)
		sk_breaker->consecutive_failures = 0;
	probe_sent = false;
	if (nunlogged < BREAKER_LOG_MAX)
		unlogged[nunlogged++] = state;
}

/*
 * breaker_reset - a new producer (a new worker's, or one rebuilt after a
 * reload or a fatal error) starts with the breaker closed: the failures
 * counted so far were the previous producer's, with other settings, and say
 * nothing about this one
 */
void
breaker_reset(void)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&sk_breaker->lock);
	if (sk_breaker->state != SK_BREAKER_CLOSED)
		breaker_enter(SK_BREAKER_CLOSED, now);
	else if (sk_breaker->since == 0)
		sk_breaker->since = now;
	sk_breaker->consecutive_failures = 0;
	SpinLockRelease(&sk_breaker->lock);
	probe_sent = false;
}

/*
 * breaker_failure - one failure (plain C)
 */
void
breaker_failure(const char *why)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&sk_breaker->lock);
	sk_breaker->consecutive_failures++;
	strlcpy(sk_breaker->last_error, why, BREAKER_ERROR_LEN);
	if ((sk_breaker->state == SK_BREAKER_CLOSED &&
		 sk_breaker->consecutive_failures >= sk_breaker_failure_threshold) ||
		sk_breaker->state == SK_BREAKER_HALF_OPEN)
		breaker_enter(SK_BREAKER_OPEN, now);
	SpinLockRelease(&sk_breaker->lock);
}

/*
 * breaker_success - an event was delivered (plain C)
 */
void
breaker_success(void)
{
	TimestampTz now;

	/* the common case, read without the lock: only the worker writes */
	if (sk_breaker->state == SK_BREAKER_CLOSED && sk_breaker->consecutive_failures == 0)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&sk_breaker->lock);
	sk_breaker->consecutive_failures = 0;
	if (sk_breaker->state == SK_BREAKER_HALF_OPEN)
		breaker_enter(SK_BREAKER_CLOSED, now);
	SpinLockRelease(&sk_breaker->lock);
}

/*
 * breaker_brokers_down - every broker is down: a failure only while events
 * wait (plain C)
 */
void
breaker_brokers_down(const char *why)
{
	if (ring_unfinished_events() > 0)
		breaker_failure(why);
}

/*
 * breaker_brokers_seen - a statistics report counted brokers up and tried
 * but not connected
 */
void
breaker_brokers_seen(int up, int not_connected)
{
	bool		half_open_idle;

	if (up == 0 && not_connected > 0)
	{
		breaker_brokers_down("no broker is up");
		return;
	}
	SpinLockAcquire(&sk_breaker->lock);
	half_open_idle = sk_breaker->state == SK_BREAKER_HALF_OPEN && !probe_sent;
	SpinLockRelease(&sk_breaker->lock);
	if (half_open_idle && up > 0)
		breaker_success();
}

/*
 * breaker_may_send - may the sender hand the next event to librdkafka?
 * Moves OPEN to HALF_OPEN when the recovery timeout has passed.
 */
bool
breaker_may_send(void)
{
	SkBreakerState state = sk_breaker->state;	/* only the worker writes it */

	if (state == SK_BREAKER_CLOSED)
		return true;
	if (state == SK_BREAKER_OPEN)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now < breaker_next_probe_at(sk_breaker))
			return false;
		SpinLockAcquire(&sk_breaker->lock);
		breaker_enter(SK_BREAKER_HALF_OPEN, now);
		SpinLockRelease(&sk_breaker->lock);
	}
	return !probe_sent;
}

/*
 * breaker_sent - an event was handed to librdkafka; when HALF_OPEN it is
 * the probe
 */
void
breaker_sent(void)
{
	if (sk_breaker->state != SK_BREAKER_HALF_OPEN || probe_sent)
		return;
	probe_sent = true;
	probe_sent_at = GetCurrentTimestamp();
}

/*
 * breaker_tick - once per loop turn: time out an unanswered probe (in_flight:
 * is anything still with librdkafka) and log the state changes since the
 * last call
 */
void
breaker_tick(bool in_flight)
{
	if (sk_breaker->state == SK_BREAKER_HALF_OPEN && probe_sent &&
		(!in_flight ||
		 TimestampDifferenceExceeds(probe_sent_at, GetCurrentTimestamp(),
									sk_breaker_recovery_timeout_ms)))
		breaker_failure(in_flight ? "the probe event was not acknowledged in time"
						: "the probe event was taken back");

	for (int i = 0; i < nunlogged; i++)
	{
		char		why[BREAKER_ERROR_LEN];

		SpinLockAcquire(&sk_breaker->lock);
		strlcpy(why, sk_breaker->last_error, sizeof(why));
		SpinLockRelease(&sk_breaker->lock);
		if (unlogged[i] == SK_BREAKER_OPEN)
			ereport(LOG,
					(errmsg("streamkafka circuit breaker is open: events wait in the queue"),
					 errdetail("Last failure: %s.", why),
					 errhint("One probe event is sent after "
							 "streamkafka.breaker_recovery_timeout_ms (%d ms).",
							 sk_breaker_recovery_timeout_ms)));
		else
			ereport(LOG, (errmsg("streamkafka circuit breaker is %s",
								 unlogged[i] == SK_BREAKER_CLOSED ? "closed: events flow again"
								 : "half open: sending one probe event")));
	}
	nunlogged = 0;
}

/*
 * breaker_read - the state, consecutive failures and times opened, for
 * health and Prometheus
 */
void
breaker_read(SkBreakerState *state, int *failures, uint64 *opened)
{
	SpinLockAcquire(&sk_breaker->lock);
	*state = sk_breaker->state;
	*failures = sk_breaker->consecutive_failures;
	*opened = sk_breaker->opened_count;
	SpinLockRelease(&sk_breaker->lock);
}

/*
 * breaker_state_name - the name kafka_breaker and Prometheus show for a state
 * ("unknown" for a value no state has: the state lives in shared memory)
 */
const char *
breaker_state_name(SkBreakerState state)
{
	switch (state)
	{
		case SK_BREAKER_CLOSED:
			return "closed";
		case SK_BREAKER_OPEN:
			return "open";
		case SK_BREAKER_HALF_OPEN:
			return "half_open";
	}
	return "unknown";
}

PG_FUNCTION_INFO_V1(streamkafka_breaker);

/*
 * streamkafka_breaker - the one row of the kafka_breaker view
 */
Datum
streamkafka_breaker(PG_FUNCTION_ARGS)
{
	SkBreaker	copy;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {0};

	streamkafka_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SpinLockAcquire(&sk_breaker->lock);
	memcpy(&copy, sk_breaker, sizeof(copy));
	SpinLockRelease(&sk_breaker->lock);

	values[0] = CStringGetTextDatum(breaker_state_name(copy.state));
	values[1] = timestamp_or_null(copy.since, &nulls[1]);
	values[2] = Int32GetDatum(copy.consecutive_failures);
	values[3] = Int64GetDatum(copy.opened_count);
	values[4] = CStringGetTextDatum(copy.last_error);
	nulls[4] = copy.last_error[0] == '\0';
	values[5] = TimestampTzGetDatum(breaker_next_probe_at(&copy));
	nulls[5] = copy.state != SK_BREAKER_OPEN;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
