# Circuit breaker and dead letters, driven deterministically by fault
# injection into librdkafka's embedded mock cluster (no real broker here: the
# mock is the only way to make Kafka fail on demand, request by request).
# Every breaker transition, the dead-letter round trip and the accounting
# identity after each scenario.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use lib 't/../perl';
use StreamKafkaTest;

my $node = start_pg_node('breaker', '',
	"streamkafka.breaker_failure_threshold = 3\n"
	  . "streamkafka.breaker_recovery_timeout_ms = 600000\n"
	  . "streamkafka.enable_idempotence = off\n"
	  . "streamkafka.retries = 0\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }


wait_for("SELECT (kafka_health()->>'producer_ready')::bool", 'mock producer ready');
sql("SELECT kafka_publish('orders', 'warm-up', transactional => false)");
wait_for("SELECT delivered = 1 FROM kafka_stats", 'warm-up event delivered');
is(sql("SELECT state FROM kafka_breaker"), 'closed', 'breaker starts closed');

# 1. three failed Produce requests in a row open the breaker
sql("SELECT kafka_mock_fault('produce_errors', 3, 19)");    # NOT_ENOUGH_REPLICAS
for my $i (1 .. 3)
{
	sql("SELECT kafka_publish('orders', 'bad-$i', key => 'k$i', headers => '{\"h\": \"$i\"}', "
		. "transactional => false)");
	wait_for("SELECT failed >= $i FROM kafka_stats", "produce error $i reported");
}
wait_for("SELECT state = 'open' FROM kafka_breaker", 'three consecutive failures open the breaker');
is(sql("SELECT opened_count || ' ' || consecutive_failures || ' ' || (next_probe_at > now()) "
	. "FROM kafka_breaker"),
	'1 3 true', 'kafka_breaker: opened once, 3 failures, a probe is due later');
like(sql("SELECT last_error FROM kafka_breaker"), qr/Not enough in-sync replicas/,
	'kafka_breaker shows the last error');

# the refused events are dead letters, with their error, key and headers
wait_for("SELECT dead_lettered = 3 FROM kafka_stats", 'three dead letters written');
is(sql("SELECT string_agg(convert_from(value, 'UTF8') || '/' || convert_from(key, 'UTF8') || '/' "
	. "|| (headers->>'h') || '/' || error_name || '/' || attempts, ',' ORDER BY id) "
		. "FROM kafka_dead_letters"),
	'bad-1/k1/1/NOT_ENOUGH_REPLICAS/1,bad-2/k2/2/NOT_ENOUGH_REPLICAS/1,'
	  . 'bad-3/k3/3/NOT_ENOUGH_REPLICAS/1',
	'dead letters keep value, key, headers, error and attempts');
identity_holds($node, 'after the dead letters');

# 2. while open, events wait in the queue
sql("SELECT count(kafka_publish('orders', 'held-' || g)) FROM generate_series(1, 5) g");
sleep 2;
my $s = stats_row($node);
is($s->{delivered}, 1, 'nothing is sent while the breaker is open');
is($s->{queue_events}, 5, 'the five new events wait in the queue');
is(sql("SELECT state FROM kafka_breaker"), 'open', 'still open before the recovery timeout');
identity_holds($node, 'while open');

# 3. recovery timeout (reloaded) -> half open -> the probe succeeds -> closed
sql("ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 300");
sql("SELECT pg_reload_conf()");
wait_for("SELECT state = 'closed' FROM kafka_breaker", 'the probe closes the breaker');
wait_for("SELECT delivered = 6 FROM kafka_stats", 'the held events are delivered after recovery');
my $log = slurp_file($node->logfile);
like($log, qr/circuit breaker is open: events wait in the queue/, 'log: opened');
like($log, qr/circuit breaker is half open: sending one probe event/, 'log: half open');
like($log, qr/circuit breaker is closed: events flow again/, 'log: closed');

# 4. the dead letters are retried and then removed
is( sql("BEGIN; SELECT kafka_retry_dead_letters(min_id => 0);"
		  . " SELECT count(*) FROM kafka_dead_letters WHERE retry_queued_at IS NOT NULL;"
		  . " SELECT kafka_retry_dead_letters(); COMMIT;"),
	"3\n3\n0",
	'three dead letters queued again, marked, and not queued twice');
wait_for("SELECT delivered = 9 AND retried = 3 FROM kafka_stats", 'retried dead letters delivered');
wait_for("SELECT count(*) = 0 FROM kafka_dead_letters", 'delivered dead letters leave the table');
identity_holds($node, 'after the retry');

# 5. every broker down: opens from the statistics; a probe that gets no answer
#    opens it again; brokers back: closed, everything delivered
sql("ALTER SYSTEM SET streamkafka.breaker_recovery_timeout_ms = 1500");
sql("SELECT pg_reload_conf()");
sql("SELECT kafka_mock_fault('brokers_down')");
sql("SELECT count(kafka_publish('orders', 'outage-' || g)) FROM generate_series(1, 10) g");
wait_for("SELECT state = 'open' AND opened_count = 2 FROM kafka_breaker",
	'brokers down open the breaker');
like(sql("SELECT last_error FROM kafka_breaker"), qr/no broker is up|down/i,
	'the reason is the brokers');
wait_for("SELECT opened_count >= 3 FROM kafka_breaker", 'a failed probe opens it again');
identity_holds($node, 'during the outage');
sql("SELECT kafka_mock_fault('brokers_up')");
wait_for("SELECT state = 'closed' FROM kafka_breaker", 'brokers back: closed');
wait_for("SELECT delivered = 19 FROM kafka_stats", 'events queued during the outage delivered');
is(sql("SELECT dead_lettered FROM kafka_stats"), '3', 'the outage made no dead letters');

# 6. added latency slows delivery but is not a failure
sql("SELECT kafka_mock_fault('rtt', 300)");
sql("SELECT count(kafka_publish('orders', 'slow-' || g)) FROM generate_series(1, 5) g");
wait_for("SELECT delivered = 24 FROM kafka_stats", 'events delivered through 300 ms of latency');
is(sql("SELECT state || ' ' || consecutive_failures FROM kafka_breaker"), 'closed 0',
	'latency does not trip the breaker');
sql("SELECT kafka_mock_fault('rtt', 0)");
identity_holds($node, 'at the end');

$node->stop;
done_testing();
