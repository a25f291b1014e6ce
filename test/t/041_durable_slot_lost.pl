# Durable mode: another database than streamkafka.database is refused; a
# refused event becomes a dead letter and its retry is delivered; a message
# forged with pg_logical_emit_message is ignored; and when PostgreSQL removes the WAL its slot held
# (max_slot_wal_keep_size) while the broker is down: the loss is loud (a
# WARNING, an unhealthy check, the Prometheus gauge, publishing refused with
# 55000), and once a superuser drops the slot the worker makes a new one and
# new events are delivered.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $kafka_dir = $ENV{STREAMKAFKA_TEST_KAFKA_DIR};

sub broker { kafka_ctl('node', $kafka_dir, 1, $_[0]); }

my $node = start_pg_node('slotlost', $bootstrap,
	"wal_level = logical\n"
	  . "max_wal_size = '64MB'\n"
	  . "max_slot_wal_keep_size = '32MB'\n"
	  . "streamkafka.durability = 'wal'\n"
	  . "streamkafka.shutdown_timeout_ms = 1000\n");
sub sql { return $node->safe_psql('postgres', $_[0]); }
trust_streamkafka_plugin($node);
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	'the worker made its slot');

# a logical slot reads one database's WAL: another database is refused
sql("CREATE DATABASE other");
$node->safe_psql('other', 'CREATE EXTENSION streamkafka');
my ($rc, $out, $err) = $node->psql('other', "SELECT kafka_publish('t', 'elsewhere')");
like($err, qr/only the database named by streamkafka.database publishes/,
	'durable mode: another database cannot publish, and is told why');

# --- a dead letter in durable mode: refused, kept, retried through the WAL
my $small = unique_topic('durable-small');
kafka_ctl('topic', $bootstrap, $small, 1, 1, 'max.message.bytes=2000');
sql("SELECT kafka_publish('$small', repeat('x', 5000), key => 'big')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM kafka_dead_letters WHERE topic = '$small'"),
	'durable mode: an event Kafka refuses becomes a dead letter');
identity_holds($node, 'durable mode, a dead letter written');
kafka_ctl('tool', 'kafka.admin.ConfigCommand', '--bootstrap-server', $bootstrap,
	'--alter', '--entity-type', 'topics', '--entity-name', $small, '--add-config',
	'max.message.bytes=100000');
sleep 2;
is(sql("SELECT kafka_retry_dead_letters()"), '1', 'queued again (through the WAL)');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM kafka_dead_letters"),
	'and delivered: the row leaves the table');
is(scalar @{ consume_topic($bootstrap, $small) }, 1, 'the consumer reads it');
identity_holds($node, 'durable mode, after the retry');

# --- pg_logical_emit_message is open to every role: a forged event is ignored
sql("CREATE ROLE mallory LOGIN");
my $queued = stats_row($node)->{queued};
$node->safe_psql('postgres',
	"SELECT pg_logical_emit_message(true, 'streamkafka:' || repeat('0', 32), 'forged')",
	extra_params => [ '-U', 'mallory' ]);
ok($node->wait_for_log(qr/WARNING:  streamkafka worker ignored a WAL message with another token/),
	'a message forged with the prefix is ignored, with a WARNING');
is(stats_row($node)->{queued}, $queued, 'and nothing was queued');

my $topic = unique_topic('durable-lost');
create_topic($bootstrap, $topic, 1);
broker('stop');
# up to 100 MB of WAL the slot must keep, past max_slot_wal_keep_size: a
# checkpoint on the way may invalidate the slot, and later batches are refused
my $refused = 0;
for (1 .. 10)
{
	my ($rc) = $node->psql('postgres',
		"SELECT count(kafka_publish('$topic', repeat('x', 100000))) FROM generate_series(1, 100)");
	$refused++ if $rc != 0;
	sql("SELECT pg_switch_wal()");
	sql("CHECKPOINT");
}
diag("$refused of 10 batches were refused once the slot was invalidated");
ok($node->poll_query_until('postgres',
		"SELECT wal_status = 'lost' FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	'PostgreSQL invalidated the slot');
ok($node->poll_query_until('postgres',
		"SELECT kafka_health()->'checks'->>'durability' LIKE '%invalidated%'"),
	'kafka_health() says the slot was invalidated');
is(sql("SELECT kafka_health()->>'status'"), 'unhealthy', 'and is unhealthy');
is(sql("SELECT slot FROM kafka_durability()"), 'invalidated', 'kafka_durability() too');
like(sql("SELECT kafka_metrics_prometheus()"), qr/^streamkafka_wal_slot_invalidated 1$/m,
	'the Prometheus gauge says so');
ok( $node->wait_for_log(
		qr/WARNING:  streamkafka durable mode cannot start: the slot \S+ was invalidated/),
	'the server log has a WARNING');
($rc, $out, $err) = $node->psql('postgres', "SELECT kafka_publish('$topic', 'after')");
like($err, qr/durable mode cannot take events.*invalidated/s, 'publishing is refused');

sql("SELECT pg_drop_replication_slot('streamkafka')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = 'streamkafka' "
		  . "AND wal_status <> 'lost'"),
	'after the slot is dropped the worker makes a new one');
broker('start');
sql("SELECT kafka_publish('$topic', 'after-' || g) FROM generate_series(1, 10) g");
is(sql("SELECT kafka_flush(120000)"), 't', 'new events are delivered');
my @after = grep { ($_->{payload} // '') =~ /^after-/ } @{ consume_topic($bootstrap, $topic) };
is(scalar @after, 10, 'the consumer reads them');

$node->stop;
done_testing();
