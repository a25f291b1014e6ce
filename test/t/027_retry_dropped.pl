# A dead letter retried while the queue is full (issue 17 item 8): the
# overflow policy drops the retry, so the row must not stay marked
# retry_queued_at (kafka_retry_dead_letters() would then skip it for good);
# kafka_retry_dead_letters() counts only the retries it queued.  Once there is
# room, the retry is delivered and the row goes.  Under drop_oldest, a retry
# evicted after it was queued loses its mark.  Driven by the embedded mock
# cluster's faults; the accounting identity at each step.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $node = start_pg_node('retrydrop', '',
	"streamkafka.queue_size = '1MB'\n"
	  . "streamkafka.overflow = 'drop_newest'\n"
	  . "streamkafka.enable_idempotence = off\n"
	  . "streamkafka.retries = 0\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

wait_for("SELECT (kafka_health()->>'producer_ready')::bool", 'mock producer ready');
sql("SELECT kafka_publish('orders', 'warm-up', transactional => false)");
wait_for("SELECT delivered = 1 FROM kafka_stats", 'warm-up event delivered');

sql("SELECT kafka_mock_fault('produce_errors', 1, 10)");    # MSG_SIZE_TOO_LARGE
sql("SELECT kafka_publish('orders', repeat('r', 50000), transactional => false)");
wait_for("SELECT dead_lettered = 1 FROM kafka_stats", 'the refused event is a dead letter');

# fill the queue (less than the dead letter's 50 kB left): with the brokers
# down nothing is acknowledged
sql("SELECT kafka_mock_fault('brokers_down')");
sql("SELECT count(kafka_publish('fill', repeat('x', 10000), transactional => false))
       FROM generate_series(1, 200)");
my $dropped = stats_row($node)->{dropped};
ok($dropped > 0, 'the queue is full: events were dropped');
is(sql("SELECT kafka_retry_dead_letters()"), '0', 'the retry was dropped: none queued');
is(stats_row($node)->{dropped}, $dropped + 1, 'the dropped retry is counted');
is(sql("SELECT retry_queued_at IS NULL FROM kafka_dead_letters"), 't',
	'the row is not marked as queued');
identity_holds($node, 'after the dropped retry');

# room again: the retry is queued, delivered, and the row goes
sql("SELECT kafka_mock_fault('brokers_up')");
wait_for("SELECT queue_events = 0 FROM kafka_stats", 'the queue drains');
is(sql("SELECT kafka_retry_dead_letters()"), '1', 'the row is retried');
wait_for("SELECT count(*) = 0 FROM kafka_dead_letters", 'delivered: the row goes');
identity_holds($node, 'after the retry');

# drop_oldest: a retry queued, then evicted by later events, loses its mark
sql("SELECT kafka_mock_fault('produce_errors', 1, 10)");
sql("SELECT kafka_publish('orders', repeat('s', 50000), transactional => false)");
wait_for("SELECT count(*) = 1 FROM kafka_dead_letters", 'a second dead letter');
sql("SELECT kafka_mock_fault('brokers_down')");
my $fill = "SET streamkafka.overflow = 'drop_oldest';
            SELECT count(kafka_publish('fill', repeat('x', 10000), transactional => false))
              FROM generate_series(1, 200)";
sql($fill);
is(sql("SET streamkafka.overflow = 'drop_oldest'; SELECT kafka_retry_dead_letters()"), '1',
	'drop_oldest makes room for the retry');
is(sql("SELECT retry_queued_at IS NOT NULL FROM kafka_dead_letters"), 't', 'its row is marked');
$dropped = stats_row($node)->{dropped};
sql($fill);
ok(stats_row($node)->{dropped} > $dropped + 100,
	'the older events, the retry among them, were evicted');
wait_for("SELECT retry_queued_at IS NULL FROM kafka_dead_letters",
	'the evicted retry\'s row is no longer marked');
identity_holds($node, 'after the eviction');
sql("SELECT kafka_mock_fault('brokers_up')");

$node->stop;
done_testing();
