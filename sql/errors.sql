-- errors: bad input fails with a clear message and SQLSTATE, queues nothing
\set ECHO none
\i test/regress-helpers.sql
\set ECHO all
SELECT queued AS q0, rejected AS r0 FROM kafka_stats \gset

-- topics
SELECT try($$SELECT kafka_publish(NULL, 'v')$$);
SELECT try($$SELECT kafka_publish('', 'v')$$);
SELECT try($$SELECT kafka_publish('.', 'v')$$);
SELECT try($$SELECT kafka_publish('..', 'v')$$);
SELECT try($$SELECT kafka_publish('has space', 'v')$$);
SELECT try($$SELECT kafka_publish('slash/topic', 'v')$$);
SELECT try($$SELECT kafka_publish('ünïcode', 'v')$$);
SELECT try($$SELECT kafka_publish(repeat('t', 250), 'v')$$);
-- headers
SELECT try($$SELECT kafka_publish('t', 'v', headers => '[1, 2]')$$);
SELECT try($$SELECT kafka_publish('t', 'v', headers => '"just a string"')$$);
SELECT try($$SELECT kafka_publish('t', 'v', headers => '{"n": 1}')$$);
SELECT try($$SELECT kafka_publish('t', 'v', headers => '{"b": true}')$$);
SELECT try($$SELECT kafka_publish('t', 'v', headers => '{"o": {"x": "y"}}')$$);
SELECT try($$SELECT kafka_publish('t', 'v', headers => '{"a": ["x", ["y"]]}')$$);
SELECT try($$SELECT kafka_publish('t', 'v', headers => '{"a": ["x", 2]}')$$);
-- partition
SELECT try($$SELECT kafka_publish('t', 'v', partition => -1)$$);
-- kafka_flush
SELECT try($$SELECT kafka_flush(-1)$$);
-- larger than streamkafka.message_max_bytes (8MB here)
SELECT try($$SELECT kafka_publish('t', repeat('x', 9 * 1024 * 1024))$$);
-- a value larger than the queue (4MB here) could ever hold
SELECT try($$SELECT kafka_publish('t', repeat('x', 5 * 1024 * 1024))$$);
SELECT try($$SELECT kafka_publish('t', repeat('x', 5 * 1024 * 1024), transactional => false)$$);
-- a transaction whose events could never fit fails at the call that overflows
SELECT try($$SELECT count(kafka_publish('t', repeat('x', 1024 * 1024))) FROM generate_series(1, 5)$$);

-- none of that queued anything, and none was counted as rejected by a full queue
SELECT queued - :q0 AS queued, rejected - :r0 AS rejected FROM kafka_stats;

-- the right error text reaches the client too
SELECT kafka_publish('bad topic!', 'v');
SELECT kafka_publish('t', 'v', headers => '{"n": 1}');
