# The worker's errors and exits.
# - pg_cancel_backend() on the worker raises an ERROR in it: the worker logs
#   it and goes on (same pid), and keeps delivering.
# - Whatever way the worker exits, it stops its librdkafka producer first:
#   here the postmaster dies, and the worker's exit stops the producer.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $node = start_pg_node('worker_errors', '', '');

sub sql { return $node->safe_psql('postgres', $_[0]); }

$node->poll_query_until('postgres', "SELECT (kafka_health()->>'producer_ready')::bool")
  or die 'the mock producer did not start';
sql("SELECT kafka_publish('errors', 'before', transactional => false)");
wait_for_finished($node, 1);

# --- a cancel -------------------------------------------------------------------
my $pid = sql("SELECT kafka_health()->>'worker_pid'");
my $offset = -s $node->logfile;
is(sql("SELECT pg_cancel_backend($pid)"), 't', 'the worker was sent a cancel');
$node->wait_for_log(qr/\[$pid\] ERROR:  canceling statement due to user request/, $offset);
pass('the cancel raised an ERROR in the worker');
sql("SELECT kafka_publish('errors', 'after', transactional => false)");
wait_for_finished($node, 2);
is(sql("SELECT kafka_health()->>'worker_pid'"), $pid, 'the same worker goes on after the cancel');
ok(!$node->log_contains(qr/background worker "streamkafka worker" \(PID $pid\) exited/, $offset),
	'the worker did not exit');
identity_holds($node, 'after the cancel');

# --- the postmaster dies ------------------------------------------------------------
$offset = -s $node->logfile;
my $postmaster = $node->{_pid};
kill 'KILL', $postmaster;
my $deadline = time() + 60;
sleep 0.1 while kill(0, $pid) && time() < $deadline;
ok(!kill(0, $pid), 'the worker exits when the postmaster dies');
ok($node->log_contains(qr/\[$pid\] LOG:  streamkafka worker exiting: its producer is stopped first/,
		$offset),
	'and it stopped its producer before exiting');

# the other processes follow the postmaster by themselves; mark the node down
unlink($node->data_dir . '/postmaster.pid');
$node->_update_pid(0);
done_testing();
