# A clean server restart with events the broker never acknowledged: the
# worker saves them to a spill file, the next start queues them before any
# new event, and they reach Kafka exactly once, in their order, with their
# ids.  A restart of only the worker neither saves nor loses anything.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $topic = unique_topic('restart');
create_topic($bootstrap, $topic, 1);
my $node = start_pg_node('restart', '127.0.0.1:1', "streamkafka.shutdown_timeout_ms = 500\n");

# 1,500 events (one transaction of 1,000, 500 single ones) wait for a broker
$node->safe_psql('postgres', qq{
CREATE TABLE ids (id bigint);
BEGIN;
INSERT INTO ids SELECT kafka_publish('$topic', 'before-' || i) FROM generate_series(1, 1000) i;
COMMIT;
INSERT INTO ids SELECT kafka_publish('$topic', 'before-' || i, transactional => false)
  FROM generate_series(1001, 1500) i;
});
is(stats_row($node)->{queue_events}, 1500, '1,500 events are queued, none acknowledged');

# only the worker restarts: nothing is written to or read from disk
my $pid = $node->safe_psql('postgres', "SELECT kafka_health()->>'worker_pid'");
kill 'TERM', $pid;
$node->poll_query_until('postgres', "SELECT (kafka_health()->>'worker_pid')::int NOT IN (0, $pid)")
  or die 'the worker did not come back';
ok(!-e $node->data_dir . '/pg_streamkafka/spill', 'a worker restart leaves no spill file behind');
is(stats_row($node)->{queue_events}, 1500, 'the events are still queued');

# the whole server restarts
$node->restart;
like(slurp_file($node->logfile), qr/streamkafka saved 1500 unacknowledged events/,
	'the stopping worker saved the 1,500 events');
like(slurp_file($node->logfile), qr/streamkafka queued 1500 events saved at the last shutdown/,
	'the next start queued them again');
ok(!-e $node->data_dir . '/pg_streamkafka/spill', 'the spill file was removed once loaded');
my $stats = stats_row($node);
is($stats->{queue_events}, 1500, 'they wait in the queue after the restart');

$node->safe_psql('postgres',
	"SELECT count(kafka_publish('$topic', 'after-' || i)) FROM generate_series(1, 10) i");
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.brokers = '$bootstrap'; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', 'SELECT queue_events = 0 FROM kafka_stats')
  or die 'the queue did not drain';

my @messages = sort { $a->{offset} <=> $b->{offset} } @{ consume_topic($bootstrap, $topic) };
is(scalar @messages, 1510,
	'the consumer read 1,510 events: every saved one and the new ones, once');
is_deeply([ map { $_->{payload} } @messages ],
	[ (map { "before-$_" } 1 .. 1500), (map { "after-$_" } 1 .. 10) ],
	'saved events arrive first, in their order, before the events published after the restart');
$stats = stats_row($node);
is($stats->{delivered}, 1510, 'kafka_stats counts them as delivered');
is($stats->{queued},
	$stats->{delivered} + $stats->{failed} + $stats->{dropped} + $stats->{queue_events},
	'queued = delivered + failed + dropped + queue_events after the restart');

$node->stop;
done_testing();
