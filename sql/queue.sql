-- queue: the transaction buffer gives borrowed staging chunks back whatever
-- happened to the events in them
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

-- a savepoint rolled back every event of the transaction (more than the
-- first 64kB chunk, so a 2MB chunk was borrowed from the pool)
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_before;
BEGIN;
SAVEPOINT s;
SELECT count(kafka_publish('regress.queue', repeat('x', 1000))) FROM generate_series(1, 200);
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint > 0 AS chunk_lent;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_after_savepoint;
\c
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_after_session;

-- an exception block caught an error after publishing
DO $$
BEGIN
    BEGIN
        PERFORM kafka_publish('regress.queue', repeat('y', 1000)) FROM generate_series(1, 200);
        RAISE division_by_zero;
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
END
$$;
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_after_exception;
\c
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_after_session;
-- the pool still lends its chunk: a transaction that keeps its events borrows it
BEGIN;
SELECT count(kafka_publish('regress.queue', repeat('z', 1000))) FROM generate_series(1, 200);
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_while_kept;
ROLLBACK;
SELECT (kafka_health()->'staging'->>'in_use_bytes')::bigint AS lent_after_rollback;
