-- snapshot: kafka_snapshot_table publishes a streamed table's current rows
-- into its stream as reads, chunk by chunk, through the stream's row
-- filter; bad use is refused and publishes nothing
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

CREATE TABLE snap (id integer PRIMARY KEY, region text, note text);
INSERT INTO snap SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'n' || g
  FROM generate_series(1, 2500) g;
SELECT kafka_stream_table('snap', topic => 'snap.json');
-- 2,500 rows: three chunks
SELECT kafka_snapshot_table('snap');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT count(*) AS events, count(DISTINCT key) AS keys,
       count(*) FILTER (WHERE convert_from(value, 'UTF8')::jsonb->>'op' = 'read') AS reads,
       bool_and(convert_from(value, 'UTF8')::jsonb->'after' =
                (SELECT to_jsonb(s) FROM snap s
                  WHERE s.id = (convert_from(key, 'UTF8')::jsonb->>'id')::integer)) AS rows_equal
  FROM kafka_test_consume('snap.json');
SELECT convert_from(key, 'UTF8') AS key, convert_from(value, 'UTF8')::jsonb->'before' AS before
  FROM kafka_test_consume('snap.json')
 ORDER BY (convert_from(key, 'UTF8')::jsonb->>'id')::integer LIMIT 2;

-- the debezium envelope: source.snapshot "true", "last" on the last row; the
-- stream's row filter and the call's own condition both apply
SELECT kafka_stream_table('snap', topic => 'snap.dbz', format => 'debezium',
                          row_filter => $$region = 'eu'$$);
SELECT kafka_snapshot_table('snap', row_filter => 'id <= 10');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT convert_from(key, 'UTF8') AS key, v->>'op' AS op, v->'source'->>'snapshot' AS snapshot,
       v->'before' AS before, v->'source'->'txId' AS txid, v->'transaction' AS transaction
  FROM (SELECT key, "offset", convert_from(value, 'UTF8')::jsonb AS v
          FROM kafka_test_consume('snap.dbz')) c
 ORDER BY (v #>> '{after,id}')::integer;

-- a table three times the size of the 4 MB queue: the snapshot waits for
-- room before each chunk, and every row arrives
CREATE TABLE snap_large (id integer PRIMARY KEY, filler text);
INSERT INTO snap_large SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 12000) g;
SELECT pg_size_pretty(sum(pg_column_size(filler))) AS filler_size FROM snap_large;
SELECT kafka_stream_table('snap_large', topic => 'snap.large');
SELECT kafka_snapshot_table('snap_large');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT count(*) AS events, count(DISTINCT key) AS keys FROM kafka_test_consume('snap.large');

-- a partitioned table: each partition's rows, naming the partition
CREATE TABLE psnap (region text, id integer, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE psnap_eu PARTITION OF psnap FOR VALUES IN ('eu');
CREATE TABLE psnap_us PARTITION OF psnap FOR VALUES IN ('us');
INSERT INTO psnap SELECT CASE WHEN g % 3 = 0 THEN 'us' ELSE 'eu' END, g FROM generate_series(1, 30) g;
SELECT kafka_stream_table('psnap', topic => 'snap.parted');
SELECT kafka_snapshot_table('psnap');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT convert_from(value, 'UTF8')::jsonb->>'table' AS "table", count(*)
  FROM kafka_test_consume('snap.parted') GROUP BY 1 ORDER BY 1;

-- bad use
SELECT try($$SELECT kafka_snapshot_table(NULL)$$);
CREATE TABLE unstreamed (id integer PRIMARY KEY);
SELECT try($$SELECT kafka_snapshot_table('unstreamed')$$);
CREATE TABLE keyless (v integer);
SELECT kafka_stream_table('keyless');
SELECT try($$SELECT kafka_snapshot_table('keyless')$$);
SELECT try($$SELECT kafka_snapshot_table('snap', row_filter => 'nosuch = 1')$$);
BEGIN;
INSERT INTO snap VALUES (9999, 'eu', 'new');
SELECT try($$SELECT kafka_snapshot_table('snap')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT kafka_snapshot_table('snap')$$);
ROLLBACK;
-- sending a table's rows out needs streamkafka_publisher, and SELECT on it
CREATE ROLE snap_outsider;
SET ROLE snap_outsider;
SELECT try($$SELECT kafka_snapshot_table('snap')$$);
RESET ROLE;
CREATE ROLE snap_publisher IN ROLE streamkafka_publisher;
SET ROLE snap_publisher;
SELECT try($$SELECT kafka_snapshot_table('snap')$$);
RESET ROLE;
DROP ROLE snap_outsider;
DROP ROLE snap_publisher;
-- nothing was published by the refused calls
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT count(*) AS dbz_events FROM kafka_test_consume('snap.dbz');

-- a snapshot's row is never dropped by the overflow policy: with no room
-- for it, the snapshot waits as under overflow = block, then fails (53000),
-- instead of counting the row as published
CREATE TABLE snap_big (id integer PRIMARY KEY, body text);
INSERT INTO snap_big
  SELECT 1, string_agg(md5(g::text), '') FROM generate_series(1, 40000) g;
SELECT kafka_stream_table('snap_big', topic => 'snap.big');
SET streamkafka.overflow = drop_newest;
SET streamkafka.enqueue_timeout_ms = 200;
SELECT kafka_mock_fault('brokers_down');
-- the 4 MB queue filled until a quarter of it, less than the row, is free
DO $$
BEGIN
  WHILE (SELECT queue_bytes FROM kafka_stats) < 4194304 - 1150000 LOOP
    PERFORM kafka_publish('snap.fill', repeat('f', 20000), transactional => false);
  END LOOP;
END $$;
SELECT dropped AS dropped0 FROM kafka_stats \gset
SELECT try($$SELECT kafka_snapshot_table('snap_big')$$);
SELECT dropped - :dropped0 AS dropped FROM kafka_stats;
SELECT kafka_mock_fault('brokers_up');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT kafka_snapshot_table('snap_big');
SELECT wait_for('SELECT queue_events = 0 FROM kafka_stats', watch_progress => true) AS idle;
SELECT count(*) AS rows_read,
       bool_and(convert_from(value, 'UTF8')::jsonb #>> '{after,body}' =
                (SELECT body FROM snap_big)) AS intact
  FROM kafka_test_consume('snap.big');
RESET streamkafka.overflow;
RESET streamkafka.enqueue_timeout_ms;
SELECT kafka_unstream_table('snap_big');
DROP TABLE snap_big;
