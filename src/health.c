/*
 * health.c
 *		kafka_health(): one jsonb with the verdict (healthy, degraded,
 *		unhealthy) and the check behind each part of it.  The same report is
 *		served on /health by the monitor worker.
 *
 * unhealthy: the worker is not running, the producer could not start, no
 *            broker is up, the circuit breaker is open, or durable mode
 *            cannot work (set-up, a missing or invalidated slot).
 * degraded:  some brokers down, the breaker half open, the queue over 80%
 *            full or held by a commit waiting for synchronous replication,
 *            a database past 80% of its share of the queue, dead letters
 *            written in the last 15 minutes or not writable (no connection
 *            to streamkafka.database), a consumer group lagging more than
 *            streamkafka.lag_alert_threshold, a topic with under-replicated
 *            partitions, a damaged spill file set aside at start, more
 *            WAL kept for undelivered events than
 *            streamkafka.wal_retention_alert, or the accounting identity
 *            not holding (a counting defect; the log says by how much, see
 *            metrics.c).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "access/xlog.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include <librdkafka/rdkafka.h>

#include "breaker.h"
#include "deadletter.h"
#include "decoder.h"
#include "durable.h"
#include "health.h"
#include "metrics.h"
#include "lag.h"
#include "ring.h"
#include "settings.h"
#include "spill.h"
#include "staging.h"
#include "streamkafka.h"

#define RECENT_DEAD_LETTER_MS	(15 * 60 * 1000)

/* health_status_name - the name kafka_health() gives a status */
static const char *
health_status_name(SkHealthStatus status)
{
	switch (status)
	{
		case SK_HEALTHY:
			return "healthy";
		case SK_DEGRADED:
			return "degraded";
		case SK_UNHEALTHY:
			return "unhealthy";
	}
	return "unknown";
}

typedef struct HealthChecks
{
	StringInfoData json;
	SkHealthStatus status;
} HealthChecks;

/* one check: its name, what it found, and the status that implies */
static void
check(HealthChecks *checks, const char *name, const char *finding, SkHealthStatus status)
{
	if (checks->json.len > 1)
		appendStringInfoString(&checks->json, ", ");
	escape_json(&checks->json, name);
	appendStringInfoString(&checks->json, ": ");
	escape_json(&checks->json, finding);
	checks->status = Max(checks->status, status);
}

static void
check_brokers(HealthChecks *checks, const SkStatsSnapshot *snap)
{
	if (snap->brokers_total == 0)
		check(checks, "brokers", "connecting", SK_HEALTHY);
	else if (snap->brokers_up == 0 && snap->brokers_down > 0)
		check(checks, "brokers", "all brokers down", SK_UNHEALTHY);
	else if (snap->brokers_down > 0)
		check(checks, "brokers", "some brokers down", SK_DEGRADED);
	else
		check(checks, "brokers", "ok", SK_HEALTHY);
}

static void
check_breaker(HealthChecks *checks)
{
	SkBreakerState state;
	int			failures;
	uint64		opened;

	breaker_read(&state, &failures, &opened);
	if (state == SK_BREAKER_OPEN)
		check(checks, "breaker", "open: events wait in the queue", SK_UNHEALTHY);
	else if (state == SK_BREAKER_HALF_OPEN)
		check(checks, "breaker", "half open: probing", SK_DEGRADED);
	else
		check(checks, "breaker", "ok", SK_HEALTHY);
}

/*
 * check_queue - degraded while a commit waiting for synchronous replication
 * holds the queue (its events and the space after it wait), or over 80% full
 */
static void
check_queue(HealthChecks *checks, double fill)
{
	int			held_by = ring_held_by();
	char		text[128];

	if (held_by != 0)
	{
		snprintf(text, sizeof(text),
				 "held by a commit waiting for synchronous replication (pid %d)", held_by);
		check(checks, "queue", text, SK_DEGRADED);
	}
	else if (fill >= 0.8)
		check(checks, "queue", "over 80% full", SK_DEGRADED);
	else
		check(checks, "queue", "ok", SK_HEALTHY);
}

