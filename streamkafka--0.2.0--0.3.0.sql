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
    -- a TRUNCATE event carries no row: a partition's trigger needs no columns
    PERFORM @extschema@.kafka_partition_truncate_triggers(tbl);
    RETURN topic;
END
$$;
REVOKE ALL ON FUNCTION kafka_topic_allowed(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_topic_allowed(text) TO streamkafka_publisher;

-- == table streaming ==

-- kafka_partition_truncate_triggers: give each partition of a streamed
-- partitioned table without one a TRUNCATE trigger of its own (PostgreSQL
-- clones row triggers to new partitions, not statement triggers); returns
-- how many it made.  Run by kafka_stream_table and by an event trigger when
-- a partition is created or attached.
CREATE FUNCTION kafka_partition_truncate_triggers(tbl regclass) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    root regclass;
    args text[];
    part regclass;
    made integer := 0;
BEGIN
    -- the topmost streamed table above (or at) tbl, with its trigger's topic and format
    SELECT t.tgrelid::regclass,
           ARRAY[pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 1),
                 pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 2)]
      INTO root, args
      FROM pg_catalog.pg_partition_ancestors(tbl) WITH ORDINALITY a(relid, depth)
      JOIN pg_catalog.pg_trigger t ON t.tgrelid = a.relid AND t.tgname = 'streamkafka_changes'
                                  AND t.tgparentid = 0
     ORDER BY a.depth DESC LIMIT 1;
    IF root IS NULL THEN
        RETURN 0;
    END IF;
    FOR part IN SELECT p.relid FROM pg_catalog.pg_partition_tree(root) p
                 WHERE p.relid <> root
                   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                                    WHERE t.tgrelid = p.relid AND t.tgname = 'streamkafka_truncate')
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER streamkafka_truncate AFTER TRUNCATE ON %s '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.streamkafka_trigger(%s, %s)',
                                  part, pg_catalog.quote_literal(args[1]), pg_catalog.quote_literal(args[2]));
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
-- executable by every role: it only completes streams a publisher set up,
-- and creating the trigger still needs EXECUTE on streamkafka_trigger

-- on CREATE TABLE ... PARTITION OF and ALTER TABLE ... ATTACH PARTITION: a
-- new partition of a streamed table publishes its TRUNCATE too.  A role that
-- may not create the trigger gets a warning, never a failed command.
CREATE FUNCTION kafka_partition_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cmd record;
BEGIN
    FOR cmd IN SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands()
                WHERE object_type IN ('table', 'table column') AND classid = 'pg_catalog.pg_class'::regclass
    LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                                   WHERE c.oid = cmd.objid AND (c.relispartition OR c.relkind = 'p'));
        BEGIN
            PERFORM @extschema@.kafka_partition_truncate_triggers(cmd.objid::regclass);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'TRUNCATE of a new partition of a streamed table will not be published'
                  USING DETAIL = SQLERRM,
                        HINT = 'A role allowed to stream the table can call kafka_stream_table() on it again.';
        END;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER streamkafka_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION kafka_partition_ddl();

-- == dead letters ==

