# Durable mode (streamkafka.durability = 'wal') against a real Apache Kafka
# broker, read back by kcat: a refused set-up is loud (55000); committed
# events survive every PostgreSQL process SIGKILLed at once (as a power cut)
# and an immediate shutdown while the broker is down, rolled-back ones are
# never sent; after a kill with the broker up every duplicate carries its
# first copy's id header; switching back to memory delivers the backlog and
# drops the slot.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $kafka_dir = $ENV{STREAMKAFKA_TEST_KAFKA_DIR};

sub broker { kafka_ctl('node', $kafka_dir, 1, $_[0]); }

my $node = start_pg_node('durable', $bootstrap,
	"streamkafka.durability = 'wal'\n"
	  . "streamkafka.id_header = 'event-id'\n"
	  . "streamkafka.shutdown_timeout_ms = 2000\n"
	  . "streamkafka.breaker_recovery_timeout_ms = 2000\n"
	  . "wal_level = replica\n"
	  . "max_replication_slots = 1\n"
	  . "restart_after_crash = on\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

# --- a set-up durable mode cannot use is refused, not silently memory mode
my ($rc, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT kafka_publish('x', 'early')");
like($err, qr/55000.*durable mode cannot take events/s,
	'wal_level = replica: kafka_publish fails with 55000');
like($err, qr/wal_level is not logical/, 'and says why');
ok($node->poll_query_until('postgres',
		"SELECT kafka_health()->'checks'->>'durability' LIKE 'wal, not working: wal_level%'"),
	'kafka_health() says durable mode is not working, and why');
is(sql("SELECT kafka_health()->>'status'"), 'unhealthy', 'and is unhealthy');

$node->append_conf('postgresql.conf', "wal_level = logical\n");
trust_streamkafka_plugin($node);
# every slot taken: the worker's attempt to make its own fails inside an SQL
# statement, is logged, and is tried again (the worker crashed on it before)
sql("SELECT pg_create_physical_replication_slot('blocker')");
$node->restart;
ok($node->wait_for_log(qr/all replication slots are in use/),
	'with every slot taken, the worker says it cannot make its slot');
sleep 2;
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'and does not crash on it');
sql("SELECT pg_drop_replication_slot('blocker')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	'the worker made the slot "streamkafka"');
is(sql("SELECT concat_ws(' ', durability, slot, finding) FROM kafka_durability()"),
	'wal ready wal: ok', 'kafka_durability() says durable mode works');
is(sql("BEGIN; SELECT count(kafka_publish('durable-pending', 'p' || g)) "
	  . "FROM generate_series(1, 3) g; SELECT string_agg(convert_from(value, 'UTF8'), ',') "
	  . "FROM kafka_pending_events(); ROLLBACK"),
	"3\np1,p2,p3", 'kafka_pending_events() lists a transaction\'s events in durable mode');

# every PostgreSQL process, killed with SIGKILL at once
sub kill_all_postgres
{
	my $pm = $node->{_pid};
	my @pids = ($pm, split(/\s+/, `ps -o pid= --ppid $pm`));
	@pids = grep { /^\d+$/ } @pids;
	kill 'KILL', @pids;
	sleep(0.5) while kill(0, $pm);
	$node->_update_pid(-1);
	return scalar @pids;
}

# messages of a topic: { payload => [ids of each copy] }
sub copies
{
	my ($topic) = @_;
	my %copies;
	for my $m (@{ consume_topic($bootstrap, $topic) })
	{
		my ($id) = map { $_->[1] } grep { $_->[0] eq 'event-id' } @{ $m->{headers} };
		push @{ $copies{ $m->{payload} // '' } }, $id // 'none';
	}
	return \%copies;
}

# wait until the topic holds N distinct payloads (counters restart with the server)
sub wait_for_payloads
{
	my ($topic, $n) = @_;
	my $t0 = time;
	my $copies;
	while (time - $t0 < 180)
	{
		$copies = copies($topic);
		last if keys %$copies >= $n;
		sleep 1;
	}
	return $copies;
}

# --- power cut with the broker down
my $topic = unique_topic('durable-kill');
create_topic($bootstrap, $topic, 3);
create_topic($bootstrap, "$topic-rows", 1);
sql("CREATE TABLE durable_rows (id int PRIMARY KEY, note text)");
sql("SELECT kafka_stream_table('durable_rows', topic => '$topic-rows')");
broker('stop');
for my $session (1 .. 3)
{
	# each call is its own session: 10 transactions of 1,000 and a rollback
	for my $t (0 .. 9)
	{
		my $first = $session * 100000 + $t * 1000;
		sql("SELECT count(kafka_publish('$topic', 'e-' || g, key => (g % 7)::text)) "
			  . "FROM generate_series($first, $first + 999) g");
	}
	sql("BEGIN; SELECT kafka_publish('$topic', 'rolled-back-$session-' || g) "
		  . "FROM generate_series(1, 500) g; ROLLBACK;");
}
sql("INSERT INTO durable_rows SELECT g, 'row ' || g FROM generate_series(1, 10000) g");
is(sql("SELECT delivered FROM kafka_stats"), 0, 'nothing delivered with the broker down');
my $health = sql("SELECT concat_ws(' ', (h->>'wal_retained_bytes')::bigint > 1000000, "
	  . "h ? 'wal_oldest_undelivered_commit') FROM kafka_health() h");
is($health, 't t', 'kafka_health() shows the WAL kept and the oldest undelivered commit');
is(sql("SELECT wal_retained_bytes > 1000000 AND wal_oldest_undelivered_commit IS NOT NULL "
	  . "FROM kafka_stats"), 't', 'and so does kafka_stats');
my $killed = kill_all_postgres();
diag("killed $killed PostgreSQL processes");
broker('start');
$node->start;
my $got = wait_for_payloads($topic, 30000);
my @rolled = grep { /^rolled-back/ } keys %$got;
is(scalar(keys %$got) - @rolled, 30000, 'all 30,000 committed events arrived after the power cut');
is(scalar @rolled, 0, 'no event of a rolled-back transaction');
is(scalar(grep { @$_ > 1 } values %$got), 0, 'none twice: none had been acknowledged');
is(sql("SELECT kafka_flush(120000)"), 't', 'kafka_flush() returns once the WAL is delivered');
identity_holds($node, 'durable mode, after the power cut');
ok($node->poll_query_until('postgres',
		"SELECT (kafka_health()->>'wal_undelivered_bytes')::bigint < 100000"),
	'the WAL of undelivered events drained');
# per key, the events arrive in the order their transactions committed
my %last;
my $out_of_order = 0;
for my $m (@{ consume_topic($bootstrap, $topic) })
{
	next unless ($m->{payload} // '') =~ /^e-(\d+)$/;
	$out_of_order++ if defined $last{ $m->{key} } && $1 < $last{ $m->{key} };
	$last{ $m->{key} } = $1;
}
is($out_of_order, 0, 'per key, in commit order');
my $rows = wait_for_payloads("$topic-rows", 10000);
is(scalar keys %$rows, 10000, 'all 10,000 rows of the streamed table arrived');
my %ids;
$ids{ $_->[0] }++ for values %$got;
is(scalar keys %ids, 30000, 'each event has its own id header');

# --- immediate shutdown with 20,000 events queued and the broker down
my $topic2 = unique_topic('durable-immediate');
create_topic($bootstrap, $topic2, 1);
broker('stop');
sql("SELECT count(kafka_publish('$topic2', 'i-' || g)) FROM generate_series(1, 20000) g");
$node->stop('immediate');
broker('start');
$node->start;
$got = wait_for_payloads($topic2, 20000);
is(scalar keys %$got, 20000, 'all 20,000 events arrived after an immediate shutdown');

# --- every process killed while the broker takes events: duplicates keep their ids
my $topic3 = unique_topic('durable-midstream');
create_topic($bootstrap, $topic3, 1);
for my $t (0 .. 19)
{
	sql("SELECT count(kafka_publish('$topic3', 'm-' || g)) "
		  . "FROM generate_series($t * 2000, $t * 2000 + 1999) g");
}
kill_all_postgres();
$node->start;
$got = wait_for_payloads($topic3, 40000);
is(scalar keys %$got, 40000, 'every event of every committed transaction arrived');
my @dups = grep { @$_ > 1 } values %$got;
my @changed = grep { my $id = $_->[0]; grep { $_ ne $id } @$_ } @dups;
diag(scalar(@dups) . ' events arrived twice after the kill');
is(scalar @changed, 0, 'each duplicate carries the same id header as its first copy');

# --- back to memory mode with a backlog in the WAL: delivered, then the slot goes
my $topic4 = unique_topic('durable-switch');
create_topic($bootstrap, $topic4, 1);
broker('stop');
sql("SELECT count(kafka_publish('$topic4', 's-' || g)) FROM generate_series(1, 5000) g");
$node->append_conf('postgresql.conf', "streamkafka.durability = 'memory'\n");
$node->reload;
sleep 6;    # the worker looks at the setting every 5 s
sql("SELECT count(kafka_publish('$topic4', 's-' || g)) FROM generate_series(5001, 6000) g");
broker('start');
$got = wait_for_payloads($topic4, 6000);
is(scalar keys %$got, 6000, 'the backlog and the new events arrived after switching to memory');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	'the slot is dropped once its events are delivered');

# --- a transaction of 2,000,000 events, four times the 64 MB queue
$node->append_conf('postgresql.conf', "streamkafka.durability = 'wal'\n");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	'back in durable mode, the worker made its slot again');
my $topic5 = unique_topic('durable-large');
create_topic($bootstrap, $topic5, 3);
sql("SELECT count(kafka_publish('$topic5', 'l-' || g)) FROM generate_series(1, 2000000) g");
is(sql("SELECT kafka_flush(300000)"), 't', 'kafka_flush() returns after the large transaction');
my ($kcat_out, $kcat_err);
IPC::Run::run([ 'kcat', '-C', '-b', $bootstrap, '-t', $topic5, '-o', 'beginning', '-e', '-q',
		'-f', '%s\n' ], '>', \$kcat_out, '2>', \$kcat_err, IPC::Run::timeout(300))
  or die "kcat failed: $kcat_err";
my %large;
$large{$_} = 1 for split /\n/, $kcat_out;
is(scalar keys %large, 2000000, 'all 2,000,000 events of one transaction arrived');

# --- DROP EXTENSION leaves no slot holding WAL
sql("DROP EXTENSION streamkafka CASCADE");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	'DROP EXTENSION: the worker drops the slot');

$node->stop;
done_testing();
