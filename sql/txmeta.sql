-- txmeta: streamkafka.transaction_topic sends a BEGIN and an END event for
-- each transaction that changed a streamed table, and fills each change
-- event's transaction block; rolled-back savepoints are not counted
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

-- a bad topic name is refused; only a superuser sets it (per database with
-- ALTER DATABASE, for everyone in postgresql.conf)
SET streamkafka.transaction_topic = 'no spaces';
CREATE ROLE sk_tx_user;
SET ROLE sk_tx_user;
SET streamkafka.transaction_topic = 'mine';
RESET ROLE;
DROP ROLE sk_tx_user;
SET streamkafka.transaction_topic = 'shop.tx';

CREATE TABLE orders (id integer PRIMARY KEY, status text);
CREATE TABLE lines (order_id integer, item text, PRIMARY KEY (order_id, item));
SELECT kafka_stream_table('orders', topic => 'tx.orders', format => 'debezium');
SELECT kafka_stream_table('lines', topic => 'tx.lines');
-- the view of a pending event this file looks at: its place in the
-- transaction, the id shown as whether it is this transaction's
CREATE VIEW tx_pending AS
  SELECT topic, CASE WHEN value ? 'status' THEN NULL ELSE key END AS key,
         coalesce(value->>'op', value->>'status') AS what,
         coalesce(value->'transaction'->>'id', value->>'id') = pg_current_xact_id()::text
           AS this_tx,
         value->'transaction'->'total_order' AS total_order,
         value->'transaction'->'data_collection_order' AS table_order,
         value->'event_count' AS event_count, value->'data_collections' AS tables
    FROM pending();

BEGIN;
INSERT INTO orders VALUES (1, 'new'), (2, 'new');
INSERT INTO lines VALUES (1, 'cap');
SAVEPOINT s1;
INSERT INTO lines VALUES (2, 'mug');
INSERT INTO orders VALUES (3, 'new');
ROLLBACK TO SAVEPOINT s1;
-- a key change is two counted events; tombstones are not counted
UPDATE orders SET id = 4 WHERE id = 2;
DELETE FROM lines WHERE order_id = 1;
SAVEPOINT s2;
UPDATE orders SET status = 'paid' WHERE id = 1;
RELEASE SAVEPOINT s2;
TRUNCATE lines;
SELECT * FROM tx_pending;
COMMIT;
-- END is the transaction's last event: read back from the topic
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT convert_from(key, 'UTF8')::jsonb ? 'id' AS keyed,
       v->>'status' AS status, v->'event_count' AS event_count, v->'data_collections' AS tables,
       v->>'id' = convert_from(key, 'UTF8')::jsonb->>'id' AS key_is_id,
       (v->>'ts_ms')::bigint > 0 AS has_ts
  FROM kafka_test_consume('shop.tx'),
       LATERAL (SELECT convert_from(value, 'UTF8')::jsonb AS v) e;

-- a PL/pgSQL exception block that caught an error takes back its counts,
-- BEGIN included when it held the first event
BEGIN;
DO $$
BEGIN
  INSERT INTO orders VALUES (10, 'new');
  RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN NULL;
END $$;
INSERT INTO lines VALUES (10, 'pen');
SELECT * FROM tx_pending;
ROLLBACK;

-- every savepoint rolled back: no BEGIN, no END
BEGIN;
SAVEPOINT s;
INSERT INTO orders VALUES (11, 'new');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS pending_events FROM kafka_pending_events();
ROLLBACK;

-- kafka_publish's events and snapshots belong to no transaction of a table
BEGIN;
SELECT kafka_publish('tx.other', 'plain') IS NOT NULL AS published;
SELECT count(*) AS pending_events FROM kafka_pending_events();
ROLLBACK;
INSERT INTO orders VALUES (20, 'old');
SELECT kafka_snapshot_table('orders') AS snapshot_rows;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT convert_from(value, 'UTF8')::jsonb->'transaction' AS transaction
  FROM kafka_test_consume('tx.orders')
 WHERE convert_from(value, 'UTF8')::jsonb->>'op' = 'r';
-- the INSERT's own transaction sent a BEGIN and an END; the snapshot none
SELECT count(*) AS transaction_events FROM kafka_test_consume('shop.tx');

-- the topic is read at a transaction's first change: turned off in the
-- middle, the transaction still ends with END; after it, no block
BEGIN;
INSERT INTO orders VALUES (30, 'new');
SET LOCAL streamkafka.transaction_topic = '';
INSERT INTO orders VALUES (31, 'new');
SELECT key, what, total_order FROM tx_pending;
COMMIT;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT count(*) AS transaction_events FROM kafka_test_consume('shop.tx');

-- the same when a reload changes it in the middle of a transaction (set in
-- postgresql.conf, not in the session): the transaction's BEGIN and END go
-- to the topic of its first change.  A backend takes a reload between
-- statements: each generated statement waits 0.1 s until this one has.
RESET streamkafka.transaction_topic;
ALTER SYSTEM SET streamkafka.transaction_topic = 'shop.tx.a';
SELECT pg_reload_conf();
\set ECHO none
\o /dev/null
SELECT format('SELECT pg_sleep(0.1) WHERE current_setting(%L) <> %L',
              'streamkafka.transaction_topic', 'shop.tx.a') FROM generate_series(1, 50) \gexec
\o
\set ECHO all
SHOW streamkafka.transaction_topic;
ALTER SYSTEM SET streamkafka.transaction_topic = 'shop.tx.b';
BEGIN;
INSERT INTO orders VALUES (33, 'new');
SELECT pg_reload_conf();
\set ECHO none
\o /dev/null
SELECT format('SELECT pg_sleep(0.1) WHERE current_setting(%L) <> %L',
              'streamkafka.transaction_topic', 'shop.tx.b') FROM generate_series(1, 50) \gexec
\o
\set ECHO all
SHOW streamkafka.transaction_topic;
INSERT INTO orders VALUES (34, 'new');
SELECT topic, key, what, total_order FROM tx_pending;
COMMIT;
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT v->>'status' AS status, v->'event_count' AS event_count
  FROM kafka_test_consume('shop.tx.a'),
       LATERAL (SELECT convert_from(value, 'UTF8')::jsonb AS v) e
 ORDER BY v->>'status' = 'END';
SELECT count(*) AS events_in_b FROM kafka_test_consume('shop.tx.b');
-- the next transaction takes the new topic
BEGIN;
INSERT INTO orders VALUES (35, 'new');
SELECT topic, what FROM tx_pending WHERE what = 'BEGIN';
ROLLBACK;
ALTER SYSTEM RESET streamkafka.transaction_topic;
SELECT pg_reload_conf();
\set ECHO none
\o /dev/null
SELECT format('SELECT pg_sleep(0.1) WHERE current_setting(%L) <> %L',
              'streamkafka.transaction_topic', '') FROM generate_series(1, 50) \gexec
\o
\set ECHO all
SHOW streamkafka.transaction_topic;
BEGIN;
INSERT INTO orders VALUES (32, 'new');
SELECT key, value->'transaction' AS transaction FROM pending();
ROLLBACK;
DROP VIEW tx_pending;
SELECT kafka_unstream_table('orders');
SELECT kafka_unstream_table('lines');
DROP TABLE orders, lines;