-- Every row records the database and the role that published its event
-- (current_user when it was queued).  The rows are in kafka_dead_letter_rows,
-- which only its owner (the superuser who created the extension), the
-- worker, and the database's owner (for pg_dump) read.  kafka_dead_letters is a
-- view of it showing a role the rows of the roles whose privileges it has
-- (superusers and the database's owner: all).  No publisher writes either:
-- kafka_requeue_dead_letter() marks rows.
ALTER TABLE kafka_dead_letters RENAME TO kafka_dead_letter_rows;
ALTER TABLE kafka_dead_letter_rows ADD COLUMN database name, ADD COLUMN role name;
COMMENT ON TABLE kafka_dead_letter_rows IS
    'the rows behind kafka_dead_letters: written by the worker only in the database named by streamkafka.database';
-- a function, not a join with pg_roles: LOCK TABLE on the view would lock
-- pg_authid too
CREATE FUNCTION kafka_dead_letter_visible(role name) RETURNS boolean
AS 'MODULE_PATHNAME', 'streamkafka_dead_letter_visible'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION kafka_dead_letter_visible(name) IS
    'may the current user see dead letters published by this role (its privileges, or the database''s owner''s)?';
CREATE VIEW kafka_dead_letters WITH (security_barrier) AS
SELECT r.id, r.topic, r."partition", r.key, r.value, r.headers, r.error_code, r.error_name,
       r.error, r.attempts, r.first_failed_at, r.last_failed_at, r.retry_queued_at,
       r.database, r.role
  FROM @extschema@.kafka_dead_letter_rows r
 WHERE @extschema@.kafka_dead_letter_visible(r.role);
COMMENT ON VIEW kafka_dead_letters IS
    'events Kafka refused for good, of every database, written by the worker only in the database named by streamkafka.database (empty elsewhere); a role sees the rows of the roles whose privileges it has';
COMMENT ON COLUMN kafka_dead_letters.id IS 'the event id kafka_publish returned';
COMMENT ON COLUMN kafka_dead_letters.database IS 'the database the event was published in';
COMMENT ON COLUMN kafka_dead_letters.role IS 'the role that published the event (its current_user)';

-- the requeue takes only the id: the event is read from the row, and the
-- caller must have the privileges of the role that published it
DROP FUNCTION kafka_requeue_dead_letter(bigint, text, bytea, bytea, jsonb, integer, integer);
CREATE FUNCTION kafka_requeue_dead_letter(id bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'streamkafka_requeue_dead_letter_by_id'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION kafka_requeue_dead_letter(bigint) IS
    'queue one dead letter again at once, as it is stored; false if the overflow policy dropped it';

CREATE OR REPLACE FUNCTION kafka_retry_dead_letters(topic text DEFAULT NULL,
                                                    error_name text DEFAULT NULL,
                                                    min_id bigint DEFAULT NULL,
                                                    max_id bigint DEFAULT NULL,
                                                    include_queued boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dead_letter_id bigint;
    n bigint := 0;
    home text := pg_catalog.current_setting('streamkafka.database', true);
BEGIN
    IF home IS NOT NULL AND home <> pg_catalog.current_database() THEN
        RAISE EXCEPTION 'dead letters are kept in database "%", not in "%"', home, pg_catalog.current_database()
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'The worker writes the dead letters of every database into kafka_dead_letters of the database named by streamkafka.database.',
                    HINT = pg_catalog.format('Connect to database "%s" (streamkafka.database) to read and retry them.', home);
    END IF;
    FOR dead_letter_id IN
        SELECT l.id FROM @extschema@.kafka_dead_letters l
         WHERE (kafka_retry_dead_letters.topic IS NULL OR l.topic = kafka_retry_dead_letters.topic)
           AND (kafka_retry_dead_letters.error_name IS NULL OR l.error_name = kafka_retry_dead_letters.error_name)
           AND (min_id IS NULL OR l.id >= min_id)
           AND (max_id IS NULL OR l.id <= max_id)
           AND (include_queued OR l.retry_queued_at IS NULL)
         ORDER BY l.id
    LOOP
        IF @extschema@.kafka_requeue_dead_letter(dead_letter_id) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION kafka_retry_dead_letters(text, text, bigint, bigint, boolean) IS
    'queue the chosen dead letters (of the roles whose privileges the caller has) again; each row is removed once Kafka acknowledges it';

-- == statistics and accounting ==

-- kafka_test_freeze_counter: tests only; stops one counter of the accounting
-- identity so a test can show that its checks fail
CREATE FUNCTION kafka_test_freeze_counter(counter text, frozen boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'streamkafka_test_freeze_counter'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION kafka_test_freeze_counter(text, boolean) IS
    'TESTS ONLY (falsifies kafka_stats): stop (true) or restart (false) the counter queued, delivered, dropped or dead_lettered';
REVOKE ALL ON FUNCTION kafka_test_freeze_counter(text, boolean) FROM PUBLIC;

-- kafka_test_consume: tests only; every message of a topic as a consumer of
-- the worker's cluster (the mock cluster too) reads it
CREATE FUNCTION kafka_test_consume(
    topic text,
    timeout_ms integer DEFAULT 10000,
    OUT "partition" integer,
    OUT "offset" bigint,
    OUT key bytea,
    OUT value bytea,
    OUT header_names text[],
    OUT header_values bytea[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streamkafka_test_consume'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION kafka_test_consume(text, integer) IS
    'TESTS ONLY: read every message of a topic from its beginning, exact bytes of key, value and headers';
REVOKE ALL ON FUNCTION kafka_test_consume(text, integer) FROM PUBLIC;

-- == privileges ==

-- Publishers read their dead letters through the view but neither write nor
-- lock the rows: with UPDATE they could rewrite another role's row or LOCK
-- TABLE and stall the worker.  The database's owner reads the rows, so that
-- it can pg_dump the database without being a superuser (the rows are dumped
-- with the extension).
REVOKE ALL ON kafka_dead_letter_rows FROM streamkafka_publisher;
GRANT SELECT ON kafka_dead_letter_rows TO pg_database_owner;
REVOKE ALL ON kafka_dead_letters FROM PUBLIC;
GRANT SELECT ON kafka_dead_letters TO streamkafka_publisher;
REVOKE ALL ON FUNCTION kafka_requeue_dead_letter(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_requeue_dead_letter(bigint) TO streamkafka_publisher;
