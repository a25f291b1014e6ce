# The monitor worker survives the answer a broker gives while it shuts
# down.  When a group's coordinator goes away (the broker stops), the
# group's offsets request is answered NOT_COORDINATOR; librdkafka then asks
# the client's own consumer group to look up its coordinator again, and the
# monitor's client had none (a producer handle): SIGSEGV in a librdkafka
# thread, the monitor dead, the whole server restarted.  The embedded mock
# cluster gives that answer on demand; the server log must show the failed
# refresh, and no process killed by a signal.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

# --- the mock cluster answers the monitor's offsets requests NOT_COORDINATOR
my $mock = start_pg_node('monitormock', '',
	"streamkafka.lag_groups = 'mock-group'\n"
	  . "streamkafka.lag_interval_ms = 200\n");
ok($mock->poll_query_until('postgres', "SELECT (kafka_health()->>'producer_ready')::bool"),
	'mock producer ready');
my $mock_worker = $mock->safe_psql('postgres', "SELECT kafka_health()->>'worker_pid'");
# error code 16: NOT_COORDINATOR
$mock->safe_psql('postgres', "SELECT kafka_mock_fault('offset_fetch_errors', 20, 16)");
my $mock_log = '';
for (1 .. 600)
{
	$mock_log = slurp_file($mock->logfile);
	last if $mock_log =~ /terminated by signal|list offsets: .*oordinator/;
	select(undef, undef, undef, 0.1);
}
like($mock_log, qr/could not refresh consumer lag: list offsets: .*oordinator/,
	'the monitor reports the NOT_COORDINATOR answer as a failed refresh');
unlike($mock_log, qr/terminated by signal/, 'no process died by a signal on that answer');
$mock->poll_query_until('postgres', "SELECT (kafka_health()->>'producer_ready')::bool");
is($mock->safe_psql('postgres', "SELECT kafka_health()->>'worker_pid'"), $mock_worker,
	'the server did not restart (the same worker)');
$mock->stop;

done_testing();
