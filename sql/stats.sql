-- stats: the shape of kafka_stats and kafka_health()
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_stats'::regclass AND attnum > 0
 ORDER BY attnum;

SELECT queued >= delivered + dropped + dead_lettered AS consistent,
       queue_events = queued - delivered - dropped - dead_lettered AS queue_events_adds_up,
       queue_size = 4 * 1024 * 1024 AS queue_size_from_setting
  FROM kafka_stats;

SELECT jsonb_object_keys(kafka_health()) AS health_keys ORDER BY 1;
-- the versions running: this server's and the librdkafka the module loaded
SELECT kafka_health()->>'postgresql_version' = current_setting('server_version')
         AS postgresql_version,
       kafka_health()->>'librdkafka_version' ~ '^[0-9]+\.[0-9]+\.[0-9]+' AS librdkafka_version;

-- the circuit breaker: closed while the mock cluster answers
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_breaker'::regclass AND attnum > 0
 ORDER BY attnum;
SELECT state, consecutive_failures, opened_count, next_probe_at IS NULL AS no_probe_due
  FROM kafka_breaker;

-- dead letters: the table's shape; nothing to retry
SELECT attname, format_type(atttypid, atttypmod), attnotnull
  FROM pg_attribute WHERE attrelid = 'kafka_dead_letters'::regclass AND attnum > 0
 ORDER BY attnum;
SELECT kafka_retry_dead_letters() AS retried_nothing;
SELECT try($$SELECT kafka_mock_fault('nonsense')$$);
SELECT try($$SELECT kafka_mock_fault(NULL)$$);
SELECT kafka_health()->>'status' AS status,
       kafka_health()->'worker_running' AS worker_running,
       kafka_health()->'producer_ready' AS producer_ready;
-- what is not ok, and why (earlier files wrote dead letters)
SELECT key AS check, value AS finding FROM jsonb_each_text(kafka_health()->'checks')
 WHERE value NOT IN ('ok', 'connecting') ORDER BY 1;

-- privileges: publishing is not for PUBLIC; metrics are for pg_monitor
CREATE ROLE sk_plain;
CREATE ROLE sk_monitor IN ROLE pg_monitor;
CREATE ROLE sk_app IN ROLE streamkafka_publisher;
SET ROLE sk_plain;
SELECT try($$SELECT kafka_publish('t', 'v')$$);
SELECT try($$SELECT * FROM kafka_stats$$);
SET ROLE sk_monitor;
SELECT try($$SELECT * FROM kafka_stats$$), try($$SELECT kafka_health()$$),
       try($$SELECT * FROM kafka_breaker$$);
SELECT try($$SELECT kafka_publish('t', 'v')$$);
SELECT try($$SELECT * FROM kafka_dead_letters$$);
SELECT try($$SELECT kafka_mock_fault('rtt', 1)$$);
SET ROLE sk_app;
SELECT try($$SELECT kafka_publish('regress.roles', 'v')$$);
SELECT try($$SELECT count(*) FROM kafka_dead_letters$$), try($$SELECT kafka_retry_dead_letters()$$);
RESET ROLE;
DROP ROLE sk_plain, sk_monitor, sk_app;
