# An idle producer's brokers are not failing.  Kafka closes connections
# nobody used (connections.max.idle.ms: 10 minutes by default, 2 s on this
# test's own broker); librdkafka then reports every broker down and waits,
# not connected, until it has something to send.  Counted as failures, that
# opened an idle server's circuit breaker and made kafka_health() say
# "all brokers down" while Kafka was fine.  Then a broker that is really
# gone while events wait must still open the breaker.
#
# The broker is this test's own (test/kafka/kafka-ctl up DIR 1) on
# STREAMKAFKA_TEST_IDLE_PORT (default 19520, its controller on 19521).
use strict;
use warnings;

use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't/../perl';
use StreamKafkaTest;

my $idle_ms = 2000;
my $watch_s = 16;

$ENV{KAFKA_BASE_PORT} = $ENV{STREAMKAFKA_TEST_IDLE_PORT} // 19520;
my ($bootstrap, $dir) = test_kafka('idle', 1, "connections.max.idle.ms=$idle_ms");
my $topic = unique_topic('idle');
create_topic($bootstrap, $topic, 1);

my $node = start_pg_node('idle', $bootstrap,
	"streamkafka.breaker_failure_threshold = 2\n"
	  . "streamkafka.breaker_recovery_timeout_ms = 1000\n");
sub sql { return $node->safe_psql('postgres', $_[0]); }

sub wait_for
{
	my ($sql, $what) = @_;
	ok(poll_until($node, $sql, stall => 60), $what);
}

sql("SELECT kafka_publish('$topic', 'first', transactional => false)");
wait_for("SELECT delivered = 1 FROM kafka_stats", 'the first event is delivered');

# 1. idle: the broker closes the producer's connections again and again
my $log_offset = -s $node->logfile;
# the per-broker metric the StreamKafkaBrokerDown alert reads, 1 for a down
# broker
my $broker_down_metric = "(SELECT string_agg(m[1], ',') FROM regexp_matches(
	kafka_metrics_prometheus(), '^streamkafka_broker_down\\{[^}]*\\} ([01])\$', 'gn') m)";
my (%breaker_states, %broker_checks, %broker_states, %down_metrics);
my ($closes, $was_up) = (0, 1);
my $deadline = time() + $watch_s;
while (time() < $deadline)
{
	my ($state, $opened, $check, $brokers, $down) = split /\|/, sql(
		"SELECT state, opened_count, kafka_health()->'checks'->>'brokers',
		        (SELECT string_agg(state, ',') FROM kafka_brokers), $broker_down_metric
		   FROM kafka_breaker");
	$breaker_states{"$state, opened $opened"}++;
	$broker_checks{$check}++;
	$down_metrics{ length($down // '') ? $down : 'no broker listed' }++;
	$broker_states{$_}++ for split /,/, $brokers // '';
	my $up = ($brokers // '') =~ /\bUP\b/ ? 1 : 0;
	$closes++ if $was_up && !$up;
	$was_up = $up;
	sleep 0.25;
}
my $all_down = () = slurp_file($node->logfile, $log_offset) =~ /_ALL_BROKERS_DOWN/g;
note("in $watch_s s idle: $closes closes seen, librdkafka reported every broker down "
	  . "$all_down times");
note('broker states seen: ' . join(', ', map { "$_ x$broker_states{$_}" } sort keys %broker_states));
cmp_ok($closes, '>=', 2, 'the broker closed the idle connections (no broker up, again and again)');
my @unknown = grep { !/^(INIT|DOWN|TRY_CONNECT|CONNECT|SSL_HANDSHAKE|AUTH_LEGACY|UP|UPDATE|
	APIVERSION_QUERY|AUTH_HANDSHAKE|AUTH_REQ|REAUTH)$/x } keys %broker_states;
is("@unknown", '', 'kafka_brokers shows librdkafka\'s state names whole');
is(join('; ', sort keys %breaker_states), 'closed, opened 0',
	'idle, the breaker stays closed and never opened');
# "connecting": librdkafka looks for the cluster again from the bootstrap list
is(join('; ', grep { $_ ne 'ok' && $_ ne 'connecting' } sort keys %broker_checks), '',
	'idle, kafka_health() never finds a broker down');
is(sql("SELECT kafka_health()->>'status'"), 'healthy', 'idle, kafka_health() is healthy');
note('streamkafka_broker_down seen: '
	  . join(', ', map { "$_ x$down_metrics{$_}" } sort keys %down_metrics));
ok($down_metrics{0} && !grep(/1/, keys %down_metrics),
	'idle, streamkafka_broker_down stays 0 (StreamKafkaBrokerDown reads it)');

# 2. the next events go out on a new connection
sql("SELECT count(kafka_publish('$topic', 'after-idle-' || g, transactional => false))
       FROM generate_series(1, 10) g");
wait_for("SELECT delivered = 11 FROM kafka_stats", 'events after the idle time are delivered');

# 3. the broker really gone while events wait: the breaker opens, then closes
#    once it is back, and everything is delivered
kafka_ctl('node', $dir, 1, 'stop');
sql("SELECT count(kafka_publish('$topic', 'outage-' || g, transactional => false))
       FROM generate_series(1, 5) g");
wait_for("SELECT opened_count >= 1 FROM kafka_breaker",
	'a broker gone while events wait opens the breaker');
like(sql("SELECT last_error FROM kafka_breaker"), qr/broker/i, 'the reason is the broker');
wait_for("SELECT $broker_down_metric = '1'", 'and streamkafka_broker_down says 1 for it');
kafka_ctl('node', $dir, 1, 'start');
wait_for("SELECT delivered = 16 AND state = 'closed' FROM kafka_stats, kafka_breaker",
	'broker back: every event delivered, the breaker closed');
wait_for("SELECT $broker_down_metric = '0'", 'streamkafka_broker_down is 0 again');
my $read = consume_topic($bootstrap, $topic);
is(scalar @$read, 16, 'the consumer read all 16 events');
identity_holds($node, 'at the end');

$node->stop;
done_testing();
