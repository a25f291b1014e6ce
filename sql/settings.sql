-- settings: bad values are rejected when set, with the reason; good ones kept
ALTER SYSTEM SET streamkafka.rdkafka_options = 'no.such.property=1';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'socket.keepalive.enable=maybe';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'linger.ms=5';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'just-a-word';
ALTER SYSTEM SET streamkafka.acks = '2';
ALTER SYSTEM SET streamkafka.linger_ms = -1;
ALTER SYSTEM SET streamkafka.compression = 'brotli';
ALTER SYSTEM SET streamkafka.overflow = 'sometimes';
ALTER SYSTEM SET streamkafka.default_headers = '{bad json';
ALTER SYSTEM SET streamkafka.default_headers = '{"n": 1}';
ALTER SYSTEM SET streamkafka.default_headers = '["env", "prod"]';
ALTER SYSTEM SET streamkafka.topic_prefix = 'bad prefix/';
ALTER SYSTEM SET streamkafka.queue_size = '1kB';
SELECT try($$SET streamkafka.linger_ms = 10$$);

-- good values are accepted (and removed again)
ALTER SYSTEM SET streamkafka.rdkafka_options = 'socket.keepalive.enable=true; debug=broker,topic';
ALTER SYSTEM SET streamkafka.default_headers = '{"env": "test", "tags": ["a", "b"]}';
ALTER SYSTEM SET streamkafka.topic_prefix = 'staging.';
ALTER SYSTEM RESET ALL;

-- the overflow policy is for superusers (or ALTER ROLE ... SET by one)
SET streamkafka.overflow = 'block';
SHOW streamkafka.overflow;
RESET streamkafka.overflow;

-- kafka_flush: waits for what was queued before it
SELECT kafka_publish('regress.flush', 'event ' || i, transactional => false) > 0 AS queued
  FROM generate_series(1, 3) i;
SELECT kafka_flush() AS flushed;
SELECT queue_events FROM kafka_stats;
SELECT kafka_flush(0) AS nothing_to_wait_for;
