/*
 * brokers.c
 *		The brokers as librdkafka's statistics describe them (every second),
 *		kept in shared memory for the kafka_brokers view, kafka_stats and
 *		Prometheus.
 *
 * rdstats.c fills a snapshot and publishes it here under an LWLock.  The
 * last error of each broker comes from librdkafka's error events, whose text
 * starts with the broker's name ("127.0.0.1:9092/1: Connect to ... failed");
 * they arrive inside rd_kafka_poll(), so brokers_note_error() keeps them in
 * worker memory (plain C) and the next snapshot carries them.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "brokers.h"
#include "compat.h"
#include "locks.h"
#include "sqlvalue.h"
#include "streamkafka.h"

typedef struct SkBrokers
{
	LWLock	   *lock;
	SkBrokerSnapshot snapshot;
} SkBrokers;

/* the worker's last error per broker name */
typedef struct BrokerError
{
	char		name[SK_BROKER_NAME_LEN];
	char		text[SK_BROKER_ERROR_LEN];
	TimestampTz at;
} BrokerError;

static SkBrokers *sk_brokers_shared = NULL;
static BrokerError errors[SK_MAX_BROKERS];
static int	nerrors = 0;

Size
brokers_shmem_size(void)
{
	return MAXALIGN(sizeof(SkBrokers));
}

void
brokers_shmem_init(void)
{
	bool		found;

	sk_brokers_shared = ShmemInitStruct("streamkafka brokers", brokers_shmem_size(), &found);
	if (!found)
		memset(sk_brokers_shared, 0, sizeof(SkBrokers));
	sk_brokers_shared->lock = sk_lwlock(SK_LWLOCK_BROKERS);
}

/*
 * brokers_note_error - an error event; if its text names a broker, remember
 * it as that broker's last error (plain C)
 */
void
brokers_note_error(const char *reason)
{
	const char *colon = strstr(reason, ": ");
	size_t		len = colon ? (size_t) (colon - reason) : 0;
	int			i;

	if (len == 0 || len >= SK_BROKER_NAME_LEN || memchr(reason, '/', len) == NULL)
		return;
	for (i = 0; i < nerrors; i++)
		if (strncmp(errors[i].name, reason, len) == 0 && errors[i].name[len] == '\0')
			break;
	if (i == nerrors)
	{
		if (nerrors == SK_MAX_BROKERS)
			return;
		memcpy(errors[i].name, reason, len);
		errors[i].name[len] = '\0';
		nerrors++;
	}
	strlcpy(errors[i].text, colon + 2, SK_BROKER_ERROR_LEN);
	errors[i].at = GetCurrentTimestamp();
}

/*
 * brokers_publish - the worker: make a new snapshot visible, with the last
 * errors filled in
 */
void
brokers_publish(SkBrokerSnapshot *snapshot)
{
	for (int b = 0; b < snapshot->count; b++)
		for (int i = 0; i < nerrors; i++)
			if (strcmp(errors[i].name, snapshot->brokers[b].name) == 0)
			{
				strlcpy(snapshot->brokers[b].last_error, errors[i].text, SK_BROKER_ERROR_LEN);
				snapshot->brokers[b].last_error_at = errors[i].at;
			}
	snapshot->seen_at = GetCurrentTimestamp();
	LWLockAcquire(sk_brokers_shared->lock, LW_EXCLUSIVE);
	memcpy(&sk_brokers_shared->snapshot, snapshot, sizeof(SkBrokerSnapshot));
	LWLockRelease(sk_brokers_shared->lock);
}

/*
 * brokers_clear - the producer stopped: no brokers known
 */
void
brokers_clear(void)
{
	LWLockAcquire(sk_brokers_shared->lock, LW_EXCLUSIVE);
	sk_brokers_shared->snapshot.count = 0;
	LWLockRelease(sk_brokers_shared->lock);
	nerrors = 0;
}

SkBrokerSnapshot *
brokers_snapshot(void)
{
	SkBrokerSnapshot *copy = palloc(sizeof(SkBrokerSnapshot));

	LWLockAcquire(sk_brokers_shared->lock, LW_SHARED);
	memcpy(copy, &sk_brokers_shared->snapshot, sizeof(SkBrokerSnapshot));
	LWLockRelease(sk_brokers_shared->lock);
	return copy;
}

PG_FUNCTION_INFO_V1(streamkafka_brokers);

/*
 * streamkafka_brokers - the rows of kafka_brokers
 */
Datum
streamkafka_brokers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SkBrokerSnapshot *snap;

	streamkafka_require_preload();
	SK_InitMaterializedSRF(fcinfo);
	snap = brokers_snapshot();
	for (int i = 0; i < snap->count; i++)
	{
		SkBroker   *b = &snap->brokers[i];
		Datum		values[11];
		bool		nulls[11] = {0};

		values[0] = Int32GetDatum(b->id);
		nulls[0] = b->id < 0;
		values[1] = CStringGetTextDatum(b->name);
		values[2] = CStringGetTextDatum(b->state);
		values[3] = Float8GetDatum(b->rtt_avg_us / 1000.0);
		values[4] = Float8GetDatum(b->rtt_p99_us / 1000.0);
		values[5] = Int64GetDatum(b->requests_waiting);
		values[6] = Int64GetDatum(b->connects);
		values[7] = Int64GetDatum(b->disconnects);
		values[8] = CStringGetTextDatum(b->last_error);
		nulls[8] = b->last_error[0] == '\0';
		values[9] = timestamp_or_null(b->last_error_at, &nulls[9]);
		values[10] = TimestampTzGetDatum(snap->seen_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
