# Accounting and byte-exact delivery on librdkafka's embedded mock cluster
# (no real broker; seconds): the queue wraps many times while the cluster is
# slow, and every payload is checked byte for byte where a consumer reads it
# (queue space given back before Kafka's acknowledgement would be rewritten
# under librdkafka, which sends from the queue without a copy); the spill
# file's round trip across a clean restart; and the identity's checks failing
# when a counter is frozen, with the log saying by how much.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use lib 't/../perl';
use StreamKafkaTest;

my $node = start_pg_node('accounting_mock', '',
	"streamkafka.queue_size = '1MB'\n"
	  . "streamkafka.overflow = block\n"
	  . "streamkafka.enqueue_timeout_ms = 120000\n"
	  . "streamkafka.shutdown_timeout_ms = 1000\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

ok($node->poll_query_until('postgres', "SELECT (kafka_health()->>'producer_ready')::bool"),
	'the mock producer is ready');

# the payload of event g: 640 to 2,560 bytes that differ for every g (few
# large events: the test stays short under valgrind)
my $payload_sql = "repeat(md5(g::text), 20 + g % 61)";

# consumed(TOPIC) - "count|distinct keys|intact payloads" as read back
sub consumed
{
	my ($topic) = @_;
	return sql(
		"SELECT count(*), count(DISTINCT key), count(*) FILTER (WHERE value = "
		  . "convert_to(repeat(md5(convert_from(key, 'UTF8')), "
		  . "20 + convert_from(key, 'UTF8')::int % 61), 'UTF8'))"
		  . " FROM kafka_test_consume('$topic', 60000)");
}

# 1. the queue (1 MB) wraps many times while every request takes 100 ms
my $n = 7000;
sql("SELECT kafka_mock_fault('rtt', 100)");
sql("SELECT count(kafka_publish('acct.wrap', $payload_sql, key => g::text, transactional => false))"
	  . " FROM generate_series(1, $n) g");
my $s = stats_row($node);
my $bytes = sql("SELECT sum(octet_length($payload_sql)) FROM generate_series(1, $n) g");
ok($bytes > 10 * $s->{queue_size},
	"the payloads ($bytes bytes) went around the queue ($s->{queue_size} bytes) over ten times");
wait_for_finished($node, $n);
sql("SELECT kafka_mock_fault('rtt', 0)");
is(consumed('acct.wrap'), "$n|$n|$n",
	'the consumer read every event once, each payload byte for byte');
is(stats_row($node)->{delivered}, $n, 'delivered equals what the consumer read');
identity_holds($node, 'after the wraps');

# 2. the spill file: events waiting at a clean stop are sent after the start
my $held = 500;
sql("SELECT kafka_mock_fault('brokers_down')");
sql("SELECT count(kafka_publish('acct.spill', $payload_sql, key => g::text, "
	. "transactional => false))"
	  . " FROM generate_series(1, $held) g");
is(stats_row($node)->{queue_events}, $held, 'the events wait in the queue');
$node->restart(mode => 'fast');
like(slurp_file($node->logfile), qr/saved $held unacknowledged events/, 'saved at the stop');
ok($node->poll_query_until('postgres', "SELECT (kafka_health()->>'producer_ready')::bool"),
	'the producer is back (a new mock cluster, brokers up)');
wait_for_finished($node, $held);
is(consumed('acct.spill'), "$held|$held|$held",
	'the consumer read every saved event once, byte for byte');
identity_holds($node, 'after the spill round trip');

# 3. a frozen counter: the identity's checks fail, and say by how much
sql("SELECT kafka_test_freeze_counter('delivered')");
my $before = stats_row($node)->{queued};
sql("SELECT count(kafka_publish('acct.frozen', 'f' || g, transactional => false))"
	  . " FROM generate_series(1, 3) g");
ok(poll_until($node, 'queue_events = 0'), 'the three events left the queue');
is(identity_gap($node), 3, 'identity_holds would fail: queued exceeds the rest by the 3 uncounted');
like(sql("SELECT kafka_health()->'checks'->>'accounting'"), qr/by 3$/,
	'kafka_health() says the accounting is off by 3');
like(slurp_file($node->logfile), qr/accounting does not add up: queued \d+, .* differ from it by 3/,
	'the log says by how much');
eval { wait_for_finished($node, $before + 3) };
like($@, qr/wait_for_finished.*the queue is empty/,
	'wait_for_finished gives up at once: the events it waits for are no longer queued');
sql("SELECT kafka_test_freeze_counter('delivered', false)");
sql("SELECT kafka_stats_reset()");
identity_holds($node, 'after a reset');

$node->stop;
done_testing();
