-- streamkafka 0.2.0 -> 0.3.0: defects found reading and probing 0.2.0
-- (privileges, search_path, dead-letter isolation, accounting).  CREATE
-- EXTENSION runs 0.1.0's script and the upgrade scripts after it, so new
-- installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.3.0'" to load this file. \quit

-- == functions and search_path ==



-- == table streaming ==



-- == dead letters ==



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



-- == monitoring ==



-- == queue ==



-- == privileges ==

