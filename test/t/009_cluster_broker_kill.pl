# A three-node KRaft cluster loses a partition leader to SIGKILL while
# events stream: with acks = all, the idempotent producer, replication 3 and
# min.insync.replicas 2, every one of 200,000 events published by two
# concurrent sessions arrives exactly once (nothing lost, nothing duplicated),
# in order per key, and kafka_stats counts all of them delivered, none failed
# or dropped.
#
# The cluster is this test's own (test/kafka/kafka-ctl up DIR 3), on
# STREAMKAFKA_TEST_CLUSTER_PORT (default 19500: brokers on 19500, 19502,
# 19504, controllers on the next ports), apart from the run's single broker.
use strict;
use warnings;

use IPC::Run qw(run start timeout);
use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $sessions = 2;
my $per_session = 100_000;
my $per_tx = 5_000;
my $total = $sessions * $per_session;
my $keys_per_session = 97;

# every kafka-ctl call of this test is about the test's own cluster
$ENV{KAFKA_BASE_PORT} = $ENV{STREAMKAFKA_TEST_CLUSTER_PORT} // 19500;
$ENV{KAFKA_UP_TIMEOUT} //= 300;    # a loaded 2-core machine starts 3 JVMs slowly

my ($bootstrap, $dir) = test_kafka('cluster', 3);
my @brokers = split /,/, $bootstrap;
is(scalar @brokers, 3, "a three-node cluster is up: $bootstrap");

my $topic = unique_topic('cluster-kill');
kafka_ctl('topic', $brokers[0], $topic, 6, 3, 'min.insync.replicas=2');

# metadata_of(BROKER) - the topic's partitions as BROKER reports them:
# { partition => { leader => N, replicas => [..], isrs => [..] } }
sub metadata_of
{
	my ($broker) = @_;
	my ($out, $err);
	run([ 'kcat', '-L', '-b', $broker, '-t', $topic, '-m', '10' ],
		'>', \$out, '2>', \$err, timeout(60))
	  or return {};
	my %parts;
	while ($out =~ /^\s+partition (\d+), leader (-?\d+), replicas: ([\d,]*), isrs: ([\d,]*)/mg)
	{
		$parts{$1} = {
			leader => $2,
			replicas => [ split /,/, $3 ],
			isrs => [ split /,/, $4 ]
		};
	}
	return \%parts;
}

# fully_replicated(META) - 6 partitions, each led, with 3 replicas in sync
sub fully_replicated
{
	my ($meta) = @_;
	return 0 unless scalar keys %$meta == 6;
	for my $p (values %$meta)
	{
		return 0
		  unless $p->{leader} > 0
		  && scalar @{ $p->{replicas} } == 3
		  && scalar @{ $p->{isrs} } == 3;
	}
	return 1;
}

# wait until every broker knows the topic fully replicated
my $meta;
for my $broker (@brokers)
{
	my $deadline = time() + 300;
	until (fully_replicated($meta = metadata_of($broker)))
	{
		die "broker $broker never reported $topic with 6 fully replicated partitions"
		  if time() > $deadline;
		sleep(0.3);
	}
}
pass('every broker reports 6 partitions, each with 3 replicas in sync');

my $describe = kafka_ctl('tool', 'org.apache.kafka.tools.TopicCommand',
	'--bootstrap-server', $brokers[0], '--describe', '--topic', $topic);
like($describe, qr/ReplicationFactor: 3\s+Configs:.*\bmin\.insync\.replicas=2\b/,
	'the topic has replication factor 3 and min.insync.replicas 2');

# the victim: node 2 if it leads a partition (it nearly always does), else
# the node that leads the most
my %led;
$led{ $meta->{$_}{leader} }++ for keys %$meta;
my $victim = $led{2} ? 2 : (sort { $led{$b} <=> $led{$a} || $a <=> $b } keys %led)[0];
my @victim_parts = sort { $a <=> $b } grep { $meta->{$_}{leader} == $victim } keys %$meta;
note("partition leaders: "
	  . join(', ', map { "p$_=>$meta->{$_}{leader}" } sort { $a <=> $b } keys %$meta));
