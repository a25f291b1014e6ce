-- upgrade: 0.1.0 installed, then ALTER EXTENSION ... UPDATE gives what a new
-- install of the current version gives
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS streamkafka CASCADE;
RESET client_min_messages;
CREATE EXTENSION streamkafka VERSION '0.1.0';
SELECT count(*) AS stats_columns_in_0_1_0
  FROM pg_attribute WHERE attrelid = 'kafka_stats'::regclass AND attnum > 0;
-- the new library serves the old view
SELECT queued >= delivered AS old_view_works FROM kafka_stats;
-- 0.1.0 -> 0.2.0 replaces kafka_stats: a view of the user's that depends on
-- it must be dropped first (the README says so)
CREATE VIEW my_old_stats AS SELECT queued FROM kafka_stats;
\set SHOW_CONTEXT never
ALTER EXTENSION streamkafka UPDATE TO '0.2.0';
\set SHOW_CONTEXT errors
DROP VIEW my_old_stats;
ALTER EXTENSION streamkafka UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'streamkafka';
SELECT count(*) AS stats_columns,
       count(*) FILTER (WHERE attname IN ('dead_lettered', 'retried')) AS new_columns
  FROM pg_attribute WHERE attrelid = 'kafka_stats'::regclass AND attnum > 0;
SELECT state FROM kafka_breaker;
SELECT count(*) AS dead_letters FROM kafka_dead_letters;

-- from 0.2.0 on, an update keeps the user's views over the extension's views
-- and the privileges granted on them
DROP EXTENSION streamkafka CASCADE;
CREATE EXTENSION streamkafka VERSION '0.2.0';
CREATE ROLE sk_dashboard;
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
              WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'streamkafka')
                AND d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'v'
    LOOP
        EXECUTE format('CREATE VIEW %I AS SELECT * FROM %s', 'mine_' || v::text, v);
        EXECUTE format('GRANT SELECT ON %s TO sk_dashboard', v);
    END LOOP;
END
$$;
SELECT count(*) AS user_views FROM pg_class WHERE relname LIKE 'mine\_%' AND relkind = 'v';
CREATE TEMP TABLE views_of_0_2_0 AS
SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'streamkafka')
   AND d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'v';
ALTER EXTENSION streamkafka UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'streamkafka';
SELECT count(*) AS user_views_kept FROM pg_class WHERE relname LIKE 'mine\_%' AND relkind = 'v';
SELECT v.relname AS view_without_its_grant
  FROM views_of_0_2_0 v
 WHERE NOT has_table_privilege('sk_dashboard', v.relname, 'SELECT')
 ORDER BY 1;
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT oid FROM pg_class WHERE relname LIKE 'mine\_%' AND relkind = 'v' LOOP
        EXECUTE format('SELECT count(*) FROM %s', v);
        EXECUTE format('DROP VIEW %s', v);
    END LOOP;
END
$$;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM sk_dashboard;
DROP ROLE sk_dashboard;