static void
check_monitor(HealthChecks *checks)
{
	int64		lag = lag_max_group_lag();
	int			under = lag_under_replicated();
	char		text[128];

	if (sk_lag_alert_threshold > 0 && lag > sk_lag_alert_threshold)
	{
		snprintf(text, sizeof(text), "a consumer group lags %lld messages", (long long) lag);
		check(checks, "consumer_lag", text, SK_DEGRADED);
	}
	else
		check(checks, "consumer_lag", "ok", SK_HEALTHY);
	if (under > 0)
	{
		snprintf(text, sizeof(text), "%d under-replicated partitions", under);
		check(checks, "topics", text, SK_DEGRADED);
	}
	else
		check(checks, "topics", "ok", SK_HEALTHY);
}

/*
 * check_accounting - does queued = delivered + dropped + dead_lettered +
 * queue_events hold?  A lasting difference is logged whenever it changes.
 */
static void
check_accounting(HealthChecks *checks)
{
	static int64 last_logged = 0;
	SkStatsSnapshot counts;
	int64		gap = metrics_accounting_gap(&counts);
	char		text[160];

	if (gap == 0)
	{
		check(checks, "accounting", "ok", SK_HEALTHY);
		return;
	}
	snprintf(text, sizeof(text), "queued differs from delivered + dropped + "
			 "dead_lettered + queue_events by %lld", (long long) gap);
	check(checks, "accounting", text, SK_DEGRADED);
	if (gap == last_logged)
		return;
	last_logged = gap;
	ereport(LOG,
			(errmsg("streamkafka accounting does not add up: queued %llu, but delivered %llu + "
					"dropped %llu + dead_lettered %llu + queue_events %llu differ from it by %lld",
					(unsigned long long) counts.queued, (unsigned long long) counts.delivered,
					(unsigned long long) counts.dropped,
					(unsigned long long) counts.dead_lettered,
					(unsigned long long) counts.queue_events, (long long) gap),
			 errdetail("Events counted as queued are neither counted finished nor in the queue "
					   "(negative: counted finished or in the queue more often than queued).")));
}

static void
json_string(StringInfo buf, const char *key, const char *value)
{
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
	appendStringInfoString(buf, ", ");
}

/* the staging pool (staging.c): "staging": {size, in use, most used, misses} */
static void
health_staging(StringInfo json)
{
	uint64		size;
	uint64		in_use;
	uint64		most_used;
	uint64		misses;

	staging_report(&size, &in_use, &most_used, &misses);
	appendStringInfo(json, "\"staging\": {\"size_bytes\": %llu, \"in_use_bytes\": %llu, "
					 "\"most_used_bytes\": %llu, \"misses\": %llu}, ",
					 (unsigned long long) size, (unsigned long long) in_use,
					 (unsigned long long) most_used, (unsigned long long) misses);
}

/*
 * health_queue_databases - "queue_databases": the bytes each database's
 * events take in the queue (database_oid 0: databases without a slot of
 * their own); with a database_queue_share below 100, a database past 80% of
 * its share degrades the "queue_share" check
 */
static void
health_queue_databases(StringInfo json, HealthChecks *checks)
{
	SkDatabaseShare shares[SK_RING_DATABASES];
	int			n = ring_database_shares(shares);
	uint64		limit = ring_capacity() / 100 * sk_database_queue_share;
	Oid			fullest = InvalidOid;
	uint64		fullest_bytes = 0;

	appendStringInfoString(json, "\"queue_databases\": [");
	for (int i = 0; i < n; i++)
	{
		appendStringInfo(json, "%s{\"database_oid\": %u, \"bytes\": %llu}", i > 0 ? ", " : "",
						 shares[i].database, (unsigned long long) shares[i].bytes);
		if (shares[i].bytes >= fullest_bytes)
		{
			fullest = shares[i].database;
			fullest_bytes = shares[i].bytes;
		}
	}
	appendStringInfoString(json, "], ");
	if (sk_database_queue_share < 100 && fullest_bytes >= limit / 10 * 8)
	{
		char		message[128];

		snprintf(message, sizeof(message),
				 "database %u uses over 80%% of its share of the queue", fullest);
		check(checks, "queue_share", message, SK_DEGRADED);
	}
	else
		check(checks, "queue_share", "ok", SK_HEALTHY);
}

/*
 * health_versions - the running server's version and that of the librdkafka
 * this module loaded (which may not be the one it was built against)
 */
static void
health_versions(StringInfo json)
{
	json_string(json, "postgresql_version", GetConfigOption("server_version", false, false));
	json_string(json, "librdkafka_version", rd_kafka_version_str());
}

