# Observability against a real Apache Kafka broker: per-topic counts equal
# what a consumer reads; latency percentiles follow linger_ms; a stopped
# broker shows in kafka_brokers and kafka_health(); consumer lag per
# partition equals what Kafka's own kafka-consumer-groups tool reports, and
# reaches 0 when the group catches up; kafka_topics shows the partitions;
# the Prometheus text passes `promtool check metrics`; the worker serves
# /metrics and /health; a traceparent set in the session reaches consumers.
use strict;
use warnings;

use FindBin;
use IPC::Run qw(run timeout);
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $kafka_dir = $ENV{STREAMKAFKA_TEST_KAFKA_DIR};
my $http_port = 19280 + ($$ % 100);
my $node = start_pg_node('observe', $bootstrap,
	"streamkafka.lag_groups = '*'\n"
	  . "streamkafka.lag_interval_ms = 500\n"
	  . "streamkafka.lag_alert_threshold = 100\n"
	  . "streamkafka.http_port = $http_port\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { my ($q, $what) = @_; ok($node->poll_query_until('postgres', $q), $what); }

sub publish
{
	my ($topic, $n, $extra) = @_;
	sql("SELECT count(kafka_publish('$topic', 'v' || g, key => (g % 16)::text$extra)) "
		. "FROM generate_series(1, $n) g");
}

# --- per-topic counts match the consumer; latency follows linger_ms
my $fast = unique_topic('fast');
create_topic($bootstrap, $fast, 4);
publish($fast, 2000, ', transactional => false');
wait_for("SELECT delivered = 2000 FROM kafka_topic_stats WHERE topic = '$fast'",
	'fast topic delivered');
is(scalar @{ consume_topic($bootstrap, $fast) }, 2000,
	'the consumer reads what kafka_topic_stats counts');
my $p50_fast = sql("SELECT latency_p50_ms FROM kafka_topic_stats WHERE topic = '$fast'");

sql("ALTER SYSTEM SET streamkafka.linger_ms = 1500; SELECT pg_reload_conf()");
sleep 1;
my $slow = unique_topic('slow');
create_topic($bootstrap, $slow, 4);
publish($slow, 2000, ', transactional => false');
wait_for("SELECT delivered = 2000 FROM kafka_topic_stats WHERE topic = '$slow'",
	'slow topic delivered');
my $p50_slow = sql("SELECT latency_p50_ms FROM kafka_topic_stats WHERE topic = '$slow'");
diag("latency p50: $p50_fast ms with linger_ms 2, $p50_slow ms with linger_ms 1500");
ok($p50_slow > $p50_fast, 'the median latency rises with linger_ms');
sql("ALTER SYSTEM SET streamkafka.linger_ms = 2; SELECT pg_reload_conf()");

# --- consumer lag, checked against Kafka's own tool
# one partition, so the group's 300 events are the first 300 of it
my $lagged = unique_topic('lagged');
create_topic($bootstrap, $lagged, 1);
publish($lagged, 1000, '');
wait_for("SELECT delivered = 1000 FROM kafka_topic_stats WHERE topic = '$lagged'",
	'lag topic delivered');
my $group = "grp-$$";
my ($out, $err);
run([ 'kcat', '-b', $bootstrap, '-G', $group, '-X', 'auto.offset.reset=earliest',
		'-c', '300', '-q', $lagged ], '>', \$out, '2>', \$err, timeout(120))
  or die "kcat -G: $err";
is(scalar(split /\n/, $out), 300, 'a consumer group read 300 of 1,000 events and committed');

my $describe = kafka_ctl('tool', 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
	'--bootstrap-server', $bootstrap, '--describe', '--group', $group);
my %kafka_lag;
for my $line (split /\n/, $describe)
{
	my @f = split ' ', $line;
	$kafka_lag{ $f[2] } = $f[5] if @f >= 6 && $f[1] eq $lagged && $f[5] =~ /^\d+$/;
}
is_deeply(\%kafka_lag, { 0 => 700 }, 'kafka-consumer-groups reports a lag of 700');
my $expected = join ',', map { "$_:$kafka_lag{$_}" } sort keys %kafka_lag;
wait_for("SELECT string_agg(partition || ':' || lag, ',' ORDER BY partition) = '$expected'"
	  . " FROM kafka_consumer_lag WHERE group_id = '$group' AND topic = '$lagged'",
	"kafka_consumer_lag equals Kafka's own lag per partition ($expected)");
is(sql("SELECT sum(lag) FROM kafka_consumer_lag WHERE group_id = '$group'"), 700, 'total lag 700');
is(sql("SELECT bool_and(lag = high_watermark - committed_offset) FROM kafka_consumer_lag "
	. "WHERE group_id = '$group'"),
	't', 'lag = high watermark - committed offset');
wait_for("SELECT kafka_health()->'checks'->>'consumer_lag' LIKE 'a consumer group lags 700%'",
	'kafka_health() reports the lag over lag_alert_threshold');

run([ 'kcat', '-b', $bootstrap, '-G', $group, '-X', 'auto.offset.reset=earliest',
		'-c', '700', '-q', $lagged ], '>', \$out, '2>', \$err, timeout(120))
  or die "kcat -G: $err";
wait_for("SELECT sum(lag) = 0 FROM kafka_consumer_lag WHERE group_id = '$group'",
	'the lag reaches 0 when the group catches up');

# --- topic metadata
is(sql("SELECT count(*) || ' ' || bool_and(leader = 1) || ' ' || bool_and(NOT under_replicated) "
	. "FROM kafka_topics WHERE topic = '$lagged'"),
	'1 true true', 'kafka_topics: the partition, led by broker 1, fully replicated');

# --- traceparent reaches the consumer
my $traced = unique_topic('traced');
create_topic($bootstrap, $traced, 1);
my $tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
sql("BEGIN; SET LOCAL streamkafka.traceparent = '$tp'; SELECT kafka_publish('$traced', 'x'); "
	. "COMMIT;");
wait_for("SELECT delivered = 1 FROM kafka_topic_stats WHERE topic = '$traced'",
	'traced event delivered');
is_deeply(consume_topic($bootstrap, $traced)->[0]{headers}, [ [ 'traceparent', $tp ] ],
	'the consumer sees the traceparent header');

# --- Prometheus: promtool accepts the text; HTTP serves it and /health
my $metrics = sql('SELECT kafka_metrics_prometheus()');
my ($pout, $perr) = ('', '');
run([ 'promtool', 'check', 'metrics' ], '<', \"$metrics\n", '>', \$pout, '2>', \$perr);
is($? >> 8, 0, 'promtool check metrics accepts kafka_metrics_prometheus()') or diag("$pout$perr");
my $exposition = "$PostgreSQL::Test::Utils::tmp_check/metrics.txt";
PostgreSQL::Test::Utils::append_to_file($exposition, "$metrics\n");
my $root = "$FindBin::RealBin/../..";
run([ "$root/test/monitoring-check", $exposition ], '>', \$pout, '2>&1');
is($? >> 8, 0, 'every metric name and type is the one the dashboard and alert rules use')
  or diag($pout);
like($metrics,
	qr/^streamkafka_consumer_lag\{group="\Q$group\E",topic="\Q$lagged\E",partition="0"\} 0$/m,
	'the lag series is there');
like($metrics, qr/^streamkafka_topic_events_delivered_total\{topic="\Q$fast\E"\} 2000$/m,
	'per-topic counters are there');

my ($body, $cerr);
run([ 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', "http://127.0.0.1:$http_port/metrics" ],
	'>', \$body, '2>', \$cerr, timeout(30));
like($body, qr/^streamkafka_events_delivered_total \d+$/m, 'curl reads /metrics from the worker');
like($body, qr/\n200$/, '/metrics answers 200');
run([ 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', "http://127.0.0.1:$http_port/health" ],
	'>', \$body, '2>', \$cerr, timeout(30));
like($body, qr/"status": "(healthy|degraded)"/, 'curl reads /health');

# --- a stopped broker shows in kafka_brokers, kafka_health() and /health
kafka_ctl('node', $kafka_dir, 1, 'stop');
wait_for("SELECT count(*) > 0 AND bool_and(state <> 'UP') FROM kafka_brokers",
	'kafka_brokers: the broker is not up');
wait_for("SELECT kafka_health()->>'status' = 'unhealthy' "
	. "AND kafka_health()->'checks'->>'brokers' = 'all brokers down'",
	'kafka_health(): unhealthy, all brokers down');
ok(defined sql("SELECT last_error FROM kafka_brokers WHERE last_error IS NOT NULL LIMIT 1"),
	'the broker has a last error');
run([ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', "http://127.0.0.1:$http_port/health" ],
	'>', \$body, '2>', \$cerr, timeout(30));
is($body, '503', '/health answers 503 while unhealthy');
kafka_ctl('node', $kafka_dir, 1, 'start');
# nothing is published now: librdkafka would connect only once events wait
# (it left the restarted broker unconnected with 2.14.2), so the worker asks
# it to connect while no broker is up
wait_for("SELECT bool_and(state = 'UP') FROM kafka_brokers", 'the broker is up again');
wait_for("SELECT kafka_health()->'checks'->>'brokers' = 'ok'",
	'kafka_health() finds the brokers ok again, with nothing published');
ok(sql("SELECT disconnects >= 1 FROM kafka_brokers WHERE id = 1"), 'the disconnect was counted');

$node->stop;
done_testing();
