-- stats: the shape of kafka_stats and kafka_health()
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_stats'::regclass AND attnum > 0
 ORDER BY attnum;

SELECT queued >= delivered + failed + dropped AS consistent,
       queue_events = queued - delivered - failed - dropped AS queue_events_adds_up,
       queue_size = 4 * 1024 * 1024 AS queue_size_from_setting
  FROM kafka_stats;

SELECT jsonb_object_keys(kafka_health()) AS health_keys ORDER BY 1;
SELECT kafka_health()->>'status' AS status,
       kafka_health()->'worker_running' AS worker_running,
       kafka_health()->'producer_ready' AS producer_ready;

-- privileges: publishing is not for PUBLIC; metrics are for pg_monitor
CREATE ROLE sk_plain;
CREATE ROLE sk_monitor IN ROLE pg_monitor;
CREATE ROLE sk_app IN ROLE streamkafka_publisher;
SET ROLE sk_plain;
SELECT try($$SELECT kafka_publish('t', 'v')$$);
SELECT try($$SELECT * FROM kafka_stats$$);
SET ROLE sk_monitor;
SELECT try($$SELECT * FROM kafka_stats$$), try($$SELECT kafka_health()$$);
SELECT try($$SELECT kafka_publish('t', 'v')$$);
SET ROLE sk_app;
SELECT try($$SELECT kafka_publish('regress.roles', 'v')$$);
RESET ROLE;
DROP ROLE sk_plain, sk_monitor, sk_app;
