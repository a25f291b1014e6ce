-- accounting: every counter of kafka_stats against an independent truth on
-- the embedded mock cluster (what a consumer reads back, byte for byte; the
-- rows of kafka_dead_letters; the events missing under a drop policy), the
-- breaker's transitions, and the identity's checks failing when a counter
-- is frozen (kafka_test_freeze_counter, tests only)
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

-- the identity as sql/stats.sql checks it, and as kafka_health() does
CREATE FUNCTION acct_identity(OUT queue_events_adds_up boolean, OUT difference bigint,
                              OUT health_check text)
LANGUAGE sql AS $$
    SELECT queue_events = queued - delivered - dropped - dead_lettered,
           queued - delivered - dropped - dead_lettered - queue_events,
           kafka_health()->'checks'->>'accounting'
      FROM kafka_stats
$$;

SELECT wait_for($$SELECT (kafka_health()->>'producer_ready')::boolean$$, watch_progress => true)
       AS producer_ready;
SELECT wait_for($$SELECT kafka_health()->'checks'->>'dead_letters' NOT LIKE 'cannot be written%'$$,
                watch_progress => true)
       AS dead_letters_writable;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT * FROM acct_identity();

-- 1. the exact bytes of keys, values and headers as a consumer reads them
SELECT delivered AS delivered0 FROM kafka_stats \gset
SELECT kafka_publish('acct.bytes', 'plain', key => 'k1', transactional => false) > 0 AS published;
SELECT kafka_publish('acct.bytes', 'ünïcödé ✓', key => 'ключ', transactional => false) > 0 AS published;
SELECT kafka_publish('acct.bytes', (SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), ''), 'hex')
                                      FROM generate_series(0, 255) b),
                     key => '', headers => '{"a": "1", "b": null, "c": "ü"}', transactional => false) > 0 AS published;
SELECT kafka_publish('acct.bytes', NULL::text, key => 'tombstone', transactional => false) > 0 AS published;
BEGIN;
SELECT kafka_publish('acct.bytes', 'kept-1', key => 'x') > 0 AS published;
SAVEPOINT s;
SELECT kafka_publish('acct.bytes', 'rolled-back', key => 'y') > 0 AS published;
ROLLBACK TO SAVEPOINT s;
SELECT kafka_publish('acct.bytes', 'kept-2', key => 'z', headers => '{"h": "v"}') > 0 AS published;
COMMIT;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT key, CASE WHEN length(value) = 256 THEN 'md5 ' || md5(value)
                ELSE convert_from(value, 'UTF8') END AS value,
       header_names, header_values
  FROM kafka_test_consume('acct.bytes') ORDER BY key;
SELECT md5(value) = md5((SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), ''), 'hex')
                          FROM generate_series(0, 255) b)) AS all_256_bytes_intact
  FROM kafka_test_consume('acct.bytes') WHERE key = '';
-- delivered counts what the consumer read
SELECT (SELECT delivered - :delivered0 FROM kafka_stats) AS delivered,
       (SELECT count(*) FROM kafka_test_consume('acct.bytes')) AS consumed;
SELECT * FROM acct_identity();

-- 2. many events: every one arrives once, with its own key and value
SELECT count(kafka_publish('acct.many', 'value-' || g, key => 'key-' || g,
                           headers => jsonb_build_object('n', g::text), transactional => false))
  FROM generate_series(1, 2000) g;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT count(*) AS consumed,
       count(DISTINCT key) AS distinct_keys,
       count(*) FILTER (WHERE convert_from(value, 'UTF8') =
                              'value-' || substr(convert_from(key, 'UTF8'), 5)
                          AND convert_from(header_values[1], 'UTF8') =
                              substr(convert_from(key, 'UTF8'), 5)) AS intact
  FROM kafka_test_consume('acct.many');

-- 3. queue_events is what is sent once the brokers return; dropped is what
-- the consumer misses under drop_newest
SET streamkafka.overflow = drop_newest;
ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 300;
SELECT pg_reload_conf();
SELECT delivered AS delivered0, dropped AS dropped0 FROM kafka_stats \gset
SELECT kafka_mock_fault('brokers_down');
SELECT count(kafka_publish('acct.outage', repeat('x', 1000), key => g::text,
                           transactional => false))
  FROM generate_series(1, 6000) g;
