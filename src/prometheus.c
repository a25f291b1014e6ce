/*
 * prometheus.c
 *		kafka_metrics_prometheus(), and the body of /metrics: the counters,
 *		queue, latency histogram, per-topic counters, breaker, brokers,
 *		consumer lag and topic replication in Prometheus' text exposition
 *		format (version 0.0.4), each family with HELP and TYPE.
 *
 * Labels stay bounded: topics are capped by streamkafka.max_topics (the
 * rest are topic="_other"), brokers by the cluster, lag rows by the groups
 * configured.  Label values are escaped as the format requires.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include <librdkafka/rdkafka.h>

#include "breaker.h"
#include "brokers.h"
#include "health.h"
#include "lag.h"
#include "metrics.h"
#include "prometheus.h"
#include "settings.h"
#include "streamkafka.h"
#include "topicstats.h"

static void
family(StringInfo out, const char *name, const char *type, const char *help)
{
	appendStringInfo(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* a label value, escaped (backslash, double quote, newline) */
static void
label_value(StringInfo out, const char *value)
{
	appendStringInfoChar(out, '"');
	for (const char *c = value; *c; c++)
	{
		if (*c == '\\' || *c == '"')
			appendStringInfoChar(out, '\\');
		if (*c == '\n')
			appendStringInfoString(out, "\\n");
		else
			appendStringInfoChar(out, *c);
	}
	appendStringInfoChar(out, '"');
}

static void
sample(StringInfo out, const char *name, double value)
{
	appendStringInfo(out, "%s %.17g\n", name, value);
}

/* a sample with one label */
static void
sample1(StringInfo out, const char *name, const char *label, const char *value, double v)
{
	appendStringInfo(out, "%s{%s=", name, label);
	label_value(out, value);
	appendStringInfo(out, "} %.17g\n", v);
}

static void
counter(StringInfo out, const char *name, const char *help, uint64 value)
{
	family(out, name, "counter", help);
	sample(out, name, (double) value);
}

static void
gauge(StringInfo out, const char *name, const char *help, double value)
{
	family(out, name, "gauge", help);
	sample(out, name, value);
}

static void
prometheus_info(StringInfo out, const SkStatsSnapshot *snap)
{
	StringInfoData health;
	SkHealthStatus status;

	initStringInfo(&health);
	status = health_report(&health);
	family(out, "streamkafka_info", "gauge",
		   "streamkafka version, mode, client id, bootstrap servers, "
		   "PostgreSQL and librdkafka versions.");
	appendStringInfoString(out, "streamkafka_info{version=");
	label_value(out, STREAMKAFKA_VERSION);
	appendStringInfoString(out, ",mode=");
	label_value(out, snap->mock_mode ? "mock" : "brokers");
	appendStringInfoString(out, ",client_id=");
	label_value(out, sk_client_id);
	appendStringInfoString(out, ",bootstrap=");
	label_value(out, snap->bootstrap);
	appendStringInfoString(out, ",postgresql_version=");
	label_value(out, GetConfigOption("server_version", false, false));
	appendStringInfoString(out, ",librdkafka_version=");
	label_value(out, rd_kafka_version_str());
	appendStringInfoString(out, "} 1\n");
	gauge(out, "streamkafka_worker_up", "1 if the sending worker runs.", snap->worker_running);
	gauge(out, "streamkafka_health_status", "kafka_health(): 0 healthy, 1 degraded, 2 unhealthy.",
		  status);
}

static void
prometheus_counters(StringInfo out, const SkStatsSnapshot *snap)
{
	counter(out, "streamkafka_events_queued_total", "Events accepted into the queue.",
			snap->queued);
	counter(out, "streamkafka_events_delivered_total", "Events acknowledged by Kafka.",
			snap->delivered);
	counter(out, "streamkafka_events_failed_total",
			"Events Kafka refused (each becomes a dead letter).", snap->failed);
	counter(out, "streamkafka_events_dropped_total", "Events discarded by the overflow policy.",
			snap->dropped);
	counter(out, "streamkafka_events_rejected_total",
			"Events refused because the queue was full or their database's share of it "
			"(streamkafka.database_queue_share) was used up (the statement or COMMIT failed).",
			snap->rejected);
	counter(out, "streamkafka_events_dead_lettered_total", "Events written to kafka_dead_letters.",
			snap->dead_lettered);
	counter(out, "streamkafka_events_retried_total",
			"Dead letters queued again that Kafka answered.", snap->retried);
	counter(out, "streamkafka_delivered_bytes_total", "Bytes of delivered events.",
			snap->delivered_bytes);
	gauge(out, "streamkafka_queue_events",
		  "Events in the queue: not yet acknowledged, dropped or dead-lettered.",
		  snap->queue_events);
	gauge(out, "streamkafka_queue_bytes", "Bytes of the queue in use.", snap->queue_bytes);
	gauge(out, "streamkafka_queue_size_bytes", "Size of the queue (streamkafka.queue_size).",
		  snap->queue_size);
	gauge(out, "streamkafka_queue_high_water_bytes",
		  "Most bytes the queue held since the last reset.", snap->queue_high_water);
}

