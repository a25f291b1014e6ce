-- test/regress-helpers.sql: what every regression file needs, included at
-- its top (psql \i, from the directory make runs in) so that each file also
-- runs alone (make installcheck REGRESS=name).  Idempotent, prints nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamkafka;
RESET client_min_messages;

-- the worker writes dead letters in streamkafka.database, this database
-- (test/regress.conf), which pg_regress made after the server started: wait
-- until the worker has connected to it
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN kafka_health()->'checks'->>'dead_letters' NOT LIKE 'cannot be written%';
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

-- wait_for(query, watch_progress, empty_fails): poll a boolean query every
-- 50 ms until it returns true (up to 40 s).  Gives up at once, with a WARNING
-- saying why, when the worker is gone for 2 s; with watch_progress, when no
-- counter and no breaker field moved for 15 s (librdkafka waits up to 10 s
-- before it reconnects to brokers that were down); with empty_fails, when
-- the queue is empty (its own count, read twice).
CREATE OR REPLACE FUNCTION wait_for(query text, watch_progress boolean DEFAULT false,
                                    empty_fails boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    progress text;
    last_progress text := '';
    still int := 0;
    empty int := 0;
    no_worker int := 0;
BEGIN
    FOR turn IN 1 .. 800 LOOP
        EXECUTE query INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        SELECT concat_ws(',', s.sent, s.delivered, s.failed, s.dropped, s.dead_lettered,
                         s.queue_events, b.state, b.opened_count, b.consecutive_failures),
               CASE WHEN s.queue_events = 0 THEN empty + 1 ELSE 0 END
          INTO progress, empty FROM kafka_stats s, kafka_breaker b;
        still := CASE WHEN progress = last_progress THEN still + 1 ELSE 0 END;
        last_progress := progress;
        PERFORM pg_stat_clear_snapshot();
        no_worker := CASE WHEN EXISTS (SELECT FROM pg_stat_activity
                                        WHERE backend_type = 'streamkafka worker')
                          THEN 0 ELSE no_worker + 1 END;
        IF no_worker >= 40 OR (watch_progress AND still >= 300)
           OR (empty_fails AND empty >= 2) THEN
            RAISE WARNING 'wait_for(%) gives up: %', query,
                CASE WHEN no_worker >= 40 THEN 'the worker is not running'
                     WHEN empty_fails AND empty >= 2 THEN 'the queue is empty'
                     ELSE 'nothing moved for 15 s' END;
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END
$$;

-- wait_finished(n): wait until n events are delivered or failed (wait_for,
-- giving up when nothing moves or the queue is empty)
CREATE OR REPLACE FUNCTION wait_finished(n bigint) RETURNS boolean
LANGUAGE sql AS $$
    SELECT wait_for(pg_catalog.format('SELECT delivered + failed >= %s FROM kafka_stats', n),
                    watch_progress => true, empty_fails => true)
$$;

-- pending(): the events the transaction will publish, as the consumer will
-- see them, without what varies from run to run (times, transaction ids)
CREATE OR REPLACE FUNCTION pending() RETURNS TABLE (topic text, key jsonb, value jsonb)
LANGUAGE sql AS $$
    SELECT topic, key::jsonb,
           convert_from(value, 'UTF8')::jsonb - 'ts_ms' - 'ts_us' - 'ts_ns' - 'txid'
             #- '{source,ts_ms}' #- '{source,ts_us}' #- '{source,ts_ns}' #- '{source,txId}'
      FROM kafka_pending_events()
$$;

-- try(sql): run a statement; its SQLSTATE, message, detail and hint if it fails
CREATE OR REPLACE FUNCTION try(sql text) RETURNS text
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
