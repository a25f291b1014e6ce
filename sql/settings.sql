-- settings: bad values are rejected when set, with the reason; good ones kept
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
ALTER SYSTEM SET streamkafka.rdkafka_options = 'no.such.property=1';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'socket.keepalive.enable=maybe';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'linger.ms=5';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'just-a-word';
ALTER SYSTEM SET streamkafka.acks = '2';
\set VERBOSITY sqlstate
ALTER SYSTEM SET streamkafka.linger_ms = -1;
\set VERBOSITY default
ALTER SYSTEM SET streamkafka.compression = 'brotli';
ALTER SYSTEM SET streamkafka.overflow = 'sometimes';
ALTER SYSTEM SET streamkafka.default_headers = '{bad json';
ALTER SYSTEM SET streamkafka.default_headers = '{"n": 1}';
ALTER SYSTEM SET streamkafka.default_headers = '["env", "prod"]';
ALTER SYSTEM SET streamkafka.topic_prefix = 'bad prefix/';
\set VERBOSITY sqlstate
ALTER SYSTEM SET streamkafka.queue_size = '1kB';
\set VERBOSITY default
SELECT try($$SET streamkafka.linger_ms = 10$$);
-- the bounds behind the two SQLSTATE-only errors above (PostgreSQL 18 words
-- its out-of-range message differently)
SELECT name, min_val, max_val, unit FROM pg_settings
 WHERE name IN ('streamkafka.linger_ms', 'streamkafka.queue_size') ORDER BY name;

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

-- secrets are never shown, to any role; other roles cannot read them at all
ALTER SYSTEM SET streamkafka.sasl_password = 'top-secret-1';
ALTER SYSTEM SET streamkafka.ssl_key_password = 'top-secret-2';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW streamkafka.sasl_password;
SELECT name, setting FROM pg_settings WHERE name LIKE 'streamkafka.%password' ORDER BY 1;
SELECT current_setting('streamkafka.ssl_key_password');
SELECT count(*) AS settings_showing_a_secret FROM pg_settings
 WHERE setting LIKE '%top-secret%' OR reset_val LIKE '%top-secret%' OR boot_val LIKE '%top-secret%';
CREATE ROLE sk_reader IN ROLE pg_monitor;
SET ROLE sk_reader;
SELECT try($$SHOW streamkafka.sasl_password$$);
SELECT try($$SHOW streamkafka.rdkafka_options$$);
RESET ROLE;
DROP ROLE sk_reader;
ALTER SYSTEM RESET streamkafka.sasl_password;
ALTER SYSTEM RESET streamkafka.ssl_key_password;
SELECT pg_reload_conf();
ALTER SYSTEM SET streamkafka.rdkafka_options = 'sasl.oauthbearer.config=x; ssl.key.password=hunter2';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'ssl.keystore.password=x; socket.keepalive.enable=nope';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'ssl.keystore.password=hunter3; socket.keepalive.enable=true';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW streamkafka.rdkafka_options;
ALTER SYSTEM RESET streamkafka.rdkafka_options;
SELECT pg_reload_conf();

-- allowed_topics: a database cannot publish where it should not
ALTER SYSTEM SET streamkafka.allowed_topics = 'bad/pattern';
SET streamkafka.allowed_topics = 'regress.allowed.*, exact, sing?e';
SELECT try($$SELECT kafka_publish('regress.allowed.one', 'v')$$);
SELECT try($$SELECT kafka_publish('exact', 'v')$$);
SELECT try($$SELECT kafka_publish('single', 'v')$$);
SELECT try($$SELECT kafka_publish('exactly', 'v')$$);
SELECT try($$SELECT kafka_publish('regress.other', 'v')$$);
RESET streamkafka.allowed_topics;
SELECT try($$SELECT kafka_publish('regress.other', 'v')$$);
CREATE ROLE sk_app2 IN ROLE streamkafka_publisher;
SET ROLE sk_app2;
SELECT try($$SET streamkafka.allowed_topics = ''$$);
RESET ROLE;
DROP ROLE sk_app2;
