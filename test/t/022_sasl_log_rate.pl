# A bad SASL set-up does not flood the server log.  After a reload that
# leaves SASL PLAIN without a user name, librdkafka refuses the settings: the
# worker keeps its producer and says so once; the monitor, which retries its
# own client every second, says so at most once every 10 s (the same
# failure once a minute).
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
my $secrets = PostgreSQL::Test::Utils::tempdir();
append_to_file("$secrets/right", "$password\n");
my $node = start_pg_node('saslrate', $sasl_bootstrap, qq{
streamkafka.security_protocol = 'sasl_ssl'
streamkafka.sasl_mechanism = 'PLAIN'
streamkafka.sasl_username = 'alice'
streamkafka.sasl_password = 'file:$secrets/right'
streamkafka.ssl_ca_location = '$tls/ca.pem'
streamkafka.lag_interval_ms = 1000
streamkafka.lag_groups = '*'
});

my $topic = unique_topic('saslrate');
$node->safe_psql('postgres', "SELECT kafka_publish('$topic', 'x')");
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't', 'SASL PLAIN delivers');

# count_lines(TEXT, REGEX) - lines of TEXT matching REGEX
sub count_lines
{
	my ($text, $re) = @_;
	return scalar grep { /$re/ } split /\n/, $text;
}

my $from = length(slurp_file($node->logfile));
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.sasl_username = ''; SELECT pg_reload_conf();");
$node->poll_query_until('postgres',
	"SELECT kafka_health()->>'last_error' ~ 'sasl.username'")
  or die 'the refused settings did not show in kafka_health()';
pass('kafka_health() reports the refused SASL settings');

# 30 s of the bad set-up (the monitor retries every second)
my $start = time();
sleep 1 while time() - $start < 30;
my $log = substr(slurp_file($node->logfile), $from);
my $monitor = count_lines($log, qr/streamkafka monitor could not create a Kafka client/);
my $worker = count_lines($log, qr/streamkafka worker could not create a Kafka producer/);
diag("in 30 s: $monitor monitor lines, $worker worker lines");
cmp_ok($monitor, '>=', 1, 'the monitor says its client cannot be created');
cmp_ok($monitor, '<=', 4, 'the monitor says it at most once every 10 s');
is($worker, 1, 'the worker says it once');
is($node->safe_psql('postgres', 'SELECT kafka_health()->>\'producer_ready\''), 'true',
	'the worker keeps its producer');

$node->safe_psql('postgres',
	"ALTER SYSTEM RESET streamkafka.sasl_username; SELECT pg_reload_conf();");
$node->safe_psql('postgres', "SELECT kafka_publish('$topic', 'y')");
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't',
	'with the user name back, delivery goes on');
identity_holds($node, 'after the bad set-up');
$node->stop;
done_testing();
