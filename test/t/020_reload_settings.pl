# Every reloadable (PGC_SIGHUP) streamkafka setting changed with ALTER SYSTEM
# and pg_reload_conf(), one at a time and back: the server never restarts
# (same postmaster start time, the same worker and monitor processes, no
# "terminated by signal" in the log), both workers take each reload, and the
# HTTP endpoint follows streamkafka.http_port and http_listen_address.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Time::HiRes qw(sleep);
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $tls = "$ENV{STREAMKAFKA_TEST_KAFKA_DIR}/tls";
my ($broker_port) = $bootstrap =~ /:(\d+)/;
my $http_port = free_tcp_port();
my $node = start_pg_node('reload', $bootstrap,
	"streamkafka.lag_groups = '*'\n"
	  . "streamkafka.lag_interval_ms = 500\n"
	  . "streamkafka.http_port = $http_port\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

# a new value for each reloadable setting; the test fails if one is missing
my %new_value = (
	'streamkafka.brokers' => "localhost:$broker_port",
	'streamkafka.acks' => '1',
	'streamkafka.enable_idempotence' => 'off',
	'streamkafka.compression' => 'lz4',
	'streamkafka.linger_ms' => '7',
	'streamkafka.client_id' => 'reloaded',
	'streamkafka.message_timeout_ms' => '60000',
	'streamkafka.shutdown_timeout_ms' => '5000',
	'streamkafka.breaker_failure_threshold' => '7',
	'streamkafka.breaker_recovery_timeout_ms' => '5000',
	'streamkafka.batch_size' => '500000',
	'streamkafka.batch_num_messages' => '5000',
	'streamkafka.message_max_bytes' => '2000000',
	'streamkafka.request_timeout_ms' => '20000',
	'streamkafka.retries' => '10',
	'streamkafka.retry_backoff_ms' => '200',
	'streamkafka.topic_prefix' => 'reloaded.',
	'streamkafka.default_headers' => '{"env": "test"}',
	'streamkafka.rdkafka_options' => 'socket.keepalive.enable=true',
	'streamkafka.security_protocol' => 'ssl',
	'streamkafka.sasl_mechanism' => 'SCRAM-SHA-256',
	'streamkafka.sasl_username' => 'bob',
	'streamkafka.sasl_password' => 'not-a-secret',
	'streamkafka.ssl_ca_location' => "$tls/ca.pem",
	'streamkafka.ssl_certificate_location' => "$tls/ca.pem",
	'streamkafka.ssl_key_location' => "$tls/ca.pem",
	'streamkafka.ssl_key_password' => 'not-a-secret',
	'streamkafka.ssl_verify_hostname' => 'off',
	'streamkafka.lag_groups' => 'nobody',
	'streamkafka.lag_interval_ms' => '700',
	'streamkafka.lag_alert_threshold' => '5',
	'streamkafka.database_queue_share' => '40',
	'streamkafka.durability' => 'wal',    # wal_level = replica: refused loudly
	'streamkafka.id_header' => 'event-id',
	'streamkafka.wal_retention_alert' => '64MB',
	'streamkafka.http_port' => undef,	# moved at every step below
	'streamkafka.http_listen_address' => '127.0.0.2');

my @reloadable = split /\n/,
  sql("SELECT name FROM pg_settings WHERE name LIKE 'streamkafka.%' AND context = 'sighup' "
	. "ORDER BY name");
my @missing = grep { !exists $new_value{$_} } @reloadable;
is("@missing", '', 'the test knows a new value for every reloadable setting');
cmp_ok(scalar @reloadable, '>=', 30, 'there are reloadable settings to try');

my $started = sql('SELECT pg_postmaster_start_time()');
# worker_pids() - the process ids of the worker (from kafka_health()) and of
# the monitor (the one that logged the endpoint's latest address; neither
# pg_stat_activity nor, under valgrind, process titles show it)
sub worker_pids
{
	my @monitor = slurp_file($node->logfile) =~ /\[(\d+)\] LOG:  streamkafka serves \/metrics/g;
	return 'monitor=' . ($monitor[-1] // 'none')
	  . ' worker=' . sql("SELECT kafka_health()->>'worker_pid'");
}
my $pids = worker_pids();
like($pids, qr/^monitor=\d+ worker=\d+$/, 'the worker and the monitor run');

my ($status) = http_get('127.0.0.1', $http_port, '/metrics');
is($status, 200, "the monitor serves /metrics on port $http_port");

# reloads_seen() - how often the worker logged that it took a reload
sub reloads_seen
{
	return () = slurp_file($node->logfile) =~ /streamkafka worker reloaded its settings/g;
}

# wait_until_serving(HOST, PORT) - poll until the monitor answers there
sub wait_until_serving
{
	my ($host, $port) = @_;
	for (1 .. 600)
	{
		my ($code) = http_get($host, $port, '/metrics');
		return 1 if defined $code && $code == 200;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# reload_with(SQL, HOST, WHAT) - run the ALTER SYSTEMs of SQL, move the HTTP
# endpoint to a new port, reload; wait until the worker logged the reload and
# the monitor serves on the new port (it took the reload and went round its
# loop); the old port is closed; the server did not restart
sub reload_with
{
	my ($alter, $host, $what) = @_;
	my $old_port = $http_port;
	my $reloads = reloads_seen();
	$http_port = free_tcp_port();
	sql("$alter ALTER SYSTEM SET streamkafka.http_port = $http_port; SELECT pg_reload_conf();");
	my $deadline = time() + 60;
	sleep 0.1 while reloads_seen() <= $reloads && time() < $deadline;
	ok(reloads_seen() > $reloads, "$what: the worker took the reload");
	ok(wait_until_serving($host, $http_port), "$what: the monitor serves on the new port");
	my @old = http_get($host, $old_port, '/metrics');
	is(scalar @old, 0, "$what: nothing answers on the old port any more");
	is(sql('SELECT pg_postmaster_start_time()'), $started, "$what: the server did not restart");
	is(worker_pids(), $pids, "$what: the same worker and monitor processes");
}

# settings of the producer (the others either do not rebuild it, or count
# only with a security protocol that uses them): a change rebuilds it
my %producer = map { ("streamkafka.$_" => 1) } qw(acks batch_num_messages batch_size brokers
  client_id compression enable_idempotence linger_ms message_max_bytes message_timeout_ms
  request_timeout_ms retries retry_backoff_ms security_protocol rdkafka_options);

# rebuilds_seen() - how often the worker logged that it rebuilds the producer
sub rebuilds_seen
{
	return () = slurp_file($node->logfile) =~ /producer settings changed: rebuilding/g;
}

for my $name (@reloadable)
{
	next if $name eq 'streamkafka.http_port';
	my $value = $new_value{$name};
	my $host = $name eq 'streamkafka.http_listen_address' ? $value : '127.0.0.1';
	my $rebuilds = rebuilds_seen();
	reload_with("ALTER SYSTEM SET $name = " . sql("SELECT quote_literal(\$\$$value\$\$)") . ';',
		$host, "$name changed");
	if ($producer{$name})
	{
		my $deadline = time() + 60;
		sleep 0.1 while rebuilds_seen() <= $rebuilds && time() < $deadline;
		ok(rebuilds_seen() > $rebuilds, "$name changed: the worker rebuilt the producer");
	}
	reload_with("ALTER SYSTEM RESET $name;", '127.0.0.1', "$name reset");
}

# http_port to 0 and back, a few times: the endpoint closes and opens again
for my $round (1 .. 3)
{
	my $old_port = $http_port;
	sql('ALTER SYSTEM SET streamkafka.http_port = 0; SELECT pg_reload_conf();');
	my $closed = 0;
	for (1 .. 600)
	{
		my @answer = http_get('127.0.0.1', $old_port, '/metrics');
		if (!@answer) { $closed = 1; last; }
		select(undef, undef, undef, 0.1);
	}
	ok($closed, "round $round: http_port = 0 closes the endpoint");
	reload_with('', '127.0.0.1', "round $round: http_port set again");
}

# still delivering, and nothing crashed
my $topic = unique_topic('reloaded');
create_topic($bootstrap, $topic, 1);
sql("SELECT kafka_publish('$topic', 'after all the reloads')");
is(sql('SELECT kafka_flush(60000)'), 't', 'the worker still delivers');
is(scalar @{ consume_topic($bootstrap, $topic) }, 1, 'the consumer reads the event');
identity_holds($node, 'after the reloads');
$node->stop('fast');
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/,
	'no process was terminated by a signal');
done_testing();