note("the victim is node $victim, leader of partition(s) @victim_parts");
my @survivors = grep { $_ ne $brokers[ $victim - 1 ] } @brokers;

my $node = start_pg_node('cluster', $bootstrap,
	"streamkafka.acks = 'all'\n"
	  . "streamkafka.enable_idempotence = on\n"
	  . "streamkafka.queue_size = '256MB'\n");
is($node->safe_psql('postgres',
		"SELECT current_setting('streamkafka.brokers'), current_setting('streamkafka.acks'), "
		  . "current_setting('streamkafka.enable_idempotence')"),
	"$bootstrap|all|on",
	'PostgreSQL produces to all three nodes with acks = all and idempotence');
$node->safe_psql('postgres', 'CREATE TABLE gate (opened boolean)');

# Each session publishes its events in committed transactions of $per_tx:
# the first half at once, then it waits at the gate, opened only after the
# kill, and publishes the second half while the cluster is electing new
# leaders.  Session S publishes values vG for G in [S*$per_session,
# (S+1)*$per_session) with keys of its own (S*97 + G%97): the values of each
# key increase in publish order.
my @publishers;
for my $s (0 .. $sessions - 1)
{
	my $sql = "\\set ON_ERROR_STOP 1\n";
	my $txs = $per_session / $per_tx;
	for my $t (0 .. $txs - 1)
	{
		my $first = $s * $per_session + $t * $per_tx;
		my $last = $first + $per_tx - 1;
		if ($t == $txs / 2)
		{
			$sql .= "DO \$\$ BEGIN WHILE NOT EXISTS (SELECT FROM gate) LOOP "
			  . "PERFORM pg_sleep(0.05); END LOOP; END \$\$;\n";
		}
		$sql .= "BEGIN;\n"
		  . "SELECT count(kafka_publish('$topic', 'v' || g, "
		  . "key => ($s * $keys_per_session + g % $keys_per_session)::text)) "
		  . "FROM generate_series($first, $last) g;\n"
		  . "COMMIT;\n"
		  . "SELECT pg_sleep(" . ($t < $txs / 2 ? '0.1' : '0.4') . ");\n";
	}
	my $file = "$PostgreSQL::Test::Utils::tmp_check/cluster-publisher-$s.sql";
	open my $fh, '>', $file or die "cannot write $file: $!";
	print $fh $sql;
	close $fh;
	my %p = (out => '', err => '');
	$p{h} = start(
		[ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'), '-f', $file ],
		'<', '/dev/null', '>', \$p{out}, '2>', \$p{err}, timeout(1800));
	push @publishers, \%p;
}

# kill the victim once delivery is under way
my $deadline = time() + 600;
my ($queued, $delivered);
while (1)
{
	($queued, $delivered) = split /\|/,
	  $node->safe_psql('postgres', 'SELECT queued, delivered FROM kafka_stats');
	last if $delivered >= 40_000;
	die "delivery never started: queued $queued, delivered $delivered" if time() > $deadline;
	sleep(0.05);
}
kafka_ctl('node', $dir, $victim, 'kill');
my $killed_at = time();
note("node $victim killed with SIGKILL when $queued events were queued and "
	  . "$delivered delivered (" . ($queued - $delivered) . " in flight or waiting)");
$node->safe_psql('postgres', 'INSERT INTO gate VALUES (true)');

for my $s (0 .. $#publishers)
{
	my $p = $publishers[$s];
	my $ok = eval { $p->{h}->finish };
	diag("publisher $s: " . ($@ || $p->{err})) unless $ok;
	ok($ok, "session $s committed all its " . ($per_session / $per_tx) . ' transactions');
}
$queued = $node->safe_psql('postgres', 'SELECT queued FROM kafka_stats');
is($queued, $total, "$total events were queued, half of them after the kill");

# wait until every event is acknowledged or given up on: kafka_flush in
# steps, so progress shows in the log
my $flushed = 'f';
$deadline = time() + 1200;
while (time() < $deadline)
{
	$flushed = $node->safe_psql('postgres', 'SELECT kafka_flush(30000)');
	last if $flushed eq 't';
	my $s = stats_row($node);
	note("still flushing: delivered $s->{delivered}, failed $s->{failed}, "
		  . "queue_events $s->{queue_events}, last_error " . ($s->{last_error} // 'none'));
}
is($flushed, 't', 'kafka_flush reports every event acknowledged or given up on');
note(sprintf('all events finished %.0f s after the kill', time() - $killed_at));

# consume_plain(BOOTSTRAP) - [partition, offset, key, payload] of every
# message of the topic (kcat's JSON output is slow to decode in Perl at
# this size; keys and values here have no tabs or newlines)
sub consume_plain
{
	my ($bs) = @_;
	my ($out, $err);
	run([ 'kcat', '-C', '-b', $bs, '-t', $topic, '-o', 'beginning', '-e', '-q',
			'-f', "%p\t%o\t%k\t%s\n" ],
		'>', \$out, '2>', \$err, timeout(600))
	  or die "kcat failed: $err";
	return [ map { [ split /\t/, $_, 4 ] } split /\n/, $out ];
}

my $messages = consume_plain(join(',', @survivors));
is(scalar @$messages, $total, "the consumer read exactly $total messages from the surviving nodes");

my %count;
my ($bad_value, $bad_key, $out_of_order, $moved) = (0, 0, 0, 0);
my (%last_of_key, %partition_of_key);
for my $m (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @$messages)
{
	my ($partition, $offset, $key, $value) = @$m;
	unless ($value =~ /^v(\d+)$/ && $1 < $total)
	{
		$bad_value++;
		next;
	}
	my $g = $1;
	$count{$g}++;
	my $want_key = int($g / $per_session) * $keys_per_session + $g % $keys_per_session;
	$bad_key++ unless $key eq $want_key;
	$out_of_order++ if exists $last_of_key{$key} && $last_of_key{$key} >= $g;
	$last_of_key{$key} = $g;
	$moved++ if exists $partition_of_key{$key} && $partition_of_key{$key} != $partition;
	$partition_of_key{$key} = $partition;
}
my $duplicated = grep { $count{$_} > 1 } keys %count;
my $duplicates = 0;
$duplicates += $count{$_} - 1 for keys %count;
my $missing = $total - scalar keys %count;
is($bad_value, 0, 'every message is one of the published values');
is(scalar keys %count, $total, "$total distinct values arrived");
is($missing, 0, 'no event was lost');
is($duplicated, 0, "no event arrived twice ($duplicates extra copies)");
is($bad_key, 0, 'every message carries its key');
is($moved, 0, 'all messages of a key are in one partition');
is($out_of_order, 0, 'the values of every key arrived in increasing (publish) order');

my $stats = stats_row($node);
is($stats->{delivered}, $total, "kafka_stats.delivered is $total");
is($stats->{failed}, 0, 'kafka_stats.failed is 0');
is($stats->{dropped}, 0, 'kafka_stats.dropped is 0');
is($stats->{rejected}, 0, 'kafka_stats.rejected is 0');
is($stats->{queue_events}, 0, 'the queue is empty');
note('kafka_stats.last_error: ' . ($stats->{last_error} // 'none'));

my @sk_log = grep { /streamkafka/i } split /\n/, slurp_file($node->logfile);
note(scalar(@sk_log) . ' streamkafka log lines; the last ones:');
note($_) for @sk_log[ ($#sk_log > 20 ? $#sk_log - 20 : 0) .. $#sk_log ];

$node->stop;
done_testing();
