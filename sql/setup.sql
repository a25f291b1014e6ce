-- setup: the extension and the helpers the other regression files use
CREATE EXTENSION streamkafka;
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
SELECT kafka_health()->'checks'->>'dead_letters' AS dead_letters_check;

-- what the extension installed
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'streamkafka')
   AND deptype = 'e'
   AND classid <> 'pg_type'::regclass  -- PostgreSQL 18 lists the views' row types too
 ORDER BY 1;

-- the worker runs librdkafka's mock cluster (no streamkafka.brokers)
SELECT kafka_health()->>'mode' AS mode;
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'streamkafka.%' ORDER BY name;
