# overflow = drop_oldest with a refused event waiting for its dead-letter row
# (the extension is not created in streamkafka.database, so the row cannot
# be written): eviction must count it as dropped, not forget it, so that
# every event is delivered, dropped or dead-lettered and queue_events ends
# at 0 once the queue is empty (mock cluster).  And eviction frees what is
# missing, not the whole size asked for (broker unreachable).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $node = PostgreSQL::Test::Cluster->new('drop_oldest_refused');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'streamkafka'\n"
	  . "streamkafka.linger_ms = 2\n"
	  . "streamkafka.queue_size = '1MB'\n"
	  . "streamkafka.overflow = 'drop_oldest'\n"
	  . "streamkafka.enqueue_timeout_ms = 10000\n");
$node->start;
# the extension in app only: the worker's database (postgres) has no table
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'CREATE EXTENSION streamkafka');

sub sql { return $node->safe_psql('app', $_[0]); }

$node->poll_query_until('app', "SELECT (kafka_health()->>'producer_ready')::bool")
  or die 'the mock producer did not start';

# a refusal: the event waits in the queue for a dead-letter table
sql("SELECT kafka_publish('t', 'x', partition => 999, transactional => false)");
$node->poll_query_until('app', 'SELECT failed = 1 FROM kafka_stats')
  or die 'the refusal was not reported';
is(sql('SELECT queue_events FROM kafka_stats'), '1', 'the refused event waits in the queue');

# 3,000 events of 1 kB: the refused event holds the tail, the queue fills,
# the worker evicts the oldest events
is(sql("SELECT count(kafka_publish('t', repeat('x', 1000), transactional => false)) "
		  . 'FROM generate_series(1, 3000)'),
	'3000', 'the 3,000 events were published');
$node->poll_query_until('app', 'SELECT queue_bytes = 0 FROM kafka_stats')
  or die 'the queue did not empty';
my $s = JSON::PP->new->decode(sql('SELECT row_to_json(s) FROM kafka_stats s'));
is($s->{queued}, 3001, 'queued counts the refusal and the 3,000 events');
is($s->{delivered} + $s->{dropped} + $s->{dead_lettered}, 3001,
	'every event was delivered, dropped or dead-lettered: the refused one was not forgotten');
cmp_ok($s->{dropped}, '>=', 1, "dropped counts the refused event ($s->{dropped} dropped)");
is($s->{queue_events}, 0, 'queue_events is 0 once the queue is empty');
my $made_room = qr/dropped the \d+ oldest queued events to make room/;
like(slurp_file($node->logfile),
	qr/$made_room \(overflow = drop_oldest\), 1 of them refused by Kafka/,
	'the log says a refused event was dropped');

$node->stop;

# eviction frees the shortfall, not the whole size asked for: with the broker
# unreachable, fill the queue with equal events until one does not fit, then
# publish one larger event under drop_oldest that fits once one block goes
my $outage = PostgreSQL::Test::Cluster->new('drop_oldest_shortfall');
$outage->init;
$outage->append_conf('postgresql.conf',
	"shared_preload_libraries = 'streamkafka'\n"
	  . "streamkafka.brokers = '127.0.0.1:1'\n"
	  . "streamkafka.queue_size = '1MB'\n"
	  . "streamkafka.message_timeout_ms = 0\n"
	  . "streamkafka.shutdown_timeout_ms = 500\n");
$outage->start;
$outage->safe_psql('postgres', 'CREATE EXTENSION streamkafka');
$outage->safe_psql('postgres', q{
CREATE FUNCTION fill() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    n int := 0;
BEGIN
    LOOP
        BEGIN
            PERFORM kafka_publish('t', repeat('x', 1000), transactional => false);
        EXCEPTION WHEN insufficient_resources THEN
            RETURN n;
        END;
        n := n + 1;
    END LOOP;
END
$$});
my $n = $outage->safe_psql('postgres', 'SELECT fill()');
my ($bytes, $size) = split /\|/,
  $outage->safe_psql('postgres', 'SELECT queue_bytes, queue_size FROM kafka_stats');
my $block = $bytes / $n;
my $free = $size - $bytes;
cmp_ok($free, '>', 100, "$n blocks of $block bytes fill the queue; $free bytes stay free");
# larger than one block, smaller than one block plus the free space
my $value_len = 1000 + $free - 80;
is($outage->safe_psql('postgres',
		"SET streamkafka.overflow = 'drop_oldest'; SET streamkafka.enqueue_timeout_ms = 10000; "
		  . "SELECT kafka_publish('t', repeat('y', $value_len), transactional => false) > 0"),
	't', 'a larger event is queued under drop_oldest');
my $s2 = stats_row($outage);
is($s2->{dropped}, 1, 'exactly one old event was dropped to make room for it');
is($s2->{queue_events}, $n, 'the queue holds the other old events and the new one');
$outage->stop;
done_testing();