static void
prometheus_latency(StringInfo out)
{
	SkLatencyCopy latency;
	uint64		cumulative = 0;
	const char *name = "streamkafka_delivery_latency_seconds";

	topicstats_total_latency(&latency);
	family(out, name, "histogram", "Time from an event's commit (or call) to its acknowledgement.");
	for (int i = 0; i < SK_LATENCY_BUCKETS; i++)
	{
		cumulative += latency.buckets[i];
		if (i < SK_LATENCY_BUCKETS - 1)
			appendStringInfo(out, "%s_bucket{le=\"%g\"} %llu\n", name,
							 sk_latency_bounds_ms[i] / 1000.0, (unsigned long long) cumulative);
		else
			appendStringInfo(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
							 (unsigned long long) cumulative);
	}
	appendStringInfo(out, "%s_sum %.6f\n%s_count %llu\n", name, latency.sum_us / 1e6,
					 name, (unsigned long long) cumulative);
}

static void
prometheus_topics(StringInfo out)
{
	SkTopicRow *rows;
	int			n = topicstats_rows(&rows);
	static const struct
	{
		const char *name;
		const char *help;
		size_t		offset;
	}			families[] = {
		{"streamkafka_topic_events_queued_total",
		"Events of the topic taken from the queue.", offsetof(SkTopicRow, queued)},
		{"streamkafka_topic_events_delivered_total",
		"Events of the topic acknowledged.", offsetof(SkTopicRow, delivered)},
		{"streamkafka_topic_events_failed_total",
		"Events of the topic refused by Kafka.", offsetof(SkTopicRow, failed)},
		{"streamkafka_topic_events_dropped_total",
		"Events of the topic dropped by drop_oldest.", offsetof(SkTopicRow, dropped)},
		{"streamkafka_topic_delivered_bytes_total",
		"Bytes of the topic's delivered events.", offsetof(SkTopicRow, bytes)},
	};

	for (size_t f = 0; f < lengthof(families); f++)
	{
		family(out, families[f].name, "counter", families[f].help);
		for (int i = 0; i < n; i++)
			sample1(out, families[f].name, "topic", rows[i].topic,
					(double) *(uint64 *) ((char *) &rows[i] + families[f].offset));
	}
}

static void
prometheus_breaker(StringInfo out)
{
	SkBreakerState state;
	int			failures;
	uint64		opened;

	breaker_read(&state, &failures, &opened);
	family(out, "streamkafka_breaker_state", "gauge", "1 for the circuit breaker's current state.");
	for (SkBreakerState s = SK_BREAKER_CLOSED; s <= SK_BREAKER_HALF_OPEN; s++)
		sample1(out, "streamkafka_breaker_state", "state", breaker_state_name(s), s == state);
	counter(out, "streamkafka_breaker_opened_total", "Times the circuit breaker opened.", opened);
	gauge(out, "streamkafka_breaker_consecutive_failures", "Failures since the last success.",
		  failures);
}

/* one per-broker family */
static void
broker_family(StringInfo out, const SkBrokerSnapshot *snap, const char *name, const char *type,
			  const char *help, double (*value) (const SkBroker *))
{
	family(out, name, type, help);
	for (int i = 0; i < snap->count; i++)
	{
		appendStringInfo(out, "%s{broker=", name);
		label_value(out, snap->brokers[i].name);
		appendStringInfo(out, ",id=\"%d\"} %.17g\n", snap->brokers[i].id,
						 value(&snap->brokers[i]));
	}
}

/* the values of the per-broker families */
static double
broker_up(const SkBroker *b)
{
	return brokers_state_is_up(b->state, strlen(b->state));
}

static double
broker_down(const SkBroker *b)
{
	return b->down;
}

static double
broker_rtt_avg(const SkBroker *b)
{
	return b->rtt_avg_us / 1e6;
}

static double
broker_rtt_p99(const SkBroker *b)
{
	return b->rtt_p99_us / 1e6;
}

static double
broker_connects(const SkBroker *b)
{
	return b->connects;
}

static double
broker_disconnects(const SkBroker *b)
{
	return b->disconnects;
}

static double
broker_waiting(const SkBroker *b)
{
	return b->requests_waiting;
}