/* health_durability - read durable mode's figures */
void
health_durability(SkDurabilityFigures *figures)
{
	memset(figures, 0, sizeof(SkDurabilityFigures));
	decoder_read_shared(&figures->decoder);
	(void) durable_find_slot(&figures->slot);
	if (figures->slot.state == SK_SLOT_READY && figures->slot.restart_lsn != InvalidXLogRecPtr &&
		!RecoveryInProgress())
	{
		XLogRecPtr	end = GetXLogInsertRecPtr();

		figures->retained = end - figures->slot.restart_lsn;
		if (end > figures->slot.confirmed)
			figures->undelivered = end - figures->slot.confirmed;
	}
}

/* durability_slot_name - the slot's state as kafka_health() names it */
static const char *
durability_slot_name(SkSlotState state)
{
	switch (state)
	{
		case SK_SLOT_READY:
			return "ready";
		case SK_SLOT_INVALIDATED:
			return "invalidated";
		case SK_SLOT_MISSING:
			return "missing";
	}
	return "unknown";
}

/*
 * durability_finding - the health check's finding and status for durable
 * mode: unhealthy while it cannot work (the worker says why) or its slot is
 * missing or was invalidated (WAL with undelivered events was removed);
 * degraded past streamkafka.wal_retention_alert of WAL kept
 */
static SkHealthStatus
durability_finding(const SkDurabilityFigures *figures, char *text, int size)
{
	bool		wal = sk_durability == SK_DURABILITY_WAL;

	if (figures->slot.state == SK_SLOT_INVALIDATED)
	{
		snprintf(text, size, "the slot \"streamkafka\" was invalidated: PostgreSQL removed "
				 "WAL it held, and the undelivered events in it are lost");
		return SK_UNHEALTHY;
	}
	if (!wal)
	{
		snprintf(text, size, "%s", figures->slot.state == SK_SLOT_READY ?
				 "memory mode; the slot's remaining events are being delivered" : "ok");
		return SK_HEALTHY;
	}
	if (figures->decoder.problem[0] != '\0' || figures->slot.state == SK_SLOT_MISSING)
	{
		snprintf(text, size, "wal, not working: %s", figures->decoder.problem[0] != '\0' ?
				 figures->decoder.problem :
				 "the slot \"streamkafka\" does not exist yet (the worker makes it); "
				 "publishing is refused until then");
		return SK_UNHEALTHY;
	}
	if (sk_wal_retention_alert_mb > 0 &&
		figures->retained > (uint64) sk_wal_retention_alert_mb * 1024 * 1024)
	{
		snprintf(text, size, "wal: more WAL kept for undelivered events than "
				 "streamkafka.wal_retention_alert");
		return SK_DEGRADED;
	}
	snprintf(text, size, "wal: ok");
	return SK_HEALTHY;
}

/* check_durability - the health check, and its figures into json */
static void
check_durability(HealthChecks *checks, StringInfo json)
{
	SkDurabilityFigures figures;
	char		text[400];
	SkHealthStatus status;

	health_durability(&figures);
	status = durability_finding(&figures, text, sizeof(text));
	json_string(json, "durability", sk_durability == SK_DURABILITY_WAL ? "wal" : "memory");
	json_string(json, "wal_slot", durability_slot_name(figures.slot.state));
	appendStringInfo(json, "\"wal_retained_bytes\": " UINT64_FORMAT
					 ", \"wal_undelivered_bytes\": " UINT64_FORMAT ", ",
					 figures.retained, figures.undelivered);
	if (figures.decoder.oldest_pending != 0)
		json_string(json, "wal_oldest_undelivered_commit",
					timestamptz_to_str(figures.decoder.oldest_pending));
	check(checks, "durability", text, status);
}

/*
 * health_report - the report as JSON text into json; returns the verdict
 */
