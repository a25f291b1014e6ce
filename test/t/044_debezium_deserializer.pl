# Debezium's own deserializer reads every event of Debezium-envelope streams
# against a real broker: creates, updates, key changes, deletes and their
# tombstones, truncates, snapshot reads, and the transaction metadata topic,
# in memory mode and then in durable mode; key changes carry Debezium's
# __debezium.newkey / __debezium.oldkey headers.  test/debezium's DebeziumRead
# (io.debezium.serde.DebeziumSerdes, io.debezium 3.6.1.Final) deserializes
# each record strictly (a field Debezium does not define fails), checks each
# op against Debezium's Envelope.Operation and its images, each tombstone
# against the delete before it, and each END's counts against the change
# events that carry its transaction id.  Its self-test first shows that it
# fails on broken records of each kind.
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run qw(run);
use JSON::PP qw(decode_json);
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $root = dirname(dirname(dirname(__FILE__)));
my $reader_dir = "$root/test/debezium";
plan skip_all => 'test/debezium is not built (mvn -f test/debezium/pom.xml package)'
  unless -d "$reader_dir/target/debezium-libs";

my $bootstrap = kafka_bootstrap();
my $broker = (split /,/, $bootstrap)[0];

# the checker fails on broken records: its self-test against this broker
# (once per CI run: test/run-all's PostgreSQL 18 leg skips it, the Java
# program does not depend on the server)
my ($out, $err) = ('', '');
SKIP:
{
	skip 'STREAMKAFKA_SKIP_DEBEZIUM_SELFTEST is set', 1
	  if $ENV{STREAMKAFKA_SKIP_DEBEZIUM_SELFTEST};
	run([ "$reader_dir/selftest", $broker ], '>', \$out, '2>', \$err);
	is($?, 0, 'DebeziumRead passes good records and fails each kind of broken one')
	  or diag("$out\n$err");
}

my $orders = unique_topic('dbz-orders');
my $lines = unique_topic('dbz-lines');
my $tx_topic = unique_topic('dbz-tx');
create_topic($bootstrap, $orders, 3);
create_topic($bootstrap, $lines, 1);
create_topic($bootstrap, $tx_topic, 1);
my $node = start_pg_node('dbzserde', $bootstrap,
	"streamkafka.transaction_topic = '$tx_topic'\nwal_level = logical\n");
trust_streamkafka_plugin($node);
$node->restart;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(qq{
CREATE TABLE orders (id integer PRIMARY KEY, status text, total numeric(10,2), meta jsonb,
                     created timestamptz DEFAULT '2026-01-02 03:04:05+00');
CREATE TABLE lines (order_id integer, item text, qty integer, PRIMARY KEY (order_id, item));
INSERT INTO orders SELECT g, 'old', g * 1.5, '{"n": 1}' FROM generate_series(1, 40) g;
SELECT kafka_stream_table('orders', topic => '$orders', format => 'debezium');
SELECT kafka_stream_table('lines', topic => '$lines', format => 'debezium');
});
my $reads = sql("SELECT kafka_snapshot_table('orders')");
is($reads, 40, 'a snapshot of 40 rows');

# workload(BASE) - transactions with every kind of change; returns how many
# transactions changed a streamed table (each sends a BEGIN and an END)
sub workload
{
	my ($base) = @_;
	sql(qq{
BEGIN;
INSERT INTO orders (id, status, total) VALUES ($base + 1, 'new', 10), ($base + 2, 'new', 20);
INSERT INTO lines VALUES ($base + 1, 'cap', 1), ($base + 1, 'mug', 2), ($base + 2, 'pen', 3);
COMMIT;
BEGIN;
UPDATE orders SET status = 'paid', meta = '{"paid": true}' WHERE id = $base + 1;
UPDATE orders SET id = $base + 3 WHERE id = $base + 2;
DELETE FROM lines WHERE order_id = $base + 1 AND item = 'mug';
SAVEPOINT s;
DELETE FROM orders WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
COMMIT;
DO \$\$
BEGIN
  BEGIN
    INSERT INTO lines VALUES ($base + 9, 'undone', 1);
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN NULL;
  END;
  DELETE FROM orders WHERE id = $base + 3;
END \$\$;
TRUNCATE lines;
UPDATE orders SET total = total + 1 WHERE id BETWEEN 1 AND 5;
});
	return 5;
}

my $transactions = workload(1000);
is(sql('SELECT kafka_flush(60000)'), 't', 'memory mode: delivered');

# durable mode: the same kinds of change through the WAL
$node->append_conf('postgresql.conf', "streamkafka.durability = 'wal'\n");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT finding = 'wal: ok' FROM kafka_durability()"),
	'durable mode works');
$transactions += workload(2000);
is(sql('SELECT kafka_flush(60000)'), 't', 'durable mode: delivered');
is(sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'streamkafka'"), 1,
	'the events went through the slot');
$reads += sql("SELECT kafka_snapshot_table('orders')");
is(sql('SELECT kafka_flush(60000)'), 't', 'a second snapshot, through the WAL, delivered');

# each key change: the delete names the new key, the insert the old one
my @key_headers;
for my $m (@{ consume_topic($bootstrap, $orders) })
{
	for my $h (grep { $_->[0] =~ /^__debezium\./ } @{ $m->{headers} })
	{
		my $op = defined $m->{payload} ? decode_json($m->{payload})->{op} : 'tombstone';
		push @key_headers, "$op $m->{key} $h->[0]=$h->[1]";
	}
}
is_deeply([ sort @key_headers ],
	[
		'c {"id":1003} __debezium.oldkey={"id":1002}',
		'c {"id":2003} __debezium.oldkey={"id":2002}',
		'd {"id":1002} __debezium.newkey={"id":1003}',
		'd {"id":2002} __debezium.newkey={"id":2003}'
	],
	"key changes carry Debezium's __debezium.newkey and __debezium.oldkey headers");

my $records = 0;
$records += scalar @{ consume_topic($bootstrap, $_) } for ($orders, $lines, $tx_topic);
cmp_ok($records, '>', 100, "the topics hold $records records");

($out, $err) = ('', '');
run([ 'java', '-cp', "$reader_dir/target/classes:$reader_dir/target/debezium-libs/*",
		'streamkafka.DebeziumRead', '--bootstrap', $broker, '--topic', $orders,
		'--topic', $lines, '--transactions', $tx_topic, '--expect', $records,
		'--timeout', 120 ],
	'>', \$out, '2>', \$err);
is($?, 0, "Debezium's deserializer read every record without a failure")
  or diag(join("\n", grep { /FAIL/ } split /\n/, $out) . "\n$err");
my @lines = split /\n/, $out;
like($lines[-1], qr/^OK $records \d+$/, 'and reports all of them checked');
my %kinds;
$kinds{ (split /\t/)[3] }++ for grep { /\t/ } @lines;
for my $kind (qw(c u d r t tombstone BEGIN END))
{
	cmp_ok($kinds{$kind} // 0, '>', 0, "records of kind $kind: " . ($kinds{$kind} // 0));
}
is($kinds{r}, $reads, "both snapshots: $reads reads");
is($kinds{BEGIN}, $transactions, "a BEGIN for each of the $transactions transactions");
is($kinds{END}, $transactions, 'and an END');
my ($checked) = $lines[-1] =~ /^OK \d+ (\d+)$/;
is($checked, $transactions, 'every transaction checked against its END');

$node->stop;
done_testing();
