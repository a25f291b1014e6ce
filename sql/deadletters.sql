-- deadletters: who may read, write and retry kafka_dead_letters, and where
-- they are (checked from a database other than streamkafka.database)
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
-- rows record where the event came from
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'kafka_dead_letters'::regclass AND attname IN ('database', 'role')
 ORDER BY attnum;

-- the rows are in a table publishers cannot touch; they read a filtering
-- view; the database's owner reads the rows (pg_dump)
SELECT relname, relkind, reloptions FROM pg_class
 WHERE relname IN ('kafka_dead_letters', 'kafka_dead_letter_rows') ORDER BY 1;
SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants
 WHERE table_name IN ('kafka_dead_letters', 'kafka_dead_letter_rows')
   AND grantee IN ('streamkafka_publisher', 'pg_database_owner', 'PUBLIC') ORDER BY 1, 2, 3;

-- publishers read (their rows) but neither write nor lock the table
CREATE ROLE dl_publisher IN ROLE streamkafka_publisher;
SET ROLE dl_publisher;
SELECT try($$SELECT count(*) FROM kafka_dead_letters$$);
SELECT try($$UPDATE kafka_dead_letters SET value = 'forged'$$);
SELECT try($$DELETE FROM kafka_dead_letters$$);
SELECT try($$INSERT INTO kafka_dead_letters (id, topic, error_code, error_name, error, attempts,
                 first_failed_at, last_failed_at) VALUES (1, 't', 0, 'x', 'x', 1, now(), now())$$);
SELECT try($$LOCK TABLE kafka_dead_letters IN SHARE ROW EXCLUSIVE MODE$$);
SELECT try($$SELECT 1 FROM kafka_dead_letters FOR UPDATE$$);
SELECT try($$SELECT count(*) FROM kafka_dead_letter_rows$$);
-- the requeue that took the event from its caller is gone
SELECT try($$SELECT kafka_requeue_dead_letter(1, 't', NULL, NULL, NULL, NULL, 0)$$);
-- an unknown id is refused
SELECT try($$SELECT kafka_requeue_dead_letter(123456789)$$);
RESET ROLE;
-- retries are refused outside streamkafka.database, with a hint naming it
SELECT current_database() AS dl_db \gset
CREATE DATABASE dl_elsewhere;
\c dl_elsewhere
SET client_min_messages = warning;
CREATE EXTENSION streamkafka;
RESET client_min_messages;
SET ROLE dl_publisher;
\set VERBOSITY default
SELECT kafka_retry_dead_letters();
SELECT kafka_requeue_dead_letter(1);
RESET ROLE;
\c :dl_db
DROP DATABASE dl_elsewhere;
DROP ROLE dl_publisher;
