-- streamkafka 0.2.0 -> 0.3.0: defects found reading and probing 0.2.0
-- (privileges, search_path, dead-letter isolation, accounting).  CREATE
-- EXTENSION runs 0.1.0's script and the upgrade scripts after it, so new
-- installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.3.0'" to load this file. \quit

-- == functions and search_path ==



-- == table streaming ==



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



-- == monitoring ==



-- == queue ==



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
