# streamkafka.database names a database that does not exist (issue 18 items
# 8 and 16): the log names the setting with a hint, kafka_health() says why in
# last_error, events are still delivered, a refused event waits in the queue
# and is kept across a clean restart (spill file), and once the database and
# the extension in it exist, the worker writes the dead letter there.  The
# accounting identity at each step.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $node = start_pg_node('baddatabase', $bootstrap, "streamkafka.database = 'deadletters'\n");

sub sql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

ok($node->poll_query_until('postgres',
		"SELECT kafka_health()->>'last_error' LIKE '%does not exist%'"),
	'kafka_health() last_error says the database does not exist');
like(sql("SELECT kafka_health()->>'last_error'"), qr/streamkafka\.database "deadletters"/,
	'and names streamkafka.database');
like(sql("SELECT kafka_health()->'checks'->>'dead_letters'"), qr/streamkafka\.database/,
	'the dead_letters check says they cannot be written');
my $log = slurp_file($node->logfile);
like($log, qr/database "deadletters" does not exist.*\n.*(HINT|CONTEXT):.*streamkafka\.database/,
	'the worker\'s error names the setting');

my $topic = unique_topic('bad-db');
create_topic($bootstrap, $topic, 1);
sql("SELECT kafka_publish('$topic', 'delivered anyway', transactional => false)");
ok($node->poll_query_until('postgres', "SELECT delivered = 1 FROM kafka_stats"),
	'events are delivered without the dead-letter database');
sql("SELECT kafka_publish('$topic', 'refused', partition => 999, transactional => false)");
ok($node->poll_query_until('postgres', "SELECT failed = 1 FROM kafka_stats"),
	'an event is refused');
is(stats_row($node)->{queue_events}, 1, 'it waits in the queue for its dead letter');
identity_holds($node, 'before the restart');

$node->restart;
like(slurp_file($node->logfile), qr/saved 1 unacknowledged events/, 'the clean stop saved it');
is(stats_row($node)->{queue_events}, 1, 'after a clean restart it is still queued');
identity_holds($node, 'after the restart');

# the database appears: the worker connects and writes the dead letter there
sql("CREATE DATABASE deadletters");
sql("CREATE EXTENSION streamkafka", 'deadletters');
ok($node->poll_query_until('postgres', "SELECT dead_lettered = 1 FROM kafka_stats"),
	'once the database exists the dead letter is written');
is(sql("SELECT convert_from(value, 'UTF8') FROM kafka_dead_letters", 'deadletters'), 'refused',
	'in its kafka_dead_letters');
is(sql("SELECT count(*) FROM kafka_dead_letters"), '0', 'not in the other database\'s table');
identity_holds($node, 'after the dead letter');

$node->stop;
done_testing();
