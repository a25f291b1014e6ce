# A commit waiting for synchronous replication (synchronous_standby_names =
# 'nobody': the wait lasts until it is cancelled).
# - Its events are not sent while it waits: it is not committed for anyone
#   yet.  Other sessions' events, which could not have seen it, are sent
#   meanwhile; kafka_health() shows the queue held by the waiting commit.
# - Cancelling the wait commits it locally: its events follow.
# - A crash during the wait: the commit record is durable, so after the crash
#   restart its events are queued and sent (and the log says so).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $node = start_pg_node('sync_rep', '',
	"wal_level = replica\nmax_wal_senders = 2\nrestart_after_crash = on\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql('CREATE TABLE t (i int)');
$node->poll_query_until('postgres', "SELECT (kafka_health()->>'producer_ready')::bool")
  or die 'the mock producer did not start';
my $bootstrap = sql("SELECT kafka_health()->>'bootstrap_servers'");
sql("ALTER SYSTEM SET synchronous_standby_names = 'nobody'; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT current_setting('synchronous_standby_names') = 'nobody'");

# a session whose commit waits for a standby that never comes
sub waiting_commit
{
	my ($value, $row) = @_;
	my ($out, $err) = ('', '');
	my $psql = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-d', $node->connstr('postgres'), '-c',
			"BEGIN; INSERT INTO t VALUES ($row); SELECT kafka_publish('sync', '$value', "
				. "partition => 0); COMMIT;" ],
		'>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
	  or die 'the commit did not wait for synchronous replication';
	my $pid = sql("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
	return ($psql, $pid, \$err);
}

my ($psql, $pid, $err) = waiting_commit('waiting', 1);

# other sessions publish without writing (no commit record, no wait)
sql("SELECT kafka_publish('sync', 'other-1', partition => 0, transactional => false)");
sql("BEGIN; SELECT kafka_publish('sync', 'other-2', partition => 0); COMMIT;");
ok($node->poll_query_until('postgres', 'SELECT delivered = 2 FROM kafka_stats'),
	"other sessions' events are delivered while a commit waits for synchronous replication");
is(sql('SELECT delivered FROM kafka_stats'), '2', 'the waiting commit\'s event is not sent');
like(sql("SELECT kafka_health()->'checks'->>'queue'"),
	qr/held by a commit waiting for synchronous replication \(pid $pid\)/,
	'kafka_health() shows the queue held by the waiting commit');
is(sql("SELECT kafka_health()->>'status'"), 'degraded', 'and says degraded');

# the wait is cancelled: the transaction is committed locally, its event follows
sql("SELECT pg_cancel_backend($pid)");
$psql->finish;
like($$err, qr/canceling wait for synchronous replication/, 'the wait was cancelled');
ok($node->poll_query_until('postgres', 'SELECT delivered = 3 FROM kafka_stats'),
	'the event of the cancelled wait is delivered');
is(sql("SELECT kafka_health()->'checks'->>'queue'"), 'ok', 'the queue check is ok again');
is_deeply([ map { $_->{payload} } @{ consume_topic($bootstrap, 'sync') } ],
	[ 'other-1', 'other-2', 'waiting' ],
	'the consumer reads the other events first, then the one that waited');
identity_holds($node, 'after the wait');

# a crash while a commit waits: its commit record is durable
($psql, $pid, $err) = waiting_commit('crash', 2);
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$psql->finish;
poll_through_restart($node, 'SELECT count(*) = 1 FROM t WHERE i = 2')
  or die 'the server did not come back';
pass('the transaction that waited is committed after the crash restart');
ok($node->poll_query_until('postgres', 'SELECT delivered = 4 FROM kafka_stats'),
	'its event is delivered after the crash restart');
ok($node->log_contains(
		qr/streamkafka: transaction \d+ committed before the crash: its 1 events are queued/,
		$offset),
	'the log says its events were queued');
identity_holds($node, 'after the crash restart');

$node->stop;
done_testing();
