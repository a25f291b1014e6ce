# SASL_SSL against real brokers: a listener with TLS (certificate from a CA
# made with openssl by the harness) and SASL PLAIN on the run's Kafka 4.1.1
# broker, and SCRAM-SHA-256 and SCRAM-SHA-512 (credentials made by Kafka's
# StorageTool) on that broker when the loaded librdkafka is 2.6.1 or later,
# on a Kafka 3.9.1 broker started here when it is older (librdkafka before
# 2.6.1 cannot do SCRAM with 4.x brokers).  The right credentials deliver; a wrong
# password or an untrusted CA fail visibly (health, counted failures, no
# crash); the password never appears in SHOW, pg_settings, kafka_health(),
# kafka_stats or the server log.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $tls = "$ENV{STREAMKAFKA_TEST_KAFKA_DIR}/tls";
my ($port) = $bootstrap =~ /:(\d+)/;
my $sasl_bootstrap = '127.0.0.1:' . ($port + 100);
my $password = slurp_file("$tls/password");
chomp $password;
my $topic = unique_topic('secure');

# secrets are given as files, so that only their paths reach the log
# (PostgreSQL logs "parameter ... changed to ..." on every reload)
my $secrets = PostgreSQL::Test::Utils::tempdir();
append_to_file("$secrets/right", "$password\n");
append_to_file("$secrets/wrong", "not-the-password\n");
my $node = start_pg_node('secure', $sasl_bootstrap, qq{
streamkafka.security_protocol = 'sasl_ssl'
streamkafka.sasl_mechanism = 'PLAIN'
streamkafka.sasl_username = 'alice'
streamkafka.sasl_password = 'file:$secrets/right'
streamkafka.ssl_ca_location = '$tls/ca.pem'
streamkafka.message_timeout_ms = 4000
});

# --- the right credentials deliver ------------------------------------------------
$node->safe_psql('postgres',
	"SELECT count(kafka_publish('$topic', 'secret-' || i, key => i::text)) "
		. "FROM generate_series(1, 500) i");
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't',
	'events over SASL_SSL are acknowledged');
my $messages = consume_topic($bootstrap, $topic);
is(scalar @$messages, 500, 'the consumer read all 500 events sent over SASL_SSL with PLAIN');
is(stats_row($node)->{failed}, 0, 'none failed');

# --- the password is never shown --------------------------------------------------
is($node->safe_psql('postgres', 'SHOW streamkafka.sasl_password'), '********',
	'SHOW masks the password');
my $everywhere = $node->safe_psql('postgres', q{
SELECT string_agg(coalesce(setting, '') || reset_val || coalesce(boot_val, ''), ' ')
  FROM pg_settings
UNION ALL SELECT kafka_health()::text
UNION ALL SELECT row_to_json(s)::text FROM kafka_stats s});
unlike($everywhere, qr/\Q$password\E/,
	'pg_settings, kafka_health() and kafka_stats do not contain the password');
$node->safe_psql('postgres', 'CREATE ROLE watcher IN ROLE pg_monitor');
my ($ret, $shown) = $node->psql('postgres',
	"SET ROLE watcher; SELECT current_setting('streamkafka.sasl_password')");
is($shown, '********', 'a pg_monitor member sees only ********');

# --- a wrong password fails visibly, counted, without a crash ---------------------
my $log_at = length(slurp_file($node->logfile));
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.sasl_password = 'file:$secrets/wrong'; SELECT pg_reload_conf();");
$node->poll_query_until('postgres',
	"SELECT kafka_health()->>'last_error' ~ 'Authentication' "
		. "AND kafka_health()->>'status' = 'unhealthy'")
  or die 'the authentication failure did not show in kafka_health()';
pass('kafka_health() reports the authentication failure and turns unhealthy');
my $bad_topic = unique_topic('secure-bad');
$node->safe_psql('postgres',
	"SELECT count(kafka_publish('$bad_topic', 'x' || i)) FROM generate_series(1, 50) i");
# each event either waits in the queue (the breaker opened on the
# authentication failures) or, if librdkafka already held it, is refused after
# message_timeout_ms and kept as a dead letter: none is lost
$node->poll_query_until('postgres',
	"SELECT opened_count >= 1 FROM kafka_breaker")
  or die 'the breaker never opened';
