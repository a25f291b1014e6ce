-- streamkafka 0.3.0 -> 0.4.0: durable mode (streamkafka.durability = 'wal').
-- CREATE EXTENSION runs 0.1.0's script and the upgrade scripts after it, so
-- new installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.4.0'" to load this file. \quit

CREATE FUNCTION kafka_durability(
    OUT durability text,
    OUT slot text,
    OUT wal_retained_bytes bigint,
    OUT wal_undelivered_bytes bigint,
    OUT oldest_undelivered_commit timestamptz,
    OUT finding text)
RETURNS record
AS 'MODULE_PATHNAME', 'streamkafka_durability'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION kafka_durability() IS
    'durable mode: memory or wal, the slot "streamkafka" (ready, missing, invalidated), '
    'WAL it keeps and WAL of undelivered events in bytes, the oldest undelivered commit, '
    'and the health check''s finding';
REVOKE ALL ON FUNCTION kafka_durability() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_durability() TO pg_monitor, streamkafka_publisher;

-- new columns at the end: views of the user's over kafka_stats are kept
CREATE OR REPLACE VIEW kafka_stats AS
SELECT s.*, d.wal_retained_bytes, d.oldest_undelivered_commit AS wal_oldest_undelivered_commit
  FROM @extschema@.kafka_stats_snapshot() s CROSS JOIN @extschema@.kafka_durability() d;

-- == table streaming: tombstones, key changes, row filters ==

-- kafka_check_row_filter: ERROR unless the condition is a row filter the
-- stream's trigger accepts (columns, constants, built-in immutable
-- functions and operators over built-in types)
CREATE FUNCTION kafka_check_row_filter(tbl regclass, row_filter text) RETURNS void
AS 'MODULE_PATHNAME', 'streamkafka_check_row_filter'
LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION kafka_check_row_filter(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_check_row_filter(regclass, text) TO streamkafka_publisher;

-- kafka_stream_table gains "tombstones" (default true): after the delete
-- event of a row with a key, an event with that key and a null value, so a
-- compacted topic forgets the row.  Streams set up before 0.4.0 keep their
-- triggers (no tombstones) until kafka_stream_table is called again.  The
-- trigger sends an UPDATE that changes the key as a delete under the old
-- key (and its tombstone) then an insert under the new key, in every
-- stream.  "row_filter" (default none): a condition over the table's
-- columns; the stream carries only the rows that match, and an UPDATE that
-- moves a row into or out of it is an insert or a delete.  A new signature:
-- the function is dropped and made again, with the privileges 0.1.0 gave it.
DROP FUNCTION kafka_stream_table(regclass, text, text[], text, text[]);
CREATE FUNCTION kafka_stream_table(tbl regclass,
                                              topic text DEFAULT NULL,
                                              key_columns text[] DEFAULT NULL,
                                              format text DEFAULT 'json',
                                              columns text[] DEFAULT NULL,
                                              tombstones boolean DEFAULT true,
                                              row_filter text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    nsp name;
    rel name;
    keys text[] := key_columns;
    args text;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null'
              USING ERRCODE = 'null_value_not_allowed',
                    HINT = 'Name the table to stream: kafka_stream_table(''schema.table'').';
    END IF;
    SELECT c.relkind, n.nspname, c.relname INTO kind, nsp, rel
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
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
    IF NOT @extschema@.kafka_topic_allowed(topic) THEN
        RAISE EXCEPTION 'publishing to Kafka topic "%" is not allowed', topic
              USING ERRCODE = 'insufficient_privilege',
                    DETAIL = pg_catalog.format('streamkafka.allowed_topics is "%s"; every change to the table would fail.',
                                               pg_catalog.current_setting('streamkafka.allowed_topics')),
                    HINT = 'Choose an allowed topic, or ask a superuser to add this one to streamkafka.allowed_topics.';
    END IF;

    IF keys IS NULL THEN
        SELECT pg_catalog.array_agg(a.attname::text
                                    ORDER BY pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum))
          INTO keys
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = tbl AND i.indisprimary;
    END IF;
    args := pg_catalog.quote_literal(topic) || ', ' || pg_catalog.quote_literal(format)
            || @extschema@.kafka_column_arguments(tbl, 'k', keys)
            || @extschema@.kafka_column_arguments(tbl, 'c', columns);
    IF tombstones IS NULL THEN
        RAISE EXCEPTION 'tombstones must not be null'
              USING ERRCODE = 'null_value_not_allowed',
                    HINT = 'Pass true (a null-valued event after each delete) or false.';
    END IF;
    IF tombstones THEN
        args := args || ', ''tombstones''';
    END IF;
    IF row_filter IS NOT NULL THEN
        PERFORM @extschema@.kafka_check_row_filter(tbl, row_filter);
        args := args || ', ' || pg_catalog.quote_literal('w=' || row_filter);
    END IF;

    PERFORM @extschema@.kafka_unstream_table(tbl);
    EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_changes AFTER INSERT OR UPDATE OR DELETE ON %s '
                              'FOR EACH ROW EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s)', tbl, args);
    EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_truncate AFTER TRUNCATE ON %s '
                              'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s)', tbl, args);
    -- a TRUNCATE event carries no row: a partition's trigger needs no columns
    PERFORM @extschema@.kafka_partition_truncate_triggers(tbl);
    RETURN topic;
END
$$;
COMMENT ON FUNCTION kafka_stream_table(regclass, text, text[], text, text[], boolean, text) IS
    'publish a table''s INSERT, UPDATE, DELETE and TRUNCATE as Kafka events (json or debezium '
    'envelope), with a tombstone after each delete unless tombstones => false, '
    'only the rows matching row_filter if given';
REVOKE ALL ON FUNCTION kafka_stream_table(regclass, text, text[], text, text[], boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_stream_table(regclass, text, text[], text, text[], boolean, text)
    TO streamkafka_publisher;

-- kafka_snapshot_table: publish a streamed table's current rows into its
-- stream (op r / "read"), in primary-key order, one chunk at a time, each
-- read under a SHARE lock held only for that chunk; returns how many rows
-- it published.  row_filter: any condition (it runs as the caller).
CREATE FUNCTION kafka_snapshot_table(tbl regclass, row_filter text DEFAULT NULL) RETURNS bigint
AS 'MODULE_PATHNAME', 'streamkafka_snapshot_table'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kafka_snapshot_table(regclass, text) IS
    'publish a streamed table''s current rows (all, or those matching row_filter) into its stream '
    'as snapshot reads; returns how many';
REVOKE ALL ON FUNCTION kafka_snapshot_table(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_snapshot_table(regclass, text) TO streamkafka_publisher;
