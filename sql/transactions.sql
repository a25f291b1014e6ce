-- transactions: committed events are queued at COMMIT, rolled-back ones never
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
SELECT queued AS q0 FROM kafka_stats \gset

BEGIN;
SELECT kafka_publish('regress.tx', 'one') > 0 AS published;
SELECT kafka_publish('regress.tx', 'two') > 0 AS published;
SELECT queued - :q0 AS queued_before_commit FROM kafka_stats;
COMMIT;
SELECT queued - :q0 AS queued_after_commit FROM kafka_stats;

BEGIN;
SELECT count(kafka_publish('regress.tx', 'rolled back ' || i)) FROM generate_series(1, 100) i;
ROLLBACK;
SELECT queued - :q0 AS queued_after_rollback FROM kafka_stats;

-- savepoints: a rolled-back savepoint discards only its own events
BEGIN;
SELECT kafka_publish('regress.tx', 'outer 1') > 0 AS published;
SAVEPOINT a;
SELECT kafka_publish('regress.tx', 'in a') > 0 AS published;
SAVEPOINT b;
SELECT kafka_publish('regress.tx', 'in b') > 0 AS published;
ROLLBACK TO SAVEPOINT b;
SELECT kafka_publish('regress.tx', 'in a after b') > 0 AS published;
RELEASE SAVEPOINT a;
SAVEPOINT c;
SELECT kafka_publish('regress.tx', 'in c') > 0 AS published;
ROLLBACK TO SAVEPOINT c;
COMMIT;
-- kept: outer 1, in a, in a after b
SELECT queued - :q0 AS queued_after_savepoints FROM kafka_stats;

-- nested savepoints: rolling back the outer one discards the inner one's events
BEGIN;
SAVEPOINT outer_sp;
SAVEPOINT inner_sp;
SELECT kafka_publish('regress.tx', 'inner') > 0 AS published;
RELEASE SAVEPOINT inner_sp;
ROLLBACK TO SAVEPOINT outer_sp;
COMMIT;
SELECT queued - :q0 AS queued_after_nested FROM kafka_stats;

-- PL/pgSQL exception blocks are subtransactions
DO $$
BEGIN
    PERFORM kafka_publish('regress.tx', 'before block');
    BEGIN
        PERFORM kafka_publish('regress.tx', 'in failed block');
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        PERFORM kafka_publish('regress.tx', 'in handler');
    END;
END
$$;
-- kept: before block, in handler
SELECT queued - :q0 AS queued_after_exception_block FROM kafka_stats;

-- an error later in the transaction discards everything it published
BEGIN;
SELECT kafka_publish('regress.tx', 'doomed') > 0 AS published;
SELECT 1 / 0;
COMMIT;
SELECT queued - :q0 AS queued_after_failed_tx FROM kafka_stats;

-- two-phase commit with transactional events is refused
BEGIN;
SELECT kafka_publish('regress.tx', 'prepared?') > 0 AS published;
PREPARE TRANSACTION 'sk_regress';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'sk_regress';
-- without transactional events it is allowed
BEGIN;
SELECT kafka_publish('regress.tx', 'fire now', transactional => false) > 0 AS published;
PREPARE TRANSACTION 'sk_regress_ok';
COMMIT PREPARED 'sk_regress_ok';
SELECT queued - :q0 AS queued_after_prepare FROM kafka_stats;

-- a transaction larger than the staging pool (regress.conf: 2MB): its events
-- span backend memory, a borrowed chunk and backend memory again; a savepoint
-- rolled back across a chunk boundary discards exactly its own events
SELECT queued AS q1 FROM kafka_stats \gset
BEGIN;
SELECT count(kafka_publish('regress.big', lpad(i::text, 100, '0'))) FROM generate_series(1, 9000) i;
SAVEPOINT across;
SELECT count(kafka_publish('regress.big', 'discarded ' || i)) FROM generate_series(1, 9000) i;
ROLLBACK TO SAVEPOINT across;
SELECT count(kafka_publish('regress.big', lpad(i::text, 100, '0'))) FROM generate_series(9001, 16000) i;
SELECT count(*) AS pending, count(DISTINCT value) AS distinct_values,
       min(convert_from(value, 'UTF8')::bigint) AS first, max(convert_from(value, 'UTF8')::bigint) AS last,
       sum(convert_from(value, 'UTF8')::bigint) = 16000::bigint * 16001 / 2 AS every_value_once
  FROM kafka_pending_events();
-- the pool's one chunk is lent; the next one was asked for in vain
SELECT (s->>'size_bytes')::bigint AS pool_bytes, (s->>'in_use_bytes')::bigint AS lent_bytes,
       (s->>'misses')::bigint > 0 AS pool_ran_out
  FROM (SELECT kafka_health()->'staging' AS s) h;
COMMIT;
SELECT queued - :q1 AS queued_big_transaction FROM kafka_stats;
-- given back at commit
SELECT (s->>'in_use_bytes')::bigint AS lent_bytes, (s->>'most_used_bytes')::bigint AS most_lent_bytes
  FROM (SELECT kafka_health()->'staging' AS s) h;
SELECT kafka_flush(30000) AS flushed;
