-- streamkafka 0.2.0 -> 0.3.0: defects found reading and probing 0.2.0
-- (privileges, search_path, dead-letter isolation, accounting).  CREATE
-- EXTENSION runs 0.1.0's script and the upgrade scripts after it, so new
-- installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.3.0'" to load this file. \quit

-- == functions and search_path ==
-- Every SQL and PL/pgSQL function runs with search_path = pg_catalog, pg_temp
-- and names the extension's own objects with their schema, so that objects a
-- user creates in a schema on the caller's search_path are never called.

-- kafka_topic_allowed: would kafka_publish accept this topic from this role?
CREATE FUNCTION kafka_topic_allowed(topic text) RETURNS boolean
AS 'MODULE_PATHNAME', 'streamkafka_topic_allowed'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION kafka_topic_allowed(text) IS
    'true if kafka_publish would accept the topic from the current role (streamkafka.topic_prefix and allowed_topics applied)';

-- kafka_unstream_table: remove the triggers (on the table and, for a
-- partitioned table, the TRUNCATE triggers of its partitions); false if the
-- table had none
CREATE OR REPLACE FUNCTION kafka_unstream_table(tbl regclass) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    had boolean;
    part regclass;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null'
              USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT count(*) > 0 INTO had FROM pg_catalog.pg_trigger
     WHERE tgrelid = tbl AND tgname IN ('streamkafka_changes', 'streamkafka_truncate')
       AND NOT tgisinternal;
    IF had THEN
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS streamkafka_changes ON %s', tbl);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS streamkafka_truncate ON %s', tbl);
        FOR part IN SELECT t.tgrelid::regclass FROM pg_catalog.pg_partition_tree(tbl) p
                      JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.relid
                     WHERE p.relid <> tbl AND t.tgname = 'streamkafka_truncate'
        LOOP
            EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS streamkafka_truncate ON %s', part);
        END LOOP;
    END IF;
    RETURN had;
END
$$;

-- kafka_column_arguments: trigger arguments for the columns named, each as
-- kind#attnum=name; an error names a column the table does not have
CREATE FUNCTION kafka_column_arguments(tbl regclass, kind text, names text[])
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col text;
    colnum smallint;
    args text := '';
BEGIN
    FOREACH col IN ARRAY coalesce(names, '{}') LOOP
        colnum := NULL;
        SELECT attnum INTO colnum FROM pg_catalog.pg_attribute
         WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped;
        IF colnum IS NULL THEN
            RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl
                  USING ERRCODE = 'undefined_column',
                        HINT = 'key_columns and columns name columns of the table.';
        END IF;
        args := args || ', ' || pg_catalog.quote_literal(kind || '#' || colnum || '=' || col);
    END LOOP;
    RETURN args;
END
$$;
REVOKE ALL ON FUNCTION kafka_column_arguments(regclass, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_column_arguments(regclass, text, text[]) TO streamkafka_publisher;

-- kafka_stream_table: publish the table's changes; returns the topic.  The
-- trigger arguments name columns by attribute number ("k#3=id"), so renaming
-- a column keeps the stream working.  Statement triggers are not inherited
-- by partitions: a partitioned table's partitions get a TRUNCATE trigger of
-- their own (partitions created later: call kafka_stream_table again).
CREATE OR REPLACE FUNCTION kafka_stream_table(tbl regclass,
                                              topic text DEFAULT NULL,
                                              key_columns text[] DEFAULT NULL,
                                              format text DEFAULT 'json',
                                              columns text[] DEFAULT NULL)
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
    part regclass;
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

    PERFORM @extschema@.kafka_unstream_table(tbl);
    EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_changes AFTER INSERT OR UPDATE OR DELETE ON %s '
                              'FOR EACH ROW EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s)', tbl, args);
    EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_truncate AFTER TRUNCATE ON %s '
                              'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s)', tbl, args);
    -- a TRUNCATE event carries no row: its trigger needs no columns
    FOR part IN SELECT p.relid FROM pg_catalog.pg_partition_tree(tbl) p WHERE p.relid <> tbl
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_truncate AFTER TRUNCATE ON %s '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s, %s)',
                                  part, pg_catalog.quote_literal(topic), pg_catalog.quote_literal(format));
    END LOOP;
    RETURN topic;
END
$$;
REVOKE ALL ON FUNCTION kafka_topic_allowed(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_topic_allowed(text) TO streamkafka_publisher;



-- == table streaming ==



-- == dead letters ==



-- == statistics and accounting ==



-- == monitoring ==



-- == queue ==



-- == privileges ==