SkHealthStatus
health_report(StringInfo json)
{
	SkStatsSnapshot snap;
	HealthChecks checks = {{0}, SK_HEALTHY};
	double		fill;
	bool		recent_dead_letters;
	StringInfoData queue_databases;
	StringInfoData durability;

	metrics_snapshot(&snap);
	fill = (double) snap.queue_bytes / (double) snap.queue_size;
	recent_dead_letters = snap.last_dead_letter_at != 0 &&
		!TimestampDifferenceExceeds(snap.last_dead_letter_at, GetCurrentTimestamp(),
									RECENT_DEAD_LETTER_MS);

	initStringInfo(&checks.json);
	appendStringInfoChar(&checks.json, '{');
	check(&checks, "worker", snap.worker_running ? "ok" : "not running",
		  snap.worker_running ? SK_HEALTHY : SK_UNHEALTHY);
	check(&checks, "producer", snap.producer_ready ? "ok" :
		  "not started (see last_error and the server log)",
		  snap.producer_ready || !snap.worker_running ? SK_HEALTHY : SK_UNHEALTHY);
	check_brokers(&checks, &snap);
	check_breaker(&checks);
	check_queue(&checks, fill);
	initStringInfo(&queue_databases);
	health_queue_databases(&queue_databases, &checks);
	check(&checks, "spill", spill_damaged_files() > 0 ?
		  "a damaged spill file was set aside at start: see the server log" : "ok",
		  spill_damaged_files() > 0 ? SK_DEGRADED : SK_HEALTHY);
	if (deadletter_no_database())
		check(&checks, "dead_letters",
			  "cannot be written: the worker could not connect to streamkafka.database "
			  "(see last_error)", SK_DEGRADED);
	else
		check(&checks, "dead_letters", recent_dead_letters ?
			  "events were dead-lettered in the last 15 minutes" : "ok",
			  recent_dead_letters ? SK_DEGRADED : SK_HEALTHY);
	initStringInfo(&durability);
	check_durability(&checks, &durability);
	check_monitor(&checks);
	check_accounting(&checks);
	appendStringInfoChar(&checks.json, '}');

	appendStringInfoChar(json, '{');
	json_string(json, "status", health_status_name(checks.status));
	appendStringInfo(json, "\"checks\": %s, ", checks.json.data);
	json_string(json, "mode", snap.mock_mode ? "mock" : "brokers");
	json_string(json, "bootstrap_servers", snap.bootstrap);
	appendStringInfo(json, "\"worker_running\": %s, ", snap.worker_running ? "true" : "false");
	appendStringInfo(json, "\"worker_pid\": %d, ", snap.worker_running ? snap.worker_pid : 0);
	appendStringInfo(json, "\"producer_ready\": %s, ", snap.producer_ready ? "true" : "false");
	appendStringInfo(json, "\"brokers_total\": %d, \"brokers_up\": %d, \"brokers_down\": %d, ",
					 snap.brokers_total, snap.brokers_up, snap.brokers_down);
	appendStringInfo(json, "\"queue_fill\": %.4f, ", fill);
	appendStringInfoString(json, queue_databases.data);
	appendStringInfoString(json, durability.data);
	health_staging(json);
	appendStringInfo(json, "\"spill_damaged_files\": %d, ", spill_damaged_files());
	health_versions(json);
	json_string(json, "last_error", snap.last_error);
	escape_json(json, "version");
	appendStringInfoString(json, ": ");
	escape_json(json, STREAMKAFKA_VERSION);
	appendStringInfoChar(json, '}');
	return checks.status;
}

PG_FUNCTION_INFO_V1(streamkafka_health);

/*
 * streamkafka_health - kafka_health()
 */
Datum
streamkafka_health(PG_FUNCTION_ARGS)
{
	StringInfoData json;

	streamkafka_require_preload();
	initStringInfo(&json);
	(void) health_report(&json);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
}

PG_FUNCTION_INFO_V1(streamkafka_durability);

/*
 * streamkafka_durability - kafka_durability(): durable mode's state and
 * figures as one row
 */
Datum
streamkafka_durability(PG_FUNCTION_ARGS)
{
	SkDurabilityFigures figures;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false};
	char		text[400];

	streamkafka_require_preload();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	health_durability(&figures);
	(void) durability_finding(&figures, text, sizeof(text));
	values[0] = CStringGetTextDatum(sk_durability == SK_DURABILITY_WAL ? "wal" : "memory");
	values[1] = CStringGetTextDatum(durability_slot_name(figures.slot.state));
	values[2] = Int64GetDatum((int64) figures.retained);
	values[3] = Int64GetDatum((int64) figures.undelivered);
	values[4] = TimestampTzGetDatum(figures.decoder.oldest_pending);
	nulls[4] = figures.decoder.oldest_pending == 0;
	values[5] = CStringGetTextDatum(text);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
