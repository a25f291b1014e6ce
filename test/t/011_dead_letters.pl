# Dead letters against a real Apache Kafka broker: an event too large for its
# topic and an event for a topic that does not exist while the producer may
# not create topics (allow.auto.create.topics=false) become rows of
# kafka_dead_letters with the error Kafka gave; once the causes are fixed,
# kafka_retry_dead_letters() queues them again, they are delivered, and their
# rows go.  The accounting identity at each step.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $node = start_pg_node('deadletters', $bootstrap,
	"streamkafka.rdkafka_options = 'allow.auto.create.topics=false; "
		. "topic.metadata.propagation.max.ms=2000'\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }


my $small = unique_topic('small');
kafka_ctl('topic', $bootstrap, $small, 1, 1, 'max.message.bytes=2000');
my $missing = unique_topic('missing');
my $dead_before = stats_row($node)->{dead_lettered};
sql("SELECT kafka_publish('$small', repeat('x', 5000), key => 'big')");
sql("SELECT kafka_publish('$missing', 'for-a-missing-topic', key => 'm')");
ok($node->poll_query_until('postgres', "SELECT dead_lettered = $dead_before + 2 FROM kafka_stats"),
	'both events became dead letters');
is(sql("SELECT string_agg(topic || ':' || error_name, ',' ORDER BY topic) FROM kafka_dead_letters"),
	"$missing:UNKNOWN_TOPIC_OR_PART,$small:MSG_SIZE_TOO_LARGE", 'each with the error Kafka gave');
like(sql("SELECT error FROM kafka_dead_letters WHERE topic = '$small'"), qr/Message size too large/,
	'the error text is kept');
is(sql("SELECT convert_from(key, 'UTF8') || ' ' || length(value) || ' ' || attempts "
	. "FROM kafka_dead_letters WHERE topic = '$small'"),
	'big 5000 1', 'with the key, the whole value and the attempt count');
identity_holds($node, 'dead letters written');

# fix the causes; retry; delivered; the table is empty
kafka_ctl('tool', 'kafka.admin.ConfigCommand', '--bootstrap-server', $bootstrap,
	'--alter', '--entity-type', 'topics', '--entity-name', $small, '--add-config',
		'max.message.bytes=100000');
kafka_ctl('topic', $bootstrap, $missing, 1);
sleep 2;
is(sql("SELECT kafka_retry_dead_letters()"), '2', 'both queued again');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM kafka_dead_letters"),
	'delivered dead letters leave the table');
is(scalar @{ consume_topic($bootstrap, $small) }, 1, 'the large event is in its topic');
is(consume_topic($bootstrap, $missing)->[0]{payload}, 'for-a-missing-topic',
	'the other event is in its topic');
is(stats_row($node)->{retried}, 2, 'kafka_stats counts 2 retried');
identity_holds($node, 'after the retry');

$node->stop;
done_testing();
