-- triggers: table changes as events; kafka_pending_events() shows what the
-- transaction will publish (ts_ms and transaction ids vary, so are removed)
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE typed (
    id integer PRIMARY KEY,
    amount numeric(30, 10),
    at timestamptz,
    local_at timestamp,
    day date,
    raw bytea,
    ints integer[],
    doc json,
    docb jsonb,
    feeling mood,
    count positive,
    big text,
    doubled integer GENERATED ALWAYS AS (id * 2) STORED,
    nothing text
);
SELECT kafka_stream_table('typed');
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'typed'::regclass ORDER BY 1;

SET timezone = 'UTC';
BEGIN;
INSERT INTO typed (id, amount, at, local_at, day, raw, ints, doc, docb, feeling, count, big)
VALUES (1, 12345678901234567890.0123456789, '2026-01-02 03:04:05.678901+00',
        '2026-01-02 03:04:05', '2026-01-02', '\x00ff', '{1,2,3}',
        '{"a": [1, 2]}', '{"b": {"c": true}}', 'happy', 7, NULL);
SELECT topic, key, jsonb_pretty(value) FROM pending();
ROLLBACK;

-- a TOASTed value arrives in full, before and after an update that does not touch it
BEGIN;
INSERT INTO typed (id, big) VALUES (2, repeat('0123456789', 10000));
UPDATE typed SET count = 3 WHERE id = 2;
SELECT key, length(value #>> '{after,big}') AS after_big, length(value #>> '{before,big}') AS before_big,
       value->>'op' AS op
  FROM pending();
ROLLBACK;

-- every op in the json envelope; a savepoint rolled back takes its change with it
CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric);
SELECT kafka_stream_table('items', topic => 'shop.items');
BEGIN;
INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 7);
UPDATE items SET price = 2 WHERE id = 1;
SAVEPOINT s;
DELETE FROM items WHERE id = 2;
ROLLBACK TO SAVEPOINT s;
DELETE FROM items WHERE id = 1;
TRUNCATE items;
SELECT * FROM pending();
COMMIT;

-- the debezium envelope, a column subset and explicit key columns
SELECT kafka_stream_table('items', format => 'debezium', columns => ARRAY['id', 'price'],
                          key_columns => ARRAY['name']);
BEGIN;
INSERT INTO items VALUES (3, 'cap', 3);
UPDATE items SET price = 4 WHERE id = 3;
DELETE FROM items WHERE id = 3;
TRUNCATE items;
SELECT * FROM pending();
ROLLBACK;
-- Debezium's times: ts_us and ts_ns are ts_ms in finer units, in the
-- envelope and in source, the start of the statement that made the change
BEGIN;
INSERT INTO items VALUES (3, 'cap', 3);
SELECT v->>'ts_us' = v #>> '{source,ts_us}' AS source_same,
       (v->>'ts_us')::bigint / 1000 = (v->>'ts_ms')::bigint AS us_in_ms,
       (v->>'ts_ns')::numeric = (v->>'ts_us')::numeric * 1000 AS ns_in_us,
       (v->>'ts_us')::numeric BETWEEN extract(epoch FROM now()) * 1000000
                                  AND extract(epoch FROM statement_timestamp()) * 1000000
         AS in_the_transaction
  FROM kafka_pending_events(), LATERAL (SELECT convert_from(value, 'UTF8')::jsonb AS v) e;
ROLLBACK;

-- no primary key and no key columns: keyless
CREATE TABLE log_lines (line text);
SELECT kafka_stream_table('log_lines');
BEGIN;
INSERT INTO log_lines VALUES ('hello');
SELECT * FROM pending();
ROLLBACK;

-- an UPDATE of the key is a delete under the old key, its tombstone, and an
-- insert under the new key; an UPDATE that keeps the key is one update
SELECT kafka_stream_table('items', topic => 'shop.items');
INSERT INTO items VALUES (20, 'mug', 5);
BEGIN;
UPDATE items SET id = 21 WHERE id = 20;
UPDATE items SET price = 6 WHERE id = 21;
SELECT key, value->>'op' AS op, value #>> '{before,id}' AS before_id,
       value #>> '{after,id}' AS after_id
  FROM pending();
