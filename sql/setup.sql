-- setup: the extension and the helpers the other regression files use
CREATE EXTENSION streamkafka;

-- what the extension installed
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'streamkafka')
   AND deptype = 'e'
   AND classid <> 'pg_type'::regclass  -- PostgreSQL 18 lists the views' row types too
 ORDER BY 1;

-- wait_finished(n): wait (up to 30 s) until n events are delivered or failed
CREATE FUNCTION wait_finished(n bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    turns int := 0;
BEGIN
    WHILE (SELECT delivered + failed FROM kafka_stats) < n AND turns < 600 LOOP
        PERFORM pg_sleep(0.05);
        turns := turns + 1;
    END LOOP;
    RETURN (SELECT delivered + failed FROM kafka_stats) >= n;
END
$$;

-- try(sql): run a statement; its SQLSTATE, message, detail and hint if it fails
CREATE FUNCTION try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; detail text; hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || msg
        || CASE WHEN detail <> '' THEN E'\n  DETAIL: ' || detail ELSE '' END
        || CASE WHEN hint <> '' THEN E'\n  HINT: ' || hint ELSE '' END;
END
$$;

-- the worker runs librdkafka's mock cluster (no streamkafka.brokers)
SELECT kafka_health()->>'mode' AS mode;
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'streamkafka.%' ORDER BY name;
