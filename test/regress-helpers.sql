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

-- wait_finished(n): wait (up to 30 s) until n events are delivered or failed;
-- gives up at once, with a WARNING saying why, when that cannot happen any
-- more: the queue is empty (its own count, read twice), the worker is gone
-- for 2 s, or no counter moved for 15 s (librdkafka waits up to 10 s before
-- it reconnects to brokers that were down)
CREATE OR REPLACE FUNCTION wait_finished(n bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    last_progress bigint := -1;
    still int := 0;
    empty int := 0;
    no_worker int := 0;
BEGIN
    FOR turn IN 1 .. 600 LOOP
        SELECT delivered + failed AS done, queue_events,
               sent + delivered + failed + dropped + dead_lettered AS progress
          INTO s FROM kafka_stats;
        IF s.done >= n THEN
            RETURN true;
        END IF;
        empty := CASE WHEN s.queue_events = 0 THEN empty + 1 ELSE 0 END;
        still := CASE WHEN s.progress = last_progress THEN still + 1 ELSE 0 END;
        last_progress := s.progress;
        PERFORM pg_stat_clear_snapshot();
        no_worker := CASE WHEN EXISTS (SELECT FROM pg_stat_activity
                                        WHERE backend_type = 'streamkafka worker')
                          THEN 0 ELSE no_worker + 1 END;
        IF empty >= 2 OR still >= 300 OR no_worker >= 40 THEN
            RAISE WARNING 'wait_finished(%) gives up at % finished: %', n, s.done,
                CASE WHEN empty >= 2 THEN 'the queue is empty'
                     WHEN no_worker >= 40 THEN 'the worker is not running'
                     ELSE 'no counter moved for 15 s' END;
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END
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