static void
prometheus_brokers(StringInfo out, const SkStatsSnapshot *stats)
{
	SkBrokerSnapshot *snap = brokers_snapshot();

	family(out, "streamkafka_brokers", "gauge", "Brokers known to the producer, by state.");
	sample1(out, "streamkafka_brokers", "state", "up", stats->brokers_up);
	sample1(out, "streamkafka_brokers", "state", "down", stats->brokers_down);
	sample1(out, "streamkafka_brokers", "state", "total", stats->brokers_total);
	broker_family(out, snap, "streamkafka_broker_up", "gauge",
				  "1 if the producer's connection to the broker is up.", broker_up);
	broker_family(out, snap, "streamkafka_broker_down", "gauge",
				  "1 if the broker counts as down, as in kafka_health(): connecting for a "
				  "second or more, or no broker up.", broker_down);
	broker_family(out, snap, "streamkafka_broker_rtt_avg_seconds", "gauge",
				  "Average request round trip.", broker_rtt_avg);
	broker_family(out, snap, "streamkafka_broker_rtt_p99_seconds", "gauge",
				  "99th percentile request round trip.", broker_rtt_p99);
	broker_family(out, snap, "streamkafka_broker_connects_total", "counter",
				  "Connections made to the broker.", broker_connects);
	broker_family(out, snap, "streamkafka_broker_disconnects_total", "counter",
				  "Connections to the broker lost.", broker_disconnects);
	broker_family(out, snap, "streamkafka_broker_requests_waiting", "gauge",
				  "Requests queued to the broker or awaiting its answer.", broker_waiting);
	gauge(out, "streamkafka_batch_messages_avg", "Average messages per batch (busiest topic).",
		  snap->batch_messages_avg);
	gauge(out, "streamkafka_batch_messages_p99",
		  "99th percentile of messages per batch (busiest topic).", snap->batch_messages_p99);
}

static void
prometheus_lag(StringInfo out)
{
	SkLagSnapshot *snap = lag_snapshot();

	family(out, "streamkafka_consumer_lag", "gauge",
		   "Messages between a group's committed offset and the high watermark.");
	for (int i = 0; i < snap->nlag; i++)
	{
		appendStringInfoString(out, "streamkafka_consumer_lag{group=");
		label_value(out, snap->lag[i].group_id);
		appendStringInfoString(out, ",topic=");
		label_value(out, snap->lag[i].topic);
		appendStringInfo(out, ",partition=\"%d\"} %lld\n", snap->lag[i].partition,
						 (long long) snap->lag[i].lag);
	}
	family(out, "streamkafka_consumer_group_lag", "gauge",
		   "A group's lag on a topic, summed over partitions.");
	for (int i = 0; i < snap->nlag; i++)
	{
		bool		first;
		int64		sum = lag_group_sum(snap, i, &first);

		if (!first)
			continue;			/* printed with the group and topic's first row */
		appendStringInfoString(out, "streamkafka_consumer_group_lag{group=");
		label_value(out, snap->lag[i].group_id);
		appendStringInfoString(out, ",topic=");
		label_value(out, snap->lag[i].topic);
		appendStringInfo(out, "} %lld\n", (long long) sum);
	}
	family(out, "streamkafka_topic_under_replicated_partitions", "gauge",
		   "Partitions of the topic with fewer in-sync replicas than replicas.");
	for (int i = 0; i < snap->npartitions; i++)
	{
		bool		first;
		int			under = lag_topic_under_replicated(snap, i, &first);

		if (first)
			sample1(out, "streamkafka_topic_under_replicated_partitions", "topic",
					snap->partitions[i].topic, under);
	}
	pfree(snap);
}

/* prometheus_durability - durable mode's WAL figures */
static void
prometheus_durability(StringInfo out)
{
	SkDurabilityFigures figures;

	health_durability(&figures);
	gauge(out, "streamkafka_wal_retained_bytes",
		  "Durable mode: WAL the slot \"streamkafka\" keeps for undelivered events.",
		  (double) figures.retained);
	gauge(out, "streamkafka_wal_undelivered_bytes",
		  "Durable mode: WAL after the slot's confirmed position.", (double) figures.undelivered);
	gauge(out, "streamkafka_wal_slot_invalidated",
		  "1 if PostgreSQL invalidated the slot \"streamkafka\": undelivered events were lost.",
		  figures.slot.state == SK_SLOT_INVALIDATED);
}

/*
 * prometheus_text - every metric, appended to out
 */
void
prometheus_text(StringInfo out)
{
	SkStatsSnapshot snap;

	metrics_snapshot(&snap);
	prometheus_info(out, &snap);
	prometheus_counters(out, &snap);
	prometheus_latency(out);
	prometheus_topics(out);
	prometheus_breaker(out);
	prometheus_brokers(out, &snap);
	prometheus_lag(out);
	prometheus_durability(out);
}

PG_FUNCTION_INFO_V1(streamkafka_metrics_prometheus);

/*
 * streamkafka_metrics_prometheus - kafka_metrics_prometheus()
 */
Datum
streamkafka_metrics_prometheus(PG_FUNCTION_ARGS)
{
	StringInfoData out;

	streamkafka_require_preload();
	initStringInfo(&out);
	prometheus_text(&out);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