SELECT queue_events AS waiting, dropped - :dropped0 AS dropped FROM kafka_stats \gset
SELECT :dropped > 0 AS some_dropped, :waiting + :dropped = 6000 AS waiting_plus_dropped;
SELECT kafka_mock_fault('brokers_up');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT (SELECT delivered - :delivered0 FROM kafka_stats) = :waiting AS delivered_what_waited,
       (SELECT count(*) FROM kafka_test_consume('acct.outage')) = :waiting AS consumer_read_what_waited,
       (SELECT count(DISTINCT key) FROM kafka_test_consume('acct.outage')) = :waiting AS no_duplicates;
RESET streamkafka.overflow;
SELECT * FROM acct_identity();

-- 4. the breaker: three failed requests open it; the probe closes it.  The
-- refused events are dead letters, counted once each
ALTER SYSTEM SET streamkafka.breaker_failure_threshold = 3;
ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 600000;
ALTER SYSTEM SET streamkafka.retries = 0;
ALTER SYSTEM SET streamkafka.enable_idempotence = off;
SELECT pg_reload_conf();
-- the worker rebuilds its producer on the reload (nothing shows it in SQL: a
-- worker that had not, retrying, would fail the test below, never pass it)
SELECT pg_sleep(1);
SELECT wait_for($$SELECT (kafka_health()->>'producer_ready')::boolean$$, watch_progress => true)
       AS reloaded;
SELECT kafka_publish('acct.breaker', 'warm-up', transactional => false) > 0 AS published;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT failed AS failed0, dead_lettered AS dead0, delivered AS delivered0 FROM kafka_stats \gset
SELECT opened_count AS opened0 FROM kafka_breaker \gset
SELECT count(*) AS rows0 FROM kafka_dead_letters \gset
SELECT state, consecutive_failures FROM kafka_breaker;
SELECT kafka_mock_fault('produce_errors', 3, 19);
SELECT kafka_publish('acct.breaker', 'bad-1', key => 'k1', transactional => false) > 0 AS published;
SELECT wait_for('SELECT failed >= ' || :failed0 + 1 || ' FROM kafka_stats', watch_progress => true)
       AS refused_1;
SELECT state, consecutive_failures FROM kafka_breaker;
SELECT kafka_publish('acct.breaker', 'bad-2', key => 'k2', transactional => false) > 0 AS published;
SELECT wait_for('SELECT failed >= ' || :failed0 + 2 || ' FROM kafka_stats', watch_progress => true)
       AS refused_2;
SELECT kafka_publish('acct.breaker', 'bad-3', key => 'k3', transactional => false) > 0 AS published;
SELECT wait_for($$SELECT state = 'open' FROM kafka_breaker$$, watch_progress => true) AS opened;
SELECT state, consecutive_failures, opened_count - :opened0 AS opened
  FROM kafka_breaker;
SELECT wait_for('SELECT dead_lettered = ' || :dead0 + 3 || ' FROM kafka_stats',
                watch_progress => true) AS dead_lettered;
SELECT (SELECT dead_lettered - :dead0 FROM kafka_stats) AS dead_lettered,
       (SELECT count(*) - :rows0 FROM kafka_dead_letters) AS new_rows;
SELECT convert_from(value, 'UTF8') AS value, convert_from(key, 'UTF8') AS key, error_name
  FROM kafka_dead_letters WHERE topic = 'acct.breaker' ORDER BY id;
-- while open, events wait
SELECT count(kafka_publish('acct.breaker', 'held-' || g, transactional => false))
  FROM generate_series(1, 5) g;
SELECT pg_sleep(0.5);
SELECT state, queue_events FROM kafka_breaker, kafka_stats;
ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 300;
SELECT pg_reload_conf();
SELECT wait_for($$SELECT state = 'closed' FROM kafka_breaker$$, watch_progress => true) AS closed;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT delivered - :delivered0 AS delivered FROM kafka_stats;
SELECT convert_from(value, 'UTF8') AS value
  FROM kafka_test_consume('acct.breaker') ORDER BY 1;
