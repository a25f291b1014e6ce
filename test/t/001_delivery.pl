# 10,000 events published over many committed transactions reach a real
# Kafka broker exactly once, with their keys, values and headers, in order per
# key; nothing from rolled-back transactions, savepoints or caught exceptions
# arrives; kafka_stats.delivered equals what the consumer read.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $topic = unique_topic('delivery');
create_topic($bootstrap, $topic, 4);

my $node = start_pg_node('delivery', $bootstrap);

# 100 committed transactions of 100 events, keys k0..k49, one rolled back
# transaction after each committed one, plus savepoints and exception blocks
my $sql = '';
for my $tx (0 .. 99)
{
	my $first = $tx * 100;
	my $last = $first + 99;
	$sql .= qq{
BEGIN;
SELECT count(kafka_publish('$topic', 'event-' || i, key => 'k' || (i % 50),
       headers => jsonb_build_object('seq', i::text, 'tx', '$tx')))
  FROM generate_series($first, $last) AS i;
COMMIT;
BEGIN;
SELECT kafka_publish('$topic', 'rolledback-$tx', key => 'k1');
ROLLBACK;
};
}
$sql .= qq{
BEGIN;
SELECT kafka_publish('$topic', 'kept-before-savepoint', key => 'sp');
SAVEPOINT s1;
SELECT kafka_publish('$topic', 'savepoint-rolledback', key => 'sp');
ROLLBACK TO SAVEPOINT s1;
SELECT kafka_publish('$topic', 'kept-after-savepoint', key => 'sp');
COMMIT;
DO \$\$
BEGIN
  BEGIN
    PERFORM kafka_publish('$topic', 'exception-rolledback', key => 'ex');
    RAISE EXCEPTION 'undo the block';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  PERFORM kafka_publish('$topic', 'kept-after-exception', key => 'ex');
END
\$\$;
BEGIN;
SELECT kafka_publish('$topic', 'fire-now-in-failed-tx', key => 'now', transactional => false);
ROLLBACK;
};
$node->safe_psql('postgres', $sql);

my $expected = 10000 + 4;
wait_for_finished($node, $expected);

my $messages = consume_topic($bootstrap, $topic);
is(scalar @$messages, $expected, "consumer read exactly $expected events");

my @rolled = grep { $_->{payload} =~ /rolledback/ } @$messages;
is(scalar @rolled, 0,
	'no event of a rolled-back transaction, savepoint or exception block arrived');

my %extra = map { $_->{payload} => $_->{key} } grep { $_->{payload} !~ /^event-/ } @$messages;
is_deeply(\%extra,
	{
		'kept-before-savepoint' => 'sp',
		'kept-after-savepoint' => 'sp',
		'kept-after-exception' => 'ex',
		'fire-now-in-failed-tx' => 'now',
	},
	'events around savepoints and exception blocks, and a non-transactional one, arrived');

my %seen;
my ($bad_key, $bad_headers, $out_of_order) = (0, 0, 0);
my %last_seq_of_key;
my %partition_of_key;
my $moved_partition = 0;
for my $m (sort { $a->{partition} <=> $b->{partition} || $a->{offset} <=> $b->{offset} } @$messages)
{
	next unless $m->{payload} =~ /^event-(\d+)$/;
	my $i = $1;
	$seen{$i}++;
	$bad_key++ unless defined $m->{key} && $m->{key} eq 'k' . ($i % 50);
	my %h = map { $_->[0] => $_->[1] } @{ $m->{headers} };
	$bad_headers++
	  unless scalar @{ $m->{headers} } == 2
	  && $h{seq} eq "$i"
	  && $h{tx} eq int($i / 100);
	$out_of_order++ if exists $last_seq_of_key{ $m->{key} } && $last_seq_of_key{ $m->{key} } > $i;
	$last_seq_of_key{ $m->{key} } = $i;
	$moved_partition++
	  if exists $partition_of_key{ $m->{key} } && $partition_of_key{ $m->{key} } != $m->{partition};
	$partition_of_key{ $m->{key} } = $m->{partition};
}
is(scalar keys %seen, 10000, 'every committed event arrived');
is((grep { $_ != 1 } values %seen), 0, 'no committed event arrived twice');
is($bad_key, 0, 'every event carries its key');
is($bad_headers, 0, 'every event carries exactly its headers');
is($moved_partition, 0, 'all events of one key are in one partition');
is($out_of_order, 0, 'events of each key arrived in publish order');
my %partitions = map { $_->{partition} => 1 } @$messages;
cmp_ok(scalar keys %partitions, '>', 1, 'keys are spread over several partitions');

my $stats = stats_row($node);
is($stats->{delivered}, scalar @$messages, 'kafka_stats.delivered equals what the consumer read');
is($stats->{queued}, $expected,
	'kafka_stats.queued counts committed and non-transactional events only');
is($stats->{failed}, 0, 'no event failed');
is($stats->{queue_events}, 0, 'the queue is empty');
is($stats->{queue_bytes}, 0, 'all queue space was released');

my $health = $node->safe_psql('postgres',
	"SELECT kafka_health()->>'status', kafka_health()->>'mode', kafka_health()->>'worker_running'");
is($health, 'healthy|brokers|true', 'kafka_health() reports a healthy worker on real brokers');

$node->stop;
done_testing();
