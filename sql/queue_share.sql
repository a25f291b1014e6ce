-- queue_share: one database cannot fill the queue that every database's
-- events share (streamkafka.database_queue_share)
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
SELECT current_database() AS regress_db \gset
CREATE DATABASE sk_noisy;
\c sk_noisy
CREATE EXTENSION streamkafka;
-- publish 1 kB events at once until the queue refuses; n: how many it took
CREATE FUNCTION fill(max_events integer, OUT n integer, OUT refusal text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    n := 0;
    WHILE n < max_events LOOP
        PERFORM kafka_publish('noisy.events', repeat('x', 1000), transactional => false);
        n := n + 1;
    END LOOP;
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS refusal = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL;
    refusal := refusal || ': ' || SQLERRM;
END
$$;
\c :regress_db
-- the brokers are down: events wait in the 4MB queue
SELECT kafka_mock_fault('brokers_down');
ALTER SYSTEM SET streamkafka.database_queue_share = 25;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);

\c sk_noisy
SELECT n BETWEEN 700 AND 1000 AS stopped_near_a_quarter, refusal,
       detail LIKE 'Its events may take 25% of the queue (streamkafka.database_queue_share)%'
           AS detail_names_the_setting
  FROM fill(5000);
-- health shows which database holds the queue, and that it is near its share
SELECT kafka_health()->'checks'->>'queue_share' LIKE 'database % uses over 80% of its share of the queue'
           AS share_check_degraded,
       (SELECT (d->>'bytes')::bigint BETWEEN 700000 AND 1048576
          FROM jsonb_array_elements(kafka_health()->'queue_databases') d
         WHERE (d->>'database_oid')::oid = (SELECT oid FROM pg_database WHERE datname = current_database()))
           AS noisy_bytes_within_share;

-- another database still publishes, in and out of transactions
\c :regress_db
SELECT count(kafka_publish('quiet.events', repeat('y', 1000), transactional => false)) AS quiet_published
  FROM generate_series(1, 300);
BEGIN;
SELECT count(kafka_publish('quiet.events', repeat('y', 1000))) AS quiet_in_transaction
  FROM generate_series(1, 300);
COMMIT;

-- once Kafka takes the events, the share is free again
SELECT kafka_mock_fault('brokers_up');
SELECT kafka_flush(60000) AS flushed;
\c sk_noisy
SELECT n AS published_after_delivery, refusal FROM fill(100);

\c :regress_db
ALTER SYSTEM RESET streamkafka.database_queue_share;
SELECT pg_reload_conf();
SELECT kafka_flush(60000) AS flushed;
DROP DATABASE sk_noisy;
