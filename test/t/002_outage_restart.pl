# With no reachable broker, SQL keeps publishing into the queue; a full queue
# fails the COMMIT cleanly with nothing half-published; the worker can be
# restarted without losing queued events; pointing streamkafka.brokers at the
# real broker and reloading delivers every queued event exactly once.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $topic = unique_topic('outage');

# port 1 on loopback: connection refused, the broker is "down"
my $node = start_pg_node('outage', '127.0.0.1:1',
	"streamkafka.queue_size = '2MB'\nstreamkafka.message_timeout_ms = 0\n"
	  . "streamkafka.shutdown_timeout_ms = 1000\n");

# 5,000 events in 50 transactions: each statement returns at once
for my $tx (0 .. 49)
{
	my $first = $tx * 100;
	$node->safe_psql('postgres',
		"SELECT count(kafka_publish('$topic', 'e-' || i, key => (i % 10)::text)) "
		  . "FROM generate_series($first, $first + 99) i");
}
my $stats = stats_row($node);
is($stats->{queued}, 5000, 'all 5,000 events were queued while no broker answered');
is($stats->{delivered}, 0, 'none was delivered');
is($stats->{queue_events}, 5000, 'they wait in the queue');

$node->poll_query_until('postgres',
	"SELECT kafka_health()->>'status' = 'unhealthy' "
		. "AND kafka_health()->'checks'->>'brokers' = 'all brokers down'")
  or die 'health never reported the brokers down';
pass('kafka_health() reports the brokers down');

# a transaction that fits in an empty queue but not in what is left fails
# at COMMIT with SQLSTATE 53000, and none of its events is queued
my ($size, $used) = split /\|/, $node->safe_psql('postgres',
	'SELECT queue_size, queue_bytes FROM kafka_stats');
my $event_bytes = 8 * int((48 + length($topic) + 1 + 1000 + 7) / 8);
my $n = int(($size - $used) / $event_bytes) + 10;
ok(32 + $n * $event_bytes < $size, "a transaction of $n events fits in an empty queue");
my ($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT count(kafka_publish('$topic', repeat('x', 1000))) FROM generate_series(1, $n); "
		. "COMMIT;",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  53000: streamkafka queue is full/, 'it fails at COMMIT with 53000');
like($err, qr/none of them is published/, 'the error says nothing was published');
$stats = stats_row($node);
is($stats->{queued}, 5000, 'the failed transaction queued nothing');
is($stats->{rejected}, $n, "its $n events are counted as rejected");

# the worker is stopped (SIGTERM, as an operator would): the postmaster
# starts a new one, and the queue is kept
my $old_pid = $node->safe_psql('postgres', "SELECT kafka_health()->>'worker_pid'");
kill 'TERM', $old_pid;
$node->poll_query_until('postgres',
	"SELECT (kafka_health()->>'worker_pid')::int NOT IN (0, $old_pid)")
  or die 'the worker did not come back';
pass('the worker was restarted by the postmaster');
is(stats_row($node)->{queue_events}, 5000, 'the queued events survived the worker restart');

# now the real broker: reload, and everything arrives exactly once
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.brokers = '$bootstrap'; SELECT pg_reload_conf();");
wait_for_finished($node, 5000);

my $messages = consume_topic($bootstrap, $topic);
is(scalar @$messages, 5000, 'the consumer read 5,000 events');
my %count;
$count{ $_->{payload} }++ for @$messages;
is(scalar keys %count, 5000, 'every queued event arrived');
is((grep { $_ != 1 } values %count), 0, 'none arrived twice');

$stats = stats_row($node);
is($stats->{delivered}, 5000, 'kafka_stats.delivered equals what the consumer read');
is($stats->{queue_events} + $stats->{delivered} + $stats->{failed}, $stats->{queued},
	'queued = delivered + failed + still queued');
is($stats->{queue_bytes}, 0, 'the queue is empty again');

my $log = slurp_file($node->logfile);
like($log, qr/streamkafka producer settings changed: rebuilding the producer/,
	'the reload rebuilt the producer');

$node->stop;
done_testing();
