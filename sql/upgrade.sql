-- upgrade: 0.1.0 installed, then ALTER EXTENSION ... UPDATE gives what a new
-- install of the current version gives
DROP EXTENSION streamkafka CASCADE;
CREATE EXTENSION streamkafka VERSION '0.1.0';
SELECT count(*) AS stats_columns_in_0_1_0
  FROM pg_attribute WHERE attrelid = 'kafka_stats'::regclass AND attnum > 0;
-- the new library serves the old view
SELECT queued >= delivered AS old_view_works FROM kafka_stats;
ALTER EXTENSION streamkafka UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'streamkafka';
SELECT count(*) AS stats_columns,
       count(*) FILTER (WHERE attname IN ('dead_lettered', 'retried')) AS new_columns
  FROM pg_attribute WHERE attrelid = 'kafka_stats'::regclass AND attnum > 0;
SELECT state FROM kafka_breaker;
SELECT count(*) AS dead_letters FROM kafka_dead_letters;
