# StreamKafkaTest: helpers for streamkafka's TAP tests.
#
# A real Apache Kafka broker is started once per test run by test/run-tap,
# which exports STREAMKAFKA_TEST_BROKERS and STREAMKAFKA_TEST_KAFKA_DIR.  A
# test started on its own (prove test/t/X.pl) starts a broker of its own and
# stops it at exit.  Delivery is checked with a real consumer: kcat.
package StreamKafkaTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(rmtree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IPC::Run qw(run timeout);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use Exporter 'import';
our @EXPORT = qw(kafka_bootstrap kafka3_sasl_broker kafka_ctl kafka_ctl_input unique_topic
  create_topic start_pg_node consume_topic poll_until wait_for_finished stats_row identity_gap
  identity_holds http_get free_tcp_port trust_streamkafka_plugin test_kafka poll_through_restart);

my $test_dir = dirname(abs_path(__FILE__)) . '/..';
my $kafka_ctl = "$test_dir/kafka/kafka-ctl";
my $own_kafka_dir;

# kafka_ctl(ARGS...) - run test/kafka/kafka-ctl, die on failure, return stdout
sub kafka_ctl
{
	return kafka_ctl_input('', @_);
}

# kafka_ctl_input(INPUT, ARGS...) - the same, with INPUT on its stdin
sub kafka_ctl_input
{
	my ($input, @args) = @_;
	my ($out, $err);
	run([ $kafka_ctl, @args ], '<', \$input, '>', \$out, '2>', \$err)
	  or die "kafka-ctl @args failed: $err";
	chomp $out;
	return $out;
}

# kafka_bootstrap() - the bootstrap list of the run's broker
sub kafka_bootstrap
{
	return $ENV{STREAMKAFKA_TEST_BROKERS} if $ENV{STREAMKAFKA_TEST_BROKERS};
	$own_kafka_dir = tempdir('streamkafka-kafka-XXXX', TMPDIR => 1, CLEANUP => 1);
	$ENV{STREAMKAFKA_TEST_KAFKA_DIR} = $own_kafka_dir;
	local $ENV{KAFKA_SASL_SSL} = 1;
	$ENV{STREAMKAFKA_TEST_BROKERS} = kafka_ctl('up', $own_kafka_dir, 1);
	return $ENV{STREAMKAFKA_TEST_BROKERS};
}

my $kafka3_dir;
my @test_kafka_dirs;

# test_kafka(NAME, NODES, EXTRA_CONFIG) - a Kafka of this test's own, NODES
# nodes in tmp_check/kafka-NAME with EXTRA_CONFIG added to each node's
# server.properties, on KAFKA_BASE_PORT (the test sets it: every kafka-ctl
# call of the test is then about this one); stopped when the test ends.
# Returns (its bootstrap list, its directory).
sub test_kafka
{
	my ($name, $nodes, $extra) = @_;
	my $dir = "$PostgreSQL::Test::Utils::tmp_check/kafka-$name";
	rmtree($dir);
	push @test_kafka_dirs, $dir;
	local $ENV{KAFKA_EXTRA_CONFIG} = $extra if defined $extra;
	return (kafka_ctl('up', $dir, $nodes), $dir);
}

# kafka3_sasl_broker() - start a Kafka 3.9.1 broker with a SASL_SSL listener
# for this test (SCRAM with librdkafka before 2.6.1 needs a 3.x broker);
# returns (plaintext bootstrap, SASL_SSL bootstrap, its TLS directory)
sub kafka3_sasl_broker
{
	$kafka3_dir = tempdir('streamkafka-kafka3-XXXX', TMPDIR => 1, CLEANUP => 1);
	local $ENV{KAFKA_LIBS} = "$test_dir/kafka/target/kafka3-libs";
	local $ENV{KAFKA_SASL_SSL} = 1;
	local $ENV{KAFKA_BASE_PORT} = 19300;
	my $plain = kafka_ctl('up', $kafka3_dir, 1);
	return ($plain, '127.0.0.1:19400', "$kafka3_dir/tls");
}

END
{
	local $?;
	system($kafka_ctl, 'down', $_) for @test_kafka_dirs;
	system($kafka_ctl, 'down', $own_kafka_dir) if $own_kafka_dir;
	if ($kafka3_dir)
	{
		local $ENV{KAFKA_LIBS} = "$test_dir/kafka/target/kafka3-libs";
		system($kafka_ctl, 'down', $kafka3_dir);
	}
}

# unique_topic(PREFIX) - a topic name no earlier run used
sub unique_topic
{
	my ($prefix) = @_;
	return sprintf('%s-%d-%d', $prefix, time(), $$);
}

# create_topic(BOOTSTRAP, NAME, PARTITIONS) - a topic with several partitions
sub create_topic
{
	my ($bootstrap, $name, $partitions) = @_;
	kafka_ctl('topic', (split /,/, $bootstrap)[0], $name, $partitions);
}

# start_pg_node(NAME, BROKERS, EXTRA_CONF) - a PostgreSQL with streamkafka
# preloaded and the extension created
sub start_pg_node
{
	my ($name, $brokers, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'streamkafka'\n"
		  . "streamkafka.brokers = '$brokers'\n"
		  . "streamkafka.linger_ms = 2\n"
		  . ($extra // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION streamkafka');
	return $node;
}

# trust_streamkafka_plugin(NODE) - durable mode's slot uses streamkafka as
# its output plugin: on builds that name trusted plugins
# (output_plugin_libraries), add it to the list (takes effect on a reload)
sub trust_streamkafka_plugin
{
	my ($node) = @_;
	my $hardened = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'");
	$node->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, streamkafka'\n")
	  if $hardened;
	return;
}

# consume_topic(BOOTSTRAP, TOPIC) - every message of the topic, read from the
# beginning by kcat: a list of hashes with topic, partition, offset, key,
# payload and headers (a list of [name, value] pairs)
sub consume_topic
{
	my ($bootstrap, $topic) = @_;
	my ($out, $err);
	run([ 'kcat', '-C', '-b', $bootstrap, '-t', $topic, '-o', 'beginning',
			'-e', '-q', '-J' ],
		'>', \$out, '2>', \$err, timeout(120))
	  or die "kcat failed: $err";
	my $json = JSON::PP->new;
	my @messages;
	for my $line (split /\n/, $out)
	{
		my $m = $json->decode($line);
		my @h = @{ $m->{headers} // [] };
		$m->{headers} = [ map { [ $h[ 2 * $_ ], $h[ 2 * $_ + 1 ] ] } 0 .. @h / 2 - 1 ];
		push @messages, $m;
	}
	return \@messages;
}

# poll_through_restart(NODE, SQL) - true once SQL returns t, within
# PG_TEST_TIMEOUT_DEFAULT (180 s; valgrind runs set more), while the server
# may be in a crash restart.  PostgreSQL 18's poll_query_until writes the
# query to psql's standard input and dies ("Broken pipe") when psql already
# gave up on the connection; here each try is its own eval.
sub poll_through_restart
{
	my ($node, $sql) = @_;
	my $t0 = time;
	local $SIG{PIPE} = 'IGNORE';
	while (time - $t0 < ($ENV{PG_TEST_TIMEOUT_DEFAULT} || 180))
	{
		my $r = eval { $node->safe_psql('postgres', $sql) };
		return 1 if defined $r && $r eq 't';
		select(undef, undef, undef, 0.2);
	}
	return 0;
}

# poll_until(NODE, SQL) - true once SQL returns t.  Dies at once, saying
# why, when it cannot happen any more: the worker is gone for 30 s, or no
# counter moved for STALL seconds (10; the queue's own count included),
# or after 180 s in all.  EMPTY_FAILS: also die when the queue is empty.
sub poll_until
{
	my ($node, $sql, %opt) = @_;
	my $stall = $opt{stall} // 10;
	my ($last, $still, $empty, $gone) = ('', 0, 0, 0);
	my $t0 = time;
	while (time - $t0 < 180)
	{
		my $row = eval {
			$node->safe_psql('postgres',
				"SELECT ($sql), queue_events, concat_ws(',', sent, delivered, failed,"
				  . " dropped, dead_lettered, queue_events, delivered_bytes),"
				  . " EXISTS (SELECT FROM pg_stat_activity "
					. "WHERE backend_type = 'streamkafka worker')"
				  . " FROM kafka_stats");
		};
		if (defined $row)
		{
			my ($done, $queue, $progress, $worker) = split /\|/, $row;
			return 1 if $done eq 't';
			$empty = $queue == 0 ? $empty + 1 : 0;
			$still = $progress eq $last ? $still + 1 : 0;
			$last = $progress;
			$gone = $worker eq 't' ? 0 : $gone + 1;
			# empty for 2 s: right after a crash restart the counts are still
			# settling (a CI run under valgrind once read 0 twice in 0.2 s there)
			die "poll_until($sql): the queue is empty" if $opt{empty_fails} && $empty >= 10;
			die "poll_until($sql): the worker is not running" if $gone >= 150;
			die "poll_until($sql): no counter moved for $stall s" if $still >= 5 * $stall;
		}
		select(undef, undef, undef, 0.2);
	}
	die "poll_until($sql): timed out";
}

# wait_for_finished(NODE, N) - wait until N events are delivered or dead
# letters.  Dies at once, saying why, when that cannot happen any more: the
# queue is empty (its own count, for 2 s) with fewer finished, the worker
# is gone for 30 s, or no counter moved for 60 s (180 s in all at most).
sub wait_for_finished
{
	my ($node, $n) = @_;
	eval {
		poll_until($node, "delivered + dead_lettered >= $n", stall => 60, empty_fails => 1);
	};
	die "wait_for_finished($n): $@" if $@;
	return;
}

# stats_row(NODE) - kafka_stats as a hash
sub stats_row
{
	my ($node) = @_;
	my $json = $node->safe_psql('postgres',
		'SELECT row_to_json(s) FROM kafka_stats s');
	return JSON::PP->new->decode($json);
}

# identity_gap(NODE) - queued - (delivered + dropped + dead_lettered +
# queue_events), the last of up to ten reads 0.1 s apart that stops at
# zero: events move between counters only for an instant, so a lasting
# difference is a counting defect (queue_events is the queue's own count)
sub identity_gap
{
	my ($node) = @_;
	my $gap;
	for (1 .. 10)
	{
		my $s = stats_row($node);
		$gap = $s->{queued} - ($s->{delivered} + $s->{dropped} + $s->{dead_lettered}
			  + $s->{queue_events});
		last if $gap == 0;
		select(undef, undef, undef, 0.1);
	}
	return $gap;
}

# identity_holds(NODE, WHEN) - the accounting identity of kafka_stats, as a test
sub identity_holds
{
	my ($node, $when) = @_;
	is(identity_gap($node), 0,
		"accounting: queued = delivered + dropped + dead_lettered + queue_events ($when)");
}

# http_get(HOST, PORT, PATH) - GET http://HOST:PORT/PATH with a plain socket:
# (status, body), or () if nothing listens or no answer came within 30 s
sub http_get
{
	my ($host, $port, $path) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
		Proto => 'tcp', Timeout => 10) or return ();
	local $SIG{ALRM} = sub { die "http_get timeout\n" };
	my $answer = '';
	eval {
		alarm 30;
		print $sock "GET $path HTTP/1.0\r\nHost: $host\r\n\r\n";
		while (defined(my $line = <$sock>)) { $answer .= $line; }
		alarm 0;
	};
	alarm 0;
	close $sock;
	return () if $@ || $answer !~ m{^HTTP/1\.[01] (\d+)};
	my $status = $1;
	my ($body) = $answer =~ /\r\n\r\n(.*)\z/s;
	return ($status, $body // '');
}

# free_tcp_port() - a TCP port of 127.0.0.1 that nothing listens on now
sub free_tcp_port
{
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1) or die "no free port: $!";
	my $port = $sock->sockport;
	close $sock;
	return $port;
}

1;
