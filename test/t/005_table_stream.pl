# Tables streamed to a real broker in both formats: inserts, updates, deletes
# (each followed by its tombstone) and a truncate across committed and
# rolled-back transactions.  A consumer reads each topic and checks the exact
# sequence, the keys, the payload fields, and that the Debezium events carry
# the fields Debezium's PostgreSQL connector documents (before, after,
# source{version, connector, name, ts_ms, snapshot, db, sequence, schema,
# table, txId, lsn, xmin}, op, ts_ms).
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $node = start_pg_node('tables', $bootstrap);
my $json_topic = unique_topic('orders-json');
my $dbz_topic = unique_topic('orders-dbz');

$node->safe_psql('postgres', qq{
CREATE TABLE orders_json (id integer PRIMARY KEY, customer text, total numeric(12,2),
                          placed timestamptz);
CREATE TABLE orders_dbz (LIKE orders_json INCLUDING ALL);
SELECT kafka_stream_table('orders_json', topic => '$json_topic');
SELECT kafka_stream_table('orders_dbz', topic => '$dbz_topic', format => 'debezium');
});

# the same history on both tables
for my $t ('orders_json', 'orders_dbz')
{
	$node->safe_psql('postgres', qq{
SET timezone = 'UTC';
BEGIN;
INSERT INTO $t VALUES (1, 'ann', 10.50, '2026-03-01 10:00:00+00'),
                      (2, 'bob', 20, '2026-03-01 11:00:00+00');
COMMIT;
BEGIN;
INSERT INTO $t VALUES (3, 'rolled', 1, now());
UPDATE $t SET total = 0 WHERE id = 1;
ROLLBACK;
BEGIN;
UPDATE $t SET total = 12.75 WHERE id = 1;
DELETE FROM $t WHERE id = 2;
COMMIT;
BEGIN;
DELETE FROM $t WHERE id = 1;
ROLLBACK;
TRUNCATE $t;
INSERT INTO $t VALUES (4, 'cy', 4, '2026-03-02 00:00:00+00');
});
}
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't', 'all changes flushed');

my $json = JSON::PP->new;
sub changes
{
	my ($topic) = @_;
	return [ map { { key => $_->{key}, raw => $_->{payload},
		value => defined $_->{payload} ? $json->decode($_->{payload}) : undef,
		partition => $_->{partition} } }
		  sort { $a->{offset} <=> $b->{offset} } @{ consume_topic($bootstrap, $topic) } ];
}

# --- json envelope --------------------------------------------------------------
my $j = changes($json_topic);
# op_names(EVENTS) - each event's op, "tombstone" for a null value
sub op_names
{
	return [ map { $_->{value} ? $_->{value}{op} : 'tombstone' } @{ $_[0] } ];
}
is_deeply(op_names($j), [qw(insert insert update delete tombstone truncate insert)],
	'json: the committed changes, in commit order, and nothing rolled back');
is_deeply([ map { $_->{key} } @$j ],
	[ '{"id":1}', '{"id":2}', '{"id":1}', '{"id":2}', '{"id":2}', undef, '{"id":4}' ],
	'json: keys are the primary key as a JSON object; the tombstone has the deleted key, '
	  . 'truncate none');
like($j->[0]{raw},
	qr/"after":\{"id":1,"customer":"ann","total":10.50,"placed":"2026-03-01T10:00:00\+00:00"\}/,
	'json: the insert carries the row, numeric exact');
like($j->[2]{raw}, qr/"before":\{[^}]*"total":10.50[^}]*\},"after":\{[^}]*"total":12.75/,
	'json: the update carries before and after');
is($j->[3]{value}{after}, undef, 'json: the delete has no after image');
is($j->[3]{value}{before}{customer}, 'bob', 'json: the delete carries the before image');
is_deeply([ map { $j->[0]{value}{$_} } qw(database schema table) ], [ 'postgres', 'public',
	'orders_json' ],
	'json: database, schema and table are named');
ok($j->[2]{value}{txid} == $j->[3]{value}{txid} && $j->[0]{value}{txid} != $j->[2]{value}{txid},
	'json: events of one transaction share its txid, others differ');
like($j->[0]{value}{ts_ms}, qr/^\d{13}$/, 'json: ts_ms is epoch milliseconds');

# --- debezium envelope ------------------------------------------------------------
my $d = changes($dbz_topic);
is_deeply(op_names($d), [qw(c c u d tombstone t c)],
	'debezium: ops c, u, d, a tombstone, t in commit order');
my @documented = qw(before after source op ts_ms transaction);
my @source_documented =
  qw(version connector name ts_ms snapshot db sequence schema table txId lsn xmin);
my ($missing, $missing_source) = (0, 0);
for my $e (grep { $_->{value} } @$d)
{
	$missing += grep { !exists $e->{value}{$_} } @documented;
	$missing_source += grep { !exists $e->{value}{source}{$_} } @source_documented;
}
is($missing, 0, 'debezium: every event has before, after, source, op, ts_ms, transaction');
is($missing_source, 0, 'debezium: every source has the documented fields');
is_deeply([ map { $d->[0]{value}{source}{$_} } qw(connector db schema table) ],
	[ 'postgresql', 'postgres', 'public', 'orders_dbz' ],
		'debezium: source names the connector, db, schema and table');
like($d->[2]{raw}, qr/^\{"before":\{[^}]*"total":10.50[^}]*\},"after":\{[^}]*"total":12.75/,
	'debezium: update has before and after');
is_deeply($d->[0]{key}, '{"id":1}', 'debezium: the key is a JSON object of the key columns');
is($d->[5]{value}{before} // 'null', 'null', 'debezium: truncate has no row images');
ok($d->[2]{value}{source}{txId} == $d->[3]{value}{source}{txId},
	'debezium: txId groups a transaction');

my %partition_of;
my $moved = 0;
for my $e (@$j, @$d)
{
	next unless defined $e->{key};
	$moved++ if exists $partition_of{ $e->{key} } && $partition_of{ $e->{key} } != $e->{partition};
	$partition_of{ $e->{key} } //= $e->{partition};
}
is($moved, 0, 'all changes of one row go to one partition');

my $stats = stats_row($node);
is($stats->{delivered}, scalar(@$j) + scalar(@$d),
	'kafka_stats.delivered equals what the consumer read');

$node->stop;
done_testing();
