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

-- kafka_pending_events: what the current transaction will publish at COMMIT
CREATE FUNCTION kafka_pending_events(
    OUT event_id bigint,
    OUT topic text,
    OUT "partition" integer,
    OUT key text,
    OUT value bytea,
    OUT headers jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streamkafka_pending_events'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- kafka_check_topic: ERROR unless the name is a legal Kafka topic
CREATE FUNCTION kafka_check_topic(topic text) RETURNS void
AS 'MODULE_PATHNAME', 'streamkafka_check_topic'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- the trigger kafka_stream_table attaches (arguments: topic, format,
-- 'k=column'..., 'c=column'...)
CREATE FUNCTION streamkafka_trigger() RETURNS trigger
AS 'MODULE_PATHNAME', 'streamkafka_trigger'
LANGUAGE C;

-- kafka_unstream_table: remove the triggers; false if the table had none
CREATE FUNCTION kafka_unstream_table(tbl regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    had boolean;
BEGIN
    SELECT count(*) > 0 INTO had FROM pg_trigger
     WHERE tgrelid = tbl AND tgname IN ('streamkafka_changes', 'streamkafka_truncate')
       AND NOT tgisinternal;
    IF had THEN
        EXECUTE format('DROP TRIGGER IF EXISTS streamkafka_changes ON %s', tbl);
        EXECUTE format('DROP TRIGGER IF EXISTS streamkafka_truncate ON %s', tbl);
    END IF;
    RETURN had;
END
$$;

-- kafka_stream_table: publish the table's changes; returns the topic
CREATE FUNCTION kafka_stream_table(tbl regclass,
                                   topic text DEFAULT NULL,
                                   key_columns text[] DEFAULT NULL,
                                   format text DEFAULT 'json',
                                   columns text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    kind "char";
    nsp name;
    rel name;
    keys text[] := key_columns;
    col text;
    args text;
BEGIN
    SELECT c.relkind, n.nspname, c.relname INTO kind, nsp, rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cannot stream %: it is not a table', tbl
              USING ERRCODE = 'wrong_object_type',
                    DETAIL = 'Only tables and partitioned tables have row changes to stream.',
                    HINT = 'Stream the tables it reads from.';
    END IF;
    IF format IS NULL OR format NOT IN ('json', 'debezium') THEN
        RAISE EXCEPTION 'unknown change event format "%"', format
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Use ''json'' (streamkafka''s envelope) or ''debezium''.';
    END IF;
    IF topic IS NULL THEN
        topic := nsp || '.' || rel;
        BEGIN
            PERFORM @extschema@.kafka_check_topic(topic);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'the default topic "%" of table % is not a legal Kafka topic name', topic, tbl
                  USING ERRCODE = 'invalid_parameter_value',
                        DETAIL = 'Kafka topic names use ASCII letters, digits, ".", "_" and "-", up to 249 characters.',
                        HINT = 'Pass a topic: kafka_stream_table(..., topic => ''name'').';
        END;
    END IF;
    PERFORM @extschema@.kafka_check_topic(topic);

    IF keys IS NULL THEN
        SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
          INTO keys
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = tbl AND i.indisprimary;
    END IF;
    FOREACH col IN ARRAY coalesce(keys, '{}') || coalesce(columns, '{}') LOOP
        IF col IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                       WHERE attrelid = tbl AND attname = col
                                         AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl
                  USING ERRCODE = 'undefined_column',
                        HINT = 'key_columns and columns name columns of the table.';
        END IF;
    END LOOP;

    args := quote_literal(topic) || ', ' || quote_literal(format);
    FOREACH col IN ARRAY coalesce(keys, '{}') LOOP
        args := args || ', ' || quote_literal('k=' || col);
    END LOOP;
    FOREACH col IN ARRAY coalesce(columns, '{}') LOOP
        args := args || ', ' || quote_literal('c=' || col);
    END LOOP;

    PERFORM @extschema@.kafka_unstream_table(tbl);
    EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_changes AFTER INSERT OR UPDATE OR DELETE ON %s '
                              'FOR EACH ROW EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s)', tbl, args);
    EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_truncate AFTER TRUNCATE ON %s '
                              'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s)', tbl, args);
    RETURN topic;
END
$$;

COMMENT ON FUNCTION kafka_publish(text, text, text, jsonb, integer, boolean) IS
    'queue a Kafka event (text value); sent only if the transaction commits unless transactional => false';
COMMENT ON FUNCTION kafka_publish(text, bytea, text, jsonb, integer, boolean) IS
    'queue a Kafka event (bytea value); sent only if the transaction commits unless transactional => false';
COMMENT ON FUNCTION kafka_publish(text, jsonb, text, jsonb, integer, boolean) IS
    'queue a Kafka event (jsonb value, sent as JSON text); sent only if the transaction commits unless transactional => false';
COMMENT ON FUNCTION kafka_flush(integer) IS
    'wait until every event queued before the call is acknowledged or given up on; false on timeout';
COMMENT ON FUNCTION kafka_pending_events() IS
    'the transactional events the current transaction will publish if it commits';
COMMENT ON FUNCTION kafka_stream_table(regclass, text, text[], text, text[]) IS
    'publish a table''s INSERT, UPDATE, DELETE and TRUNCATE as Kafka events (json or debezium envelope)';
COMMENT ON FUNCTION kafka_unstream_table(regclass) IS 'stop publishing a table''s changes';
COMMENT ON FUNCTION kafka_check_topic(text) IS 'raise an error unless the name is a legal Kafka topic';
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
REVOKE ALL ON FUNCTION kafka_stream_table(regclass, text, text[], text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_unstream_table(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION streamkafka_trigger() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_pending_events() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_stream_table(regclass, text, text[], text, text[]) TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_unstream_table(regclass) TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION streamkafka_trigger() TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_pending_events() TO streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_flush(integer) TO streamkafka_publisher;

REVOKE ALL ON FUNCTION kafka_stats_snapshot() FROM PUBLIC;
REVOKE ALL ON FUNCTION kafka_health() FROM PUBLIC;
REVOKE ALL ON kafka_stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_stats_snapshot() TO pg_monitor, streamkafka_publisher;
GRANT EXECUTE ON FUNCTION kafka_health() TO pg_monitor, streamkafka_publisher;
GRANT SELECT ON kafka_stats TO pg_monitor, streamkafka_publisher;
