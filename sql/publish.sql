-- publish: every value type, keys, headers, partitions, and the ids returned
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
SELECT queued AS q0, delivered + failed AS f0 FROM kafka_stats \gset

-- ids increase
SELECT kafka_publish('regress.publish', 'a') < kafka_publish('regress.publish', 'b') AS ids_increase;

-- text, bytea and jsonb values; a key; a tombstone (null value)
SELECT kafka_publish('regress.publish', 'text value', key => 'k1') > 0 AS text_ok;
SELECT kafka_publish('regress.publish', '\x00ff10'::bytea, key => 'k2') > 0 AS bytea_ok;
SELECT kafka_publish('regress.publish', '{"id": 1, "tags": ["x"]}'::jsonb, key => '1') > 0 AS jsonb_ok;
SELECT kafka_publish('regress.publish', NULL::text, key => 'deleted-key') > 0 AS tombstone_ok;

-- headers: strings, nulls, and arrays (a repeated header)
SELECT kafka_publish('regress.publish', 'with headers',
       headers => '{"source": "regress", "trace": null, "tag": ["a", "b"], "": "empty name"}') > 0 AS headers_ok;

-- an explicit partition (the mock cluster's topics have 4)
SELECT kafka_publish('regress.publish', 'to partition 3', partition => 3) > 0 AS partition_ok;

-- not transactional: queued at once, even in a transaction that rolls back
BEGIN;
SELECT kafka_publish('regress.publish', 'fire now', transactional => false) > 0 AS fired;
SELECT queued - :q0 AS queued_inside_tx FROM kafka_stats;
ROLLBACK;

-- topic names at the limits
SELECT kafka_publish(repeat('t', 249), 'longest topic name') > 0 AS long_topic_ok;
SELECT kafka_publish('A-Za_z.0-9', 'every legal character class') > 0 AS legal_chars_ok;

-- a set of events from one statement
SELECT count(kafka_publish('regress.bulk', 'row ' || i, key => (i % 7)::text))
  FROM generate_series(1, 1000) AS i;

SELECT wait_finished(:f0 + 1011) AS all_finished;
SELECT queued - :q0 AS queued, queue_events, failed FROM kafka_stats;