-- the delete names the new key, the insert the old one (Debezium's headers);
-- the tombstone and the plain update carry none
SELECT key, value IS NULL AS tombstone, headers
  FROM kafka_pending_events();
ROLLBACK;
-- the same in the debezium envelope, without tombstones
SELECT kafka_stream_table('items', topic => 'shop.items', format => 'debezium',
                          tombstones => false);
BEGIN;
UPDATE items SET id = 22 WHERE id = 20;
DELETE FROM items WHERE id = 22;
SELECT key, value->>'op' AS op, value #>> '{before,id}' AS before_id,
       value #>> '{after,id}' AS after_id
  FROM pending();
ROLLBACK;
SELECT try($$SELECT kafka_stream_table('items', tombstones => NULL)$$);
-- a stream set up by 0.3.0 or earlier (no "tombstones" argument) sends none
SELECT kafka_unstream_table('items');
CREATE TRIGGER streamkafka_changes AFTER INSERT OR UPDATE OR DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION streamkafka_trigger('shop.items', 'json', 'k=id');
BEGIN;
DELETE FROM items WHERE id = 20;
SELECT key, value->>'op' AS op FROM pending();
ROLLBACK;
DROP TRIGGER streamkafka_changes ON items;
SELECT kafka_stream_table('items', topic => 'shop.items');

-- a row filter: only the rows that match; an UPDATE into the filter is an
-- insert, out of it a delete (and its tombstone); a TRUNCATE is sent
CREATE TABLE accounts (id integer PRIMARY KEY, region text, balance numeric);
SELECT kafka_stream_table('accounts', row_filter => $$region = 'eu' AND balance >= 0$$);
BEGIN;
INSERT INTO accounts VALUES (1, 'eu', 10), (2, 'us', 20), (3, 'eu', -1);
UPDATE accounts SET balance = 11 WHERE id = 1;
UPDATE accounts SET region = 'eu' WHERE id = 2;
UPDATE accounts SET region = 'us' WHERE id = 1;
UPDATE accounts SET balance = balance - 1 WHERE id = 3;
DELETE FROM accounts WHERE id IN (1, 2, 3);
TRUNCATE accounts;
SELECT key, value->>'op' AS op, value->'before'->>'region' AS before_region,
       value->'after'->>'region' AS after_region
  FROM pending();
ROLLBACK;
-- what a filter may not use: it runs as every role that writes the table
CREATE FUNCTION is_small(integer) RETURNS boolean IMMUTABLE LANGUAGE sql AS 'SELECT $1 < 10';
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'public.is_small(id)')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'balance > random()')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'id IN (SELECT 1)')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'true FROM pg_authid')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'true; DROP TABLE accounts')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'xmin = 1')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'nosuch > 1')$$);
SELECT try($$SELECT kafka_stream_table('accounts', row_filter => 'id')$$);
-- a refused filter leaves the stream as it was
BEGIN;
INSERT INTO accounts VALUES (4, 'us', 1), (5, 'eu', 1);
SELECT key FROM pending();
ROLLBACK;
-- the filter names columns: renaming one it uses stops writes, saying why
ALTER TABLE accounts RENAME COLUMN region TO area;
INSERT INTO accounts VALUES (6, 'eu', 1);
ALTER TABLE accounts RENAME COLUMN area TO region;

-- a partitioned table streams through its parent; the event names the partition
CREATE TABLE measures (region text, id integer, v integer, PRIMARY KEY (region, id))
    PARTITION BY LIST (region);
CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('eu');
CREATE TABLE measures_us PARTITION OF measures FOR VALUES IN ('us');
SELECT kafka_stream_table('measures');
BEGIN;
INSERT INTO measures VALUES ('eu', 1, 10), ('us', 2, 20);
SELECT topic, key, value->>'table' AS "table", value->'after' AS after FROM pending();
-- a row moved to another partition by a change of its key: delete, tombstone, insert
UPDATE measures SET region = 'us' WHERE id = 1;
SELECT key, value->>'op' AS op, value->>'table' AS "table" FROM pending() OFFSET 2;
ROLLBACK;

-- committed changes are queued; rolled-back ones are not
SELECT queued AS q0 FROM kafka_stats \gset
INSERT INTO items VALUES (10, 'a', 1);
BEGIN;
INSERT INTO items VALUES (11, 'b', 1);
ROLLBACK;
SELECT queued - :q0 AS queued FROM kafka_stats;

-- unstreaming removes the triggers
SELECT kafka_unstream_table('items');
SELECT kafka_unstream_table('items');
BEGIN;
INSERT INTO items VALUES (12, 'c', 1);
SELECT count(*) AS pending_after_unstream FROM kafka_pending_events();
ROLLBACK;

-- bad use
CREATE VIEW items_view AS SELECT * FROM items;
SELECT try($$SELECT kafka_stream_table('items_view')$$);
SELECT try($$SELECT kafka_stream_table('items', key_columns => ARRAY['nope'])$$);
SELECT try($$SELECT kafka_stream_table('items', columns => ARRAY['id', 'missing'])$$);
SELECT try($$SELECT kafka_stream_table('items', format => 'avro')$$);
SELECT try($$SELECT kafka_stream_table('items', format => NULL)$$);
SELECT try($$SELECT kafka_stream_table('items', topic => 'bad topic')$$);
CREATE TABLE "Odd Name" (id integer);
SELECT try($$SELECT kafka_stream_table('"Odd Name"')$$);
SELECT try($$SELECT kafka_stream_table('no_such_table')$$);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'items'::regclass;
