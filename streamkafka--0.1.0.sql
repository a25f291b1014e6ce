-- streamkafka 0.1.0: publish events to Apache Kafka from SQL
\echo Use "CREATE EXTENSION streamkafka" to load this file. \quit

-- kafka_publish: queue one event; returns its id.  transactional (default):
-- sent only if the transaction commits; false: queued at once.
CREATE FUNCTION kafka_publish(topic text, value text,
                              key text DEFAULT NULL,
                              headers jsonb DEFAULT NULL,
                              "partition" integer DEFAULT NULL,
                              transactional boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'streamkafka_publish'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION kafka_publish(topic text, value bytea,
                              key text DEFAULT NULL,
                              headers jsonb DEFAULT NULL,
                              "partition" integer DEFAULT NULL,
                              transactional boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'streamkafka_publish'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION kafka_publish(topic text, value jsonb,
                              key text DEFAULT NULL,
                              headers jsonb DEFAULT NULL,
                              "partition" integer DEFAULT NULL,
                              transactional boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'streamkafka_publish_jsonb'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

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
    OUT last_error_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'streamkafka_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW kafka_stats AS SELECT * FROM kafka_stats_snapshot();

-- kafka_flush: wait until every event queued before the call is acknowledged
-- or given up on (true), or until timeout_ms passed (false)
CREATE FUNCTION kafka_flush(timeout_ms integer DEFAULT 30000) RETURNS boolean
AS 'MODULE_PATHNAME', 'streamkafka_flush'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION kafka_health() RETURNS jsonb
AS 'MODULE_PATHNAME', 'streamkafka_health'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION kafka_publish(text, text, text, jsonb, integer, boolean) IS
    'queue a Kafka event (text value); sent only if the transaction commits unless transactional => false';
COMMENT ON FUNCTION kafka_publish(text, bytea, text, jsonb, integer, boolean) IS
    'queue a Kafka event (bytea value); sent only if the transaction commits unless transactional => false';
COMMENT ON FUNCTION kafka_publish(text, jsonb, text, jsonb, integer, boolean) IS
    'queue a Kafka event (jsonb value, sent as JSON text); sent only if the transaction commits unless transactional => false';
COMMENT ON FUNCTION kafka_flush(integer) IS
    'wait until every event queued before the call is acknowledged or given up on; false on timeout';
COMMENT ON VIEW kafka_stats IS 'streamkafka delivery counters and queue depth (one row)';
COMMENT ON FUNCTION kafka_health() IS 'streamkafka health: status, worker, producer, brokers, queue';

-- Sending data out of the database is a privilege: only roles granted
-- streamkafka_publisher (and superusers) may publish.  Metrics are for
-- pg_monitor.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'streamkafka_publisher') THEN
        CREATE ROLE streamkafka_publisher NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION kafka_publish(text, text, text, jsonb, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_publish(text, bytea, text, jsonb, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_publish(text, jsonb, text, jsonb, integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_publish(text, text, text, jsonb, integer, boolean) TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_publish(text, bytea, text, jsonb, integer, boolean) TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_publish(text, jsonb, text, jsonb, integer, boolean) TO streamkafka_publisher;
REVOKE ALL ON FUNCTION kafka_flush(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_flush(integer) TO streamkafka_publisher;

REVOKE ALL ON FUNCTION kafka_stats_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_health() FROM PUBLIC;
REVOKE ALL ON kafka_stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_stats_snapshot() TO pg_monitor, streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_health() TO pg_monitor, streamkafka_publisher;
GRANT SELECT ON kafka_stats TO pg_monitor, streamkafka_publisher;