SELECT * FROM acct_identity();
-- a reload that rebuilds the producer starts the new one with a closed
-- breaker: the failures that opened it were the old producer's (here its
-- brokers were down, as when streamkafka.brokers named the wrong ones; the
-- new producer's mock cluster is up), and the recovery timeout is not waited.
-- The events the old producer held are taken back and sent by the new one.
ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 600000;
SELECT pg_reload_conf();
SELECT kafka_mock_fault('brokers_down');
-- with nothing waiting, brokers gone away are no failure (an idle producer's
-- brokers go away when Kafka closes idle connections): three statistics
-- reports later the breaker is closed, with no failure counted
SELECT pg_sleep(3);
SELECT state, consecutive_failures FROM kafka_breaker;
SELECT count(kafka_publish('acct.rebuilt', 'held-' || g, transactional => false))
  FROM generate_series(1, 3) g;
SELECT wait_for($$SELECT state = 'open' FROM kafka_breaker$$, watch_progress => true) AS opened;
-- events wait and no broker is up: the brokers librdkafka tried are down,
-- each with streamkafka_broker_down 1 (the per-broker alert's input)
SELECT wait_for($$SELECT count(*) > 0
                    FROM regexp_split_to_table(kafka_metrics_prometheus(), E'\n') AS line
                   WHERE line ~ '^streamkafka_broker_down\{.*\} 1$'$$) AS broker_down_metric;
ALTER SYSTEM SET streamkafka.linger_ms = 2;
ALTER SYSTEM SET streamkafka.shutdown_timeout_ms = 0;
SELECT pg_reload_conf();
SELECT wait_for($$SELECT state = 'closed' FROM kafka_breaker$$, watch_progress => true) AS closed;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT convert_from(value, 'UTF8') AS value
  FROM kafka_test_consume('acct.rebuilt') ORDER BY 1;
ALTER SYSTEM RESET streamkafka.linger_ms;
ALTER SYSTEM RESET streamkafka.shutdown_timeout_ms;
ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 300;
SELECT pg_reload_conf();
SELECT * FROM acct_identity();

-- 5. a frozen counter: the identity's checks now fail, by the frozen count
SELECT kafka_test_freeze_counter('delivered');
SELECT count(kafka_publish('acct.frozen', 'f' || g, transactional => false))
  FROM generate_series(1, 3) g;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT * FROM acct_identity();
SELECT kafka_health()->>'status' AS status;
SELECT kafka_test_freeze_counter('delivered', false);
SELECT kafka_stats_reset();
SELECT * FROM acct_identity();

SELECT kafka_test_freeze_counter('dead_lettered');
SELECT kafka_mock_fault('produce_errors', 1, 19);
SELECT kafka_publish('acct.frozen', 'refused', transactional => false) > 0 AS published;
SELECT wait_for($$SELECT count(*) = 1 FROM kafka_dead_letters
                   WHERE convert_from(value, 'UTF8') = 'refused'$$, watch_progress => true)
       AS dead_letter_written;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT * FROM acct_identity();
SELECT kafka_test_freeze_counter('dead_lettered', false);
SELECT kafka_stats_reset();

SELECT kafka_test_freeze_counter('queued');
SELECT kafka_publish('acct.frozen', 'unqueued', transactional => false) > 0 AS published;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT * FROM acct_identity();
SELECT kafka_test_freeze_counter('queued', false);
SELECT kafka_stats_reset();
SELECT * FROM acct_identity();

-- the hook is for superusers and known counters only
SELECT kafka_test_freeze_counter('sent');
CREATE ROLE acct_monitor IN ROLE pg_monitor;
SET ROLE acct_monitor;
SELECT kafka_test_freeze_counter('delivered');
SELECT count(*) FROM kafka_test_consume('acct.bytes');
RESET ROLE;
DROP ROLE acct_monitor;

ALTER SYSTEM RESET streamkafka.breaker_failure_threshold;
ALTER SYSTEM RESET streamkafka.breaker_recovery_timeout_ms;
ALTER SYSTEM RESET streamkafka.retries;
ALTER SYSTEM RESET streamkafka.enable_idempotence;
SELECT pg_reload_conf();
