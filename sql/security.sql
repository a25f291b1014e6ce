-- security: attacks a database user can try, each of which must fail
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all

-- 1. search_path hijack: a role that may create objects in a schema on a
-- superuser's search_path defines functions that match the extension's calls
-- better than pg_catalog's; the superuser's next kafka_stream_table or
-- kafka_unstream_table must not run them
CREATE ROLE sk_attacker LOGIN;
GRANT CREATE ON SCHEMA public TO sk_attacker;
SET ROLE sk_attacker;
CREATE FUNCTION public.format(text, regclass) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE sk_attacker SUPERUSER';
    RETURN pg_catalog.format($1, $2);
END
$$;
CREATE FUNCTION public.array_position(smallint[], smallint) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE sk_attacker SUPERUSER';
    RETURN pg_catalog.array_position($1::int[], $2::int);
END
$$;
RESET ROLE;
CREATE TABLE hijack_target (id integer PRIMARY KEY, v text);
SELECT kafka_stream_table('hijack_target');
SELECT kafka_unstream_table('hijack_target');
SELECT rolsuper AS attacker_became_superuser FROM pg_roles WHERE rolname = 'sk_attacker';
DROP FUNCTION public.format(text, regclass);
DROP FUNCTION public.array_position(smallint[], smallint);
-- every function of the extension not written in C pins its search_path
SELECT p.oid::regprocedure AS function_without_search_path
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_language l ON l.oid = p.prolang
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'streamkafka')
   AND l.lanname <> 'c'
   AND NOT coalesce(p.proconfig::text LIKE '%search_path=pg_catalog%', false);

-- 2. kafka_pending_events() shows row images; reading them needs SELECT on
-- the table: a role that may only DELETE must not read the deleted rows
CREATE ROLE sk_deleter LOGIN IN ROLE streamkafka_publisher;
CREATE TABLE payroll (id integer PRIMARY KEY, salary integer);
INSERT INTO payroll VALUES (1, 100000), (2, 200000);
SELECT kafka_stream_table('payroll');
GRANT DELETE ON payroll TO sk_deleter;
SET ROLE sk_deleter;
BEGIN;
DELETE FROM payroll;
SELECT try('SELECT count(*) FROM kafka_pending_events()');
ROLLBACK;
RESET ROLE;
-- with SELECT, the same role sees them
GRANT SELECT ON payroll TO sk_deleter;
SET ROLE sk_deleter;
BEGIN;
DELETE FROM payroll;
SELECT count(*) AS pending_with_select FROM kafka_pending_events();
ROLLBACK;
RESET ROLE;

-- 3. a parallel worker cannot publish (its events would be lost with its
-- transaction state): a wrapper marked PARALLEL SAFE gets an error
CREATE FUNCTION lying_publish(i integer) RETURNS bigint
LANGUAGE sql PARALLEL SAFE AS $$
    SELECT kafka_publish('sec.parallel', i::text, transactional => false)
$$;
CREATE TABLE many AS SELECT i FROM generate_series(1, 2000) i;
ANALYZE many;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query
DO $$BEGIN
    PERFORM pg_catalog.set_config(name, 'on', false) FROM pg_catalog.pg_settings
     WHERE name IN ('force_parallel_mode', 'debug_parallel_query');
END$$;
SELECT try('SELECT count(lying_publish(i)) FROM many');
DO $$BEGIN
    PERFORM pg_catalog.set_config(name, 'off', false) FROM pg_catalog.pg_settings
     WHERE name IN ('force_parallel_mode', 'debug_parallel_query');
END$$;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;

-- 4. allowed_topics bound to a role holds in every database, and the role
-- cannot lift it; a stream to a topic outside it is refused when it is set up
SELECT current_user AS superuser, current_database() AS regress_db \gset
CREATE ROLE sk_app LOGIN IN ROLE streamkafka_publisher;
ALTER ROLE sk_app SET streamkafka.allowed_topics = 'app.*';
CREATE TABLE app_orders (id integer PRIMARY KEY);
ALTER TABLE app_orders OWNER TO sk_app;
CREATE DATABASE sk_other;
\c sk_other
CREATE EXTENSION streamkafka;
\c - sk_app
SHOW streamkafka.allowed_topics;
SET streamkafka.allowed_topics = '';
SELECT kafka_publish('evil.anywhere', 'x');
SELECT kafka_publish('app.fine', 'x') > 0 AS app_topic_published;
\c :regress_db sk_app
SELECT try($$SELECT kafka_publish('evil.anywhere', 'x')$$);
SELECT try($$SELECT kafka_stream_table('app_orders', topic => 'evil.orders')$$);
SELECT kafka_stream_table('app_orders', topic => 'app.orders');
\c - :superuser
DROP DATABASE sk_other;

-- 5. secrets: no role other than a superuser reads them, in any column of
-- pg_settings, and a rejected value is not echoed
CREATE ROLE sk_watcher LOGIN IN ROLE pg_monitor;
ALTER SYSTEM SET streamkafka.rdkafka_options = 'ssl.keystore.password=hunter2; socket.keepalive.enable=true';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE sk_watcher;
SELECT name, setting, reset_val, boot_val FROM pg_settings
 WHERE name = 'streamkafka.rdkafka_options';
SELECT count(*) AS rows_with_secret FROM pg_settings
 WHERE setting LIKE '%hunter2%' OR reset_val LIKE '%hunter2%' OR boot_val LIKE '%hunter2%';
RESET ROLE;
-- the real value is what the server keeps
SELECT pg_read_file('postgresql.auto.conf') LIKE '%ssl.keystore.password=hunter2%' AS real_value_kept;
ALTER SYSTEM SET streamkafka.rdkafka_options = 'ssl.keystore.password=s3cret; no.such.property=1';
ALTER SYSTEM SET streamkafka.rdkafka_options = 'ssl.keystore.password: s3cret';
ALTER SYSTEM SET streamkafka.sasl_password = 'hunter4';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE sk_watcher;
SELECT count(*) AS rows_with_password FROM pg_settings
 WHERE setting LIKE '%hunter4%' OR reset_val LIKE '%hunter4%';
RESET ROLE;
SHOW streamkafka.sasl_password;
ALTER SYSTEM RESET streamkafka.sasl_password;
ALTER SYSTEM RESET streamkafka.rdkafka_options;
SELECT pg_reload_conf();

DROP TABLE hijack_target, payroll, many, app_orders;
DROP FUNCTION lying_publish(integer);
REVOKE CREATE ON SCHEMA public FROM sk_attacker;
DROP ROLE sk_attacker, sk_deleter, sk_app, sk_watcher;
