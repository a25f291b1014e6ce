-- streaming: a streamed table keeps streaming when its shape changes, every
-- TRUNCATE of a partitioned table is published, and the cached trigger
-- layouts do not grow with invalidations
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

-- renaming and dropping columns
CREATE TABLE shaped (id integer PRIMARY KEY, name text, note text, extra text);
SELECT kafka_stream_table('shaped', columns => ARRAY['id', 'name', 'note']);
ALTER TABLE shaped RENAME COLUMN name TO title;
ALTER TABLE shaped RENAME COLUMN id TO shaped_id;
BEGIN;
INSERT INTO shaped VALUES (1, 'one', 'n', 'x');
SELECT * FROM pending();
ROLLBACK;
ALTER TABLE shaped DROP COLUMN note;
-- a new column with a renamed column's old name is not taken for it
ALTER TABLE shaped ADD COLUMN name text;
BEGIN;
INSERT INTO shaped (shaped_id, title, extra, name) VALUES (2, 'two', 'x', 'not streamed');
SELECT * FROM pending();
ROLLBACK;
ALTER TABLE shaped DROP COLUMN title;
BEGIN;
INSERT INTO shaped (shaped_id) VALUES (3);
SELECT * FROM pending();
ROLLBACK;
-- the key column dropped: the error says what to do
ALTER TABLE shaped DROP CONSTRAINT shaped_pkey;
ALTER TABLE shaped DROP COLUMN shaped_id;
SELECT try($$INSERT INTO shaped (extra) VALUES ('y')$$);
SELECT kafka_stream_table('shaped');
SELECT try($$INSERT INTO shaped (extra) VALUES ('y')$$);

-- a renamed column of a partitioned table: every partition follows
CREATE TABLE parted (id integer, region text, v text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
-- a partition whose columns are numbered differently from the parent's
CREATE TABLE parted_us (v text, region text NOT NULL, id integer NOT NULL);
ALTER TABLE parted ATTACH PARTITION parted_us FOR VALUES IN ('us');
SELECT kafka_stream_table('parted', columns => ARRAY['id', 'v']);
ALTER TABLE parted RENAME COLUMN v TO val;
BEGIN;
INSERT INTO parted VALUES (1, 'eu', 'a'), (2, 'us', 'b');
SELECT * FROM pending();
ROLLBACK;

-- TRUNCATE of one partition is published, as is TRUNCATE of the parent
BEGIN;
TRUNCATE parted_eu;
SELECT topic, key, value->>'op' AS op, value->>'table' AS "table" FROM pending();
ROLLBACK;
BEGIN;
TRUNCATE parted;
SELECT topic, value->>'op' AS op, value->>'table' AS "table" FROM pending() ORDER BY 3;
ROLLBACK;
-- partitions created or attached later publish their TRUNCATE too
CREATE TABLE parted_asia PARTITION OF parted FOR VALUES IN ('asia');
CREATE TABLE parted_mars (id integer NOT NULL, region text NOT NULL, val text);
ALTER TABLE parted ATTACH PARTITION parted_mars FOR VALUES IN ('mars');
BEGIN;
TRUNCATE parted_asia, parted_mars;
SELECT topic, value->>'op' AS op, value->>'table' AS "table" FROM pending() ORDER BY 3;
ROLLBACK;
-- a partition created by the table's owner (a publisher: PostgreSQL clones
-- the row trigger, which needs EXECUTE on the trigger function)
CREATE ROLE sk_partitioner IN ROLE streamkafka_publisher;
GRANT CREATE ON SCHEMA public TO sk_partitioner;
ALTER TABLE parted OWNER TO sk_partitioner;
SET ROLE sk_partitioner;
CREATE TABLE parted_moon PARTITION OF parted FOR VALUES IN ('moon');
RESET ROLE;
SELECT count(*) AS moon_truncate_triggers FROM pg_trigger
 WHERE tgrelid = 'parted_moon'::regclass AND tgname = 'streamkafka_truncate';
SELECT kafka_unstream_table('parted');
SELECT count(*) AS triggers_left FROM pg_trigger t JOIN pg_partition_tree('parted') p ON p.relid = t.tgrelid
 WHERE t.tgname LIKE 'streamkafka%';

-- PREPARE after changing a streamed table: the hint is one the user can follow
CREATE TABLE prepared_target (id integer PRIMARY KEY);
SELECT kafka_stream_table('prepared_target');
BEGIN;
INSERT INTO prepared_target VALUES (1);
PREPARE TRANSACTION 'streamed';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'streamed';

-- cached layouts are rebuilt, not piled up, after relcache invalidations
CREATE TABLE analysed (id integer PRIMARY KEY, a text, b text, c text, d text, e text, f text);
SELECT kafka_stream_table('analysed');
CREATE FUNCTION layout_bytes() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts
     WHERE name LIKE 'streamkafka trigger layout%'
$$;
CREATE FUNCTION churn_layouts(n integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        EXECUTE 'ANALYZE analysed';
        INSERT INTO analysed VALUES (1000 * n + i);
    END LOOP;
END
$$;
BEGIN;
SELECT churn_layouts(5);
SELECT layout_bytes() AS bytes_after_5 \gset
SELECT churn_layouts(200);
SELECT layout_bytes() <= :bytes_after_5 + 8192 AS layouts_do_not_grow,
       layout_bytes() - :bytes_after_5 AS growth_if_any;
ROLLBACK;

DROP TABLE shaped, parted, prepared_target, analysed;
REVOKE CREATE ON SCHEMA public FROM sk_partitioner;
DROP ROLE sk_partitioner;
