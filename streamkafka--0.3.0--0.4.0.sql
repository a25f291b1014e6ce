-- streamkafka 0.3.0 -> 0.4.0: durable mode (streamkafka.durability = 'wal').
-- CREATE EXTENSION runs 0.1.0's script and the upgrade scripts after it, so
-- new installs and upgrades get the same objects.

\echo Use "ALTER EXTENSION streamkafka UPDATE TO '0.4.0'" to load this file. \quit

CREATE FUNCTION kafka_durability(
    OUT durability text,
    OUT slot text,
    OUT wal_retained_bytes bigint,
    OUT wal_undelivered_bytes bigint,
    OUT oldest_undelivered_commit timestamptz,
    OUT finding text)
RETURNS record
AS 'MODULE_PATHNAME', 'streamkafka_durability'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION kafka_durability() IS
    'durable mode: memory or wal, the slot "streamkafka" (ready, missing, invalidated), '
    'WAL it keeps and WAL of undelivered events in bytes, the oldest undelivered commit, '
    'and the health check''s finding';
REVOKE ALL ON FUNCTION kafka_durability() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kafka_durability() TO pg_monitor, streamkafka_publisher;

-- new columns at the end: views of the user's over kafka_stats are kept
CREATE OR REPLACE VIEW kafka_stats AS
SELECT s.*, d.wal_retained_bytes, d.oldest_undelivered_commit AS wal_oldest_undelivered_commit
  FROM @extschema@.kafka_stats_snapshot() s CROSS JOIN @extschema@.kafka_durability() d;
