-- streamkafka 0.1.0 -> 0.2.0: circuit breaker, dead letters, kafka_stats
-- gains dead_lettered and retried.  CREATE EXTENSION runs 0.1.0's script and
-- then this one, so new installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.2.0'" to load this file. \quit

DROP VIEW kafka_stats;
DROP FUNCTION kafka_stats_snapshot();

CREATE FUNCTION kafka_stats_snapshot(
    OUT queued bigint,
    OUT delivered bigint,
    OUT failed bigint,
    OUT dropped bigint,
    OUT rejected bigint,
    OUT queue_events bigint,
    OUT queue_bytes bigint,
    OUT queue_size bigint,
    OUT delivered_bytes bigint,
    OUT last_delivered_at timestamptz,
    OUT last_error text,
    OUT last_error_at timestamptz,
    OUT dead_lettered bigint,
    OUT retried bigint,
    OUT sent bigint,
    OUT queue_high_water_bytes bigint,
    OUT latency_p50_ms double precision,
    OUT latency_p95_ms double precision,
    OUT latency_p99_ms double precision,
    OUT latency_max_ms double precision,
    OUT batch_messages_avg double precision,
    OUT batch_messages_p99 double precision,
    OUT broker_connects bigint,
    OUT broker_disconnects bigint,
    OUT stats_reset_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'streamkafka_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW kafka_stats AS SELECT * FROM kafka_stats_snapshot();

CREATE FUNCTION kafka_stats_reset() RETURNS void
AS 'MODULE_PATHNAME', 'streamkafka_stats_reset'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION kafka_stats_reset() IS
    'start kafka_stats and kafka_topic_stats counting again (queued restarts at what the queue holds)';

CREATE FUNCTION kafka_topic_stats_snapshot(
    OUT topic text,
    OUT queued bigint,
    OUT sent bigint,
    OUT delivered bigint,
    OUT failed bigint,
    OUT dropped bigint,
    OUT dead_lettered bigint,
    OUT bytes bigint,
    OUT last_delivered_at timestamptz,
    OUT last_error text,
    OUT last_error_at timestamptz,
    OUT latency_p50_ms double precision,
    OUT latency_p95_ms double precision,
    OUT latency_p99_ms double precision,
    OUT latency_max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streamkafka_topic_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE VIEW kafka_topic_stats AS SELECT * FROM kafka_topic_stats_snapshot();
COMMENT ON VIEW kafka_topic_stats IS
    'delivery counters and latency per topic (streamkafka.max_topics of them; the rest in one row named _other)';

CREATE FUNCTION kafka_brokers_snapshot(
    OUT id integer,
    OUT name text,
    OUT state text,
    OUT rtt_avg_ms double precision,
    OUT rtt_p99_ms double precision,
    OUT requests_waiting bigint,
    OUT connects bigint,
    OUT disconnects bigint,
    OUT last_error text,
    OUT last_error_at timestamptz,
    OUT refreshed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streamkafka_brokers'
LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE VIEW kafka_brokers AS SELECT * FROM kafka_brokers_snapshot();
COMMENT ON VIEW kafka_brokers IS 'the brokers as the producer sees them (librdkafka statistics, every second)';

CREATE FUNCTION kafka_consumer_lag_snapshot(
    OUT group_id text,
    OUT topic text,
    OUT "partition" integer,
    OUT committed_offset bigint,
    OUT high_watermark bigint,
    OUT lag bigint,
    OUT refreshed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streamkafka_consumer_lag'
LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE VIEW kafka_consumer_lag AS SELECT * FROM kafka_consumer_lag_snapshot();
COMMENT ON VIEW kafka_consumer_lag IS
    'lag of the consumer groups in streamkafka.lag_groups, refreshed by the monitor worker every streamkafka.lag_interval_ms';

CREATE FUNCTION kafka_topics_snapshot(
    OUT topic text,
    OUT "partition" integer,
    OUT leader integer,
    OUT replicas integer[],
    OUT in_sync_replicas integer[],
    OUT under_replicated boolean,
    OUT refreshed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streamkafka_topics'
LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE VIEW kafka_topics AS SELECT * FROM kafka_topics_snapshot();
COMMENT ON VIEW kafka_topics IS
    'partitions, leaders and replicas of the topics streamkafka publishes to, refreshed with the lag';

CREATE FUNCTION kafka_metrics_prometheus() RETURNS text
AS 'MODULE_PATHNAME', 'streamkafka_metrics_prometheus'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION kafka_metrics_prometheus() IS
    'every streamkafka metric in Prometheus text exposition format';
COMMENT ON VIEW kafka_stats IS
    'streamkafka delivery counters and queue depth (one row); queued = delivered + dropped + dead_lettered + queue_events';

CREATE FUNCTION kafka_breaker_snapshot(
    OUT state text,
    OUT since timestamptz,
    OUT consecutive_failures integer,
    OUT opened_count bigint,
    OUT last_error text,
    OUT next_probe_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'streamkafka_breaker'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW kafka_breaker AS SELECT * FROM kafka_breaker_snapshot();
COMMENT ON VIEW kafka_breaker IS
    'the worker''s circuit breaker: closed, open (events wait in the queue) or half_open (one probe event)';

CREATE TABLE kafka_dead_letters (
    id bigint PRIMARY KEY,
    topic text NOT NULL,
    "partition" integer,
    key bytea,
    value bytea,
    headers jsonb,
    error_code integer NOT NULL,
    error_name text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at timestamptz NOT NULL,
    retry_queued_at timestamptz
);
COMMENT ON TABLE kafka_dead_letters IS
    'events Kafka refused for good, written by the worker (in the database named by streamkafka.database); id is the event id';
SELECT pg_catalog.pg_extension_config_dump('kafka_dead_letters', '');

CREATE FUNCTION kafka_requeue_dead_letter(id bigint, topic text, key bytea, value bytea,
                                          headers jsonb, "partition" integer, attempts integer)
RETURNS void
AS 'MODULE_PATHNAME', 'streamkafka_requeue_dead_letter'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION kafka_requeue_dead_letter(bigint, text, bytea, bytea, jsonb, integer, integer) IS
    'queue one dead letter again with its id (used by kafka_retry_dead_letters)';

CREATE FUNCTION kafka_retry_dead_letters(topic text DEFAULT NULL,
                                         error_name text DEFAULT NULL,
                                         min_id bigint DEFAULT NULL,
                                         max_id bigint DEFAULT NULL,
                                         include_queued boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    d @extschema@.kafka_dead_letters;
    n bigint := 0;
BEGIN
    FOR d IN SELECT * FROM @extschema@.kafka_dead_letters l
              WHERE (kafka_retry_dead_letters.topic IS NULL OR l.topic = kafka_retry_dead_letters.topic)
                AND (kafka_retry_dead_letters.error_name IS NULL OR l.error_name = kafka_retry_dead_letters.error_name)
                AND (min_id IS NULL OR l.id >= min_id)
                AND (max_id IS NULL OR l.id <= max_id)
                AND (include_queued OR l.retry_queued_at IS NULL)
              ORDER BY l.id
              FOR UPDATE
    LOOP
        PERFORM @extschema@.kafka_requeue_dead_letter(d.id, d.topic, d.key, d.value,
                                                      d.headers, d."partition", d.attempts);
        UPDATE @extschema@.kafka_dead_letters SET retry_queued_at = now() WHERE id = d.id;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION kafka_retry_dead_letters(text, text, bigint, bigint, boolean) IS
    'queue chosen dead letters again (when the transaction commits); each row is removed once Kafka acknowledges it';

REVOKE ALL ON FUNCTION kafka_stats_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_breaker_snapshot() FROM PUBLIC;
REVOKE ALL ON kafka_stats FROM PUBLIC;
REVOKE ALL ON kafka_breaker FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_stats_snapshot() TO pg_monitor, streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_breaker_snapshot() TO pg_monitor, streamkafka_publisher;
GRANT SELECT ON kafka_stats TO pg_monitor, streamkafka_publisher;
GRANT SELECT ON kafka_breaker TO pg_monitor, streamkafka_publisher;
REVOKE ALL ON FUNCTION kafka_stats_reset() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_topic_stats_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_brokers_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_consumer_lag_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_topics_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_metrics_prometheus() FROM PUBLIC;
REVOKE ALL ON kafka_topic_stats, kafka_brokers, kafka_consumer_lag, kafka_topics FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_topic_stats_snapshot(), kafka_brokers_snapshot(),
    kafka_consumer_lag_snapshot(), kafka_topics_snapshot(), kafka_metrics_prometheus()
    TO pg_monitor, streamkafka_publisher;
GRANT SELECT ON kafka_topic_stats, kafka_brokers, kafka_consumer_lag, kafka_topics
    TO pg_monitor, streamkafka_publisher;

REVOKE ALL ON kafka_dead_letters FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_requeue_dead_letter(bigint, text, bytea, bytea, jsonb, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_retry_dead_letters(text, text, bigint, bigint, boolean) FROM PUBLIC;
GRANT SELECT, UPDATE ON kafka_dead_letters TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_requeue_dead_letter(bigint, text, bytea, bytea, jsonb, integer, integer) TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_retry_dead_letters(text, text, bigint, bigint, boolean) TO streamkafka_publisher;

CREATE FUNCTION kafka_mock_fault(fault text, value integer DEFAULT 0, error_code integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'streamkafka_mock_fault'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION kafka_mock_fault(text, integer, integer) IS
    'embedded mock cluster only: brokers_down, brokers_up, produce_errors (value errors of error_code), rtt (value ms)';
REVOKE ALL ON FUNCTION kafka_mock_fault(text, integer, integer) FROM PUBLIC;

COMMENT ON FUNCTION kafka_flush(integer) IS
    'wait until every event queued before the call is acknowledged or dead-lettered; false on timeout';
