# Resilience against a real Apache Kafka broker: the broker stopped for 30 s
# while sessions publish 100,000 events (breaker opens and closes, every
# event exactly once); PostgreSQL restarted with a backlog while the broker is
# down; the worker SIGKILLed mid-stream (crash restart: the queue survives,
# duplicates only among the unacknowledged).  The accounting identity after
# each.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $kafka_dir = $ENV{STREAMKAFKA_TEST_KAFKA_DIR};

my $node = start_pg_node('resilience', $bootstrap,
	"streamkafka.queue_size = '256MB'\n"
	  . "streamkafka.breaker_failure_threshold = 3\n"
	  . "streamkafka.breaker_recovery_timeout_ms = 2000\n"
	  . "streamkafka.shutdown_timeout_ms = 2000\n"
	  . "restart_after_crash = on\n");    # the test framework turns it off

sub sql { return $node->safe_psql('postgres', $_[0]); }


# payload counts of a topic: (distinct, duplicates)
sub tally
{
	my ($topic) = @_;
	my %count;
	$count{ $_->{payload} }++ for @{ consume_topic($bootstrap, $topic) };
	my $dups = 0;
	$dups += $_ - 1 for values %count;
	return (scalar keys %count, $dups, \%count);
}

# publish events FIRST..LAST as transactions of 1,000; returns seconds taken
sub publish_range
{
	my ($topic, $first, $last) = @_;
	my $t0 = time;
	for (my $i = $first; $i <= $last; $i += 1000)
	{
		my $to = $i + 999 < $last ? $i + 999 : $last;
		sql("SELECT count(kafka_publish('$topic', 'e-' || g, key => (g % 50)::text)) "
			  . "FROM generate_series($i, $to) g");
	}
	return time - $t0;
}

sub broker { kafka_ctl('node', $kafka_dir, 1, $_[0]); }

# --- 1. the broker stops for 30 s in the middle of 100,000 events
my $topic = unique_topic('outage30');
create_topic($bootstrap, $topic, 4);
my $before = publish_range($topic, 1, 20000);
broker('stop');
my $t_stop = time;
my $during = publish_range($topic, 20001, 80000);
ok($node->poll_query_until('postgres', "SELECT state = 'open' FROM kafka_breaker"),
	'the breaker opens while the broker is down');
is(sql("SELECT kafka_health()->>'status'"), 'unhealthy', 'kafka_health() says unhealthy');
identity_holds($node, 'broker down');
sleep(30 - (time - $t_stop)) if time - $t_stop < 30;
broker('start');
my $after = publish_range($topic, 80001, 100000);
diag(sprintf('publish rate: %.0f events/s before, %.0f during the outage, %.0f after',
		20000 / $before, 60000 / $during, 20000 / $after));
wait_for_finished($node, 100000);
ok($node->poll_query_until('postgres', "SELECT state = 'closed' FROM kafka_breaker"),
	'the breaker closes after the broker is back');
ok(sql("SELECT opened_count FROM kafka_breaker") >= 1, 'and it had opened');
my ($distinct, $dups) = tally($topic);
is($distinct, 100000, 'all 100,000 events arrived');
is($dups, 0, 'none twice (idempotent producer)');
is(stats_row($node)->{delivered}, 100000, 'delivered matches the consumer');
identity_holds($node, 'after the outage');

# --- 2. PostgreSQL restarted (fast) with a backlog while the broker is down
my $topic2 = unique_topic('pgrestart');
create_topic($bootstrap, $topic2, 4);
broker('stop');
publish_range($topic2, 1, 10000);
$node->restart(mode => 'fast');
like(slurp_file($node->logfile), qr/saved 10000 unacknowledged events/,
	'the backlog was saved at shutdown');
is(stats_row($node)->{queue_events}, 10000, 'and queued again at start');
broker('start');
wait_for_finished($node, 10000);
($distinct, $dups) = tally($topic2);
is($distinct, 10000, 'the backlog arrived after both came back');
is($dups, 0, 'none twice');
identity_holds($node, 'after the restart');

# --- 3. the worker SIGKILLed mid-stream: a crash restart keeps the queue
my $topic3 = unique_topic('sigkill');
create_topic($bootstrap, $topic3, 4);
# two transactions of 100,000: the worker has them all to send at once
sql("SELECT count(kafka_publish('$topic3', 'e-' || g, key => (g % 50)::text)) "
	. "FROM generate_series(1, 100000) g");
sql("SELECT count(kafka_publish('$topic3', 'e-' || g, key => (g % 50)::text)) "
	. "FROM generate_series(100001, 200000) g");
my $s = stats_row($node);
my $unacked = $s->{queued} - $s->{delivered};
my $topic2_before = sql("SELECT queued FROM kafka_topic_stats WHERE topic = '$topic2'");
ok($topic2_before > 0, "kafka_topic_stats counts the earlier topic ($topic2_before queued)");
my $pid = sql("SELECT kafka_health()->>'worker_pid'");
kill 'KILL', $pid;
diag("killed the worker with $unacked events not yet acknowledged");
ok($unacked > 0, 'the worker was killed mid-stream');
# the server is restarting: connections fail until it is back (under
# valgrind for seconds), so ask again until a new worker answers
ok(poll_through_restart($node,
		"SELECT coalesce((kafka_health()->>'worker_pid')::int NOT IN (0, $pid), false)"),
	'the server restarted and the worker is back');
like(slurp_file($node->logfile), qr/kept \d+ queued events across the crash restart/,
	'the queue survived the crash restart');
wait_for_finished($node, 10000 + 200000);    # counters restarted with the server
my $counts;
($distinct, $dups, $counts) = tally($topic3);
is($distinct, 200000, 'none of the 200,000 events was lost');
ok($dups <= $unacked, "duplicates ($dups) only among the $unacked unacknowledged at the kill");
identity_holds($node, 'after the crash restart');
# per-topic statistics are kept with kafka_stats' counters
is(sql("SELECT queued FROM kafka_topic_stats WHERE topic = '$topic2'"), $topic2_before,
	'kafka_topic_stats kept an earlier topic\'s counts across the crash restart');

$node->stop;
done_testing();