pass('authentication failures open the circuit breaker');
my $stats = stats_row($node);
diag("wrong password: $stats->{queue_events} events wait in the queue, "
	  . "$stats->{failed} were refused (dead letters: $stats->{dead_lettered})");
identity_holds($node, 'wrong password');
like($node->safe_psql('postgres', "SELECT kafka_health()->>'worker_running'"), qr/true/,
	'the worker is still running');

# --- an untrusted CA: the TLS handshake is refused --------------------------------
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.sasl_password = 'file:$secrets/right'; "
	  . "ALTER SYSTEM SET streamkafka.ssl_ca_location = '$tls/other-ca.pem'; "
		. "SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT kafka_health()->>'last_error' ~ '(SSL|certificate)'")
  or die 'the certificate failure did not show';
pass('a broker certificate from an untrusted CA is refused');

# back to the right settings: delivery resumes
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.ssl_ca_location = '$tls/ca.pem'; SELECT pg_reload_conf();");
my $after = unique_topic('secure-after');
$node->safe_psql('postgres', "SELECT kafka_publish('$after', 'back')");
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't',
	'with the right settings again, delivery resumes');
$node->safe_psql('postgres', 'SELECT kafka_retry_dead_letters()');
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't', 'the dead letters are retried');
is(scalar @{ consume_topic($bootstrap, $bad_topic) }, 50,
	'all 50 events of the wrong-password time arrive once the settings are right');
my $failed_before_scram = stats_row($node)->{failed};

# --- SCRAM-SHA-256 and SCRAM-SHA-512 -----------------------------------------------
# librdkafka before 2.6.1 fails SCRAM against Kafka 4.x (confluentinc/librdkafka#4895)
my $librdkafka = $node->safe_psql('postgres', "SELECT kafka_health()->>'librdkafka_version'");
my @at = split /\./, $librdkafka;
my $scram_on_kafka4 = ($at[0] <=> 2 || $at[1] <=> 6 || $at[2] <=> 1) >= 0;
my ($plain3, $sasl3, $tls3) =
  $scram_on_kafka4 ? ($bootstrap, $sasl_bootstrap, $tls) : kafka3_sasl_broker();
note("SCRAM with librdkafka $librdkafka against Kafka " . ($scram_on_kafka4 ? '4.1.1' : '3.9.1'));
my $password3 = slurp_file("$tls3/password");
chomp $password3;
append_to_file("$secrets/scram", "$password3\n");
for my $mechanism ('SCRAM-SHA-256', 'SCRAM-SHA-512')
{
	my $log_before = slurp_file($node->logfile);
	my $rebuilds = () = $log_before =~ /producer settings changed/g;
	$node->safe_psql('postgres', qq{
ALTER SYSTEM SET streamkafka.brokers = '$sasl3';
ALTER SYSTEM SET streamkafka.sasl_mechanism = '$mechanism';
ALTER SYSTEM SET streamkafka.sasl_password = 'file:$secrets/scram';
ALTER SYSTEM SET streamkafka.ssl_ca_location = '$tls3/ca.pem';
SELECT pg_reload_conf();});
	my $deadline = time() + 60;
	sleep 0.2 while time() < $deadline
	  && (() = slurp_file($node->logfile) =~ /producer settings changed/g) <= $rebuilds;
	my $scram_topic = unique_topic(lc $mechanism);
	$node->safe_psql('postgres',
		"SELECT count(kafka_publish('$scram_topic', 'scram-' || i)) "
			. "FROM generate_series(1, 200) i");
	is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't',
		"$mechanism: events acknowledged (librdkafka $librdkafka)");
	is(scalar @{ consume_topic($plain3, $scram_topic) }, 200,
		"$mechanism: the consumer read all 200 events");
}
is(stats_row($node)->{failed}, $failed_before_scram, 'no event failed over SCRAM');

my $log = substr(slurp_file($node->logfile), 0);
unlike($log, qr/\Q$password\E/, 'the password never appears in the server log');
unlike($log, qr/not-the-password/, 'nor does the wrong one');
unlike($log, qr/\Q$password3\E/, 'nor the SCRAM password');

$node->stop;
done_testing();
