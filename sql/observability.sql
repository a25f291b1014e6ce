-- observability: per-topic counters and latency, brokers, reset, the
-- Prometheus text, traceparent headers, and the monitor views' shapes
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

SELECT count(kafka_publish('regress.obs', 'v' || g, transactional => false))
  FROM generate_series(1, 10) g;
SELECT wait_for($$SELECT delivered = 10 FROM kafka_topic_stats WHERE topic = 'regress.obs'$$);
SELECT topic, queued, sent, delivered, failed, dropped, dead_lettered, bytes,
       latency_p50_ms <= latency_p95_ms AND latency_p95_ms <= latency_p99_ms
         AND latency_p99_ms <= latency_max_ms AS percentiles_ordered,
       last_delivered_at IS NOT NULL AS has_last_delivery
  FROM kafka_topic_stats WHERE topic = 'regress.obs';
SELECT latency_p50_ms >= 0 AS latency, queue_high_water_bytes > 0 AS high_water,
       sent >= delivered AS sent_covers_delivered
  FROM kafka_stats;

-- the mock cluster's three brokers, as librdkafka's statistics show them
-- (librdkafka connects only to the brokers it needs: each one it tried is up)
SELECT wait_for($$SELECT count(*) = 3 AND bool_and(state = 'UP' OR connects = 0)
                     AND bool_or(state = 'UP') FROM kafka_brokers$$);
SELECT count(*) AS brokers, bool_and(state = 'UP' OR connects = 0) AS tried_ones_up,
       bool_and(rtt_avg_ms >= 0) AS rtt, array_agg(id ORDER BY id) AS ids
  FROM kafka_brokers;

-- a reset starts the counters again; queued restarts at what the queue holds
SELECT kafka_stats_reset();
SELECT delivered, failed, dropped, dead_lettered, queued = queue_events AS identity,
       stats_reset_at > now() - interval '1 minute' AS just_reset
  FROM kafka_stats;
SELECT count(*) AS topics_after_reset FROM kafka_topic_stats;

-- Prometheus text: HELP and TYPE for every family, the info and breaker series
SELECT count(*) FILTER (WHERE line LIKE '# HELP %') = count(*) FILTER (WHERE line LIKE '# TYPE %')
         AS help_for_every_type,
       bool_or(line LIKE 'streamkafka_info{version="0.4.0",mode="mock",%} 1') AS info,
       bool_or(line = 'streamkafka_breaker_state{state="closed"} 1') AS breaker_closed,
       bool_or(line = 'streamkafka_delivery_latency_seconds_bucket{le="+Inf"} 0') AS histogram_after_reset,
       bool_or(line = 'streamkafka_brokers{state="total"} 3') AS brokers
  FROM regexp_split_to_table(kafka_metrics_prometheus(), E'\n') AS line;
-- one streamkafka_broker_down per broker, 0 for each: the ones librdkafka
-- did not connect to (it needed nothing from them) are not down
SELECT count(*) AS broker_down_series, bool_and(line LIKE '% 0') AS none_down
  FROM regexp_split_to_table(kafka_metrics_prometheus(), E'\n') AS line
 WHERE line LIKE 'streamkafka_broker_down{%';
-- the rejected counter's help names every refusal it counts
SELECT line AS rejected_help
  FROM regexp_split_to_table(kafka_metrics_prometheus(), E'\n') AS line
 WHERE line LIKE '# HELP streamkafka_events_rejected_total %';
-- the info series names the versions kafka_health() reports
SELECT coalesce(bool_or(line LIKE 'streamkafka_info{%,postgresql_version="'
                        || current_setting('server_version') || '",librdkafka_version="'
                        || (kafka_health()->>'librdkafka_version') || '"} 1'), false)
         AS info_versions
  FROM regexp_split_to_table(kafka_metrics_prometheus(), E'\n') AS line;

-- traceparent: checked when set; added to events that have none
SELECT try($$SET streamkafka.traceparent = 'nonsense'$$);
SELECT try($$SET streamkafka.traceparent = '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'$$);
BEGIN;
SET LOCAL streamkafka.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SELECT kafka_publish('regress.trace', 'traced') > 0 AS queued;
SELECT kafka_publish('regress.trace', 'own', headers => '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x": "1"}') > 0 AS queued;
SELECT value, headers FROM kafka_pending_events();
ROLLBACK;

-- the monitor's views (lag needs streamkafka.lag_groups; see the TAP tests)
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_consumer_lag'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_topics'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_brokers'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) AS lag_rows FROM kafka_consumer_lag;
