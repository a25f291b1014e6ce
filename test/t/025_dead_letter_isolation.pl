# Dead letters belong to the role that published them.  Two publishers,
# alice (in database app) and mallory (in postgres, the worker's database),
# each get a dead letter; mallory, a non-superuser publisher, then runs the
# attacks of issue 18 item 5 and issue 17 items 4 and 8 against alice's row:
# read it, rewrite it, lock the table, requeue it by id.  Each must fail with
# a clear error while alice's own retry still works.  The worker never waits
# on a lock without a bound: a superuser holding an exclusive lock on the
# table does not stop delivery.  pg_dump by app's owner (not a superuser)
# works.  The accounting identity at each step.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $node = start_pg_node('dlisolation', $bootstrap,
	"streamkafka.rdkafka_options = 'allow.auto.create.topics=false; "
		. "topic.metadata.propagation.max.ms=2000'\n");

sub sql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

# as(ROLE, DB, SQL) - run SQL as ROLE; (stdout, stderr, exit code)
sub as
{
	my ($role, $db, $query) = @_;
	my ($ret, $out, $err) = $node->psql($db, $query, extra_params => [ '-U', $role ]);
	return ($out, $err, $ret);
}

sql("CREATE ROLE alice LOGIN IN ROLE streamkafka_publisher");
sql("CREATE ROLE mallory LOGIN IN ROLE streamkafka_publisher");
sql("CREATE ROLE appowner LOGIN");
sql("CREATE DATABASE app OWNER appowner");
sql("CREATE EXTENSION streamkafka", 'app');

my $alice_topic = unique_topic('alice');
my $mallory_topic = unique_topic('mallory');
my ($alice_id) = as('alice', 'app',
	"SELECT kafka_publish('$alice_topic', 'alice-secret', key => 'k', "
		. "headers => '{\"tenant\": \"alice\"}')");
my ($mallory_id) = as('mallory', 'postgres',
	"SELECT kafka_publish('$mallory_topic', 'mallory-own')");
ok($alice_id && $mallory_id, 'both publishers published');
ok($node->poll_query_until('postgres', "SELECT dead_lettered = 2 FROM kafka_stats"),
	'both events became dead letters (their topics do not exist)');
my ($origin) = as('postgres', 'postgres',
	"SELECT database || ' ' || role FROM kafka_dead_letters WHERE id = $alice_id");
is($origin, 'app alice', 'the row records the publishing database and role');

# mallory's attacks on alice's row
my ($out, $err) = as('mallory', 'postgres',
	"SELECT count(*) FROM kafka_dead_letters WHERE id = $alice_id");
is($out, '0', "mallory does not see alice's dead letter");
($out) = as('mallory', 'postgres',
	"SELECT count(*) FROM kafka_dead_letters WHERE id = $mallory_id");
is($out, '1', 'mallory sees his own');
($out) = as('alice', 'postgres', "SELECT convert_from(value, 'UTF8') FROM kafka_dead_letters");
is($out, 'alice-secret', 'alice sees hers (from the worker\'s database) and not his');

my $denied = qr/permission denied for (table|view) kafka_dead_letter/;
for my $table ('kafka_dead_letters', 'kafka_dead_letter_rows')
{
	(undef, $err) = as('mallory', 'postgres',
		"UPDATE $table SET topic = 'evil.stolen', value = 'forged' WHERE id = $alice_id");
	like($err, $denied, "mallory cannot rewrite a row of $table");
	(undef, $err) = as('mallory', 'postgres', "DELETE FROM $table WHERE id = $alice_id");
	like($err, $denied, "mallory cannot delete a row of $table");
	(undef, $err) = as('mallory', 'postgres',
		"BEGIN; LOCK TABLE $table IN ACCESS EXCLUSIVE MODE; COMMIT");
	like($err, $denied, "mallory cannot lock $table");
	(undef, $err) = as('mallory', 'postgres',
		"BEGIN; SELECT 1 FROM $table WHERE id = $alice_id FOR UPDATE; COMMIT");
	like($err, $denied, "mallory cannot lock rows of $table");
}
(undef, $err) = as('mallory', 'postgres', "SELECT count(*) FROM kafka_dead_letter_rows");
like($err, $denied, 'mallory cannot read the rows behind the view');
(undef, $err) = as('mallory', 'postgres',
	"SELECT kafka_requeue_dead_letter($alice_id, 'evil.stolen', NULL, 'forged'::bytea, "
		. "'{\"tenant\": \"alice\"}', NULL, 0)");
like($err, qr/function kafka_requeue_dead_letter\(.*\) does not exist/,
	'the requeue that took the row from its caller is gone');
(undef, $err) = as('mallory', 'postgres', "SELECT kafka_requeue_dead_letter($alice_id)");
like($err, qr/permission denied to retry dead letter $alice_id/,
	'mallory cannot requeue alice\'s row by id');
like($err, qr/published by role "alice"/, 'the error says whose it is');
(undef, $err) = as('mallory', 'postgres', "SELECT kafka_requeue_dead_letter(12345)");
like($err, qr/dead letter 12345 does not exist/, 'an unknown id is refused');
($out) = as('mallory', 'postgres', "SELECT kafka_retry_dead_letters()");
is($out, '1', 'kafka_retry_dead_letters() as mallory queues only his own row');
is(sql("SELECT retry_queued_at IS NULL AND topic = '$alice_topic' AND value = 'alice-secret'::bytea
          FROM kafka_dead_letters WHERE id = $alice_id"), 't', "alice's row is untouched");
ok($node->poll_query_until('postgres',
	"SELECT attempts = 2 FROM kafka_dead_letters WHERE id = $mallory_id"),
	"mallory's retry was refused again: attempts 2");
identity_holds($node, 'after the attacks');

# the dead letters are in the worker's database only
(undef, $err) = as('alice', 'app', "SELECT kafka_retry_dead_letters()");
like($err, qr/dead letters are kept in database "postgres"/,
	'retrying from another database is refused');
like($err, qr/HINT:.*streamkafka\.database/, 'with a hint naming streamkafka.database');

# a superuser's exclusive lock on the table does not stop delivery
my $before = stats_row($node);
my $lock = $node->background_psql('postgres');
$lock->query_safe('BEGIN; LOCK TABLE kafka_dead_letter_rows IN ACCESS EXCLUSIVE MODE');
my $third = unique_topic('third');
as('mallory', 'postgres', "SELECT kafka_publish('$third', 'refused-while-locked')");
ok($node->poll_query_until('postgres', "SELECT failed = $before->{failed} + 1 FROM kafka_stats"),
	'a refusal while the table is locked');
my $delivered = stats_row($node)->{delivered};
my $good = unique_topic('good');
create_topic($bootstrap, $good, 1);
sql("SELECT kafka_publish('$good', 'v' || i) FROM generate_series(1, 10) i");
ok($node->poll_query_until('postgres', "SELECT delivered >= $delivered + 10 FROM kafka_stats"),
	'events are delivered while the dead-letter table is locked');
$lock->query_safe('COMMIT');
$lock->quit;
ok($node->poll_query_until('postgres',
		"SELECT dead_lettered = $before->{dead_lettered} + 1 FROM kafka_stats"),
	'the dead letter is written once the lock is gone');
identity_holds($node, 'after the lock');

# alice's own retry works and sends what she published
create_topic($bootstrap, $alice_topic, 1);
sleep 2;
($out, $err) = as('alice', 'postgres', "SELECT kafka_retry_dead_letters()");
is($out, '1', 'alice retries her dead letter');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM kafka_dead_letters WHERE id = $alice_id"),
	'delivered: her row goes');
my $msgs = consume_topic($bootstrap, $alice_topic);
is(scalar @$msgs, 1, 'one event in her topic');
is($msgs->[0]{payload}, 'alice-secret', 'with her value');
is_deeply($msgs->[0]{headers}, [ [ 'tenant', 'alice' ] ], 'and her headers');
identity_holds($node, 'after the retry');

# pg_dump by app's owner, who is not a superuser
my ($ret, $dump, $dump_err) = (0, '', '');
{
	local %ENV = %ENV;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	$ret = PostgreSQL::Test::Utils::system_log('pg_dump', '-U', 'appowner', '-d', 'app',
		'-f', $node->basedir . '/app.sql');
}
is($ret, 0, "pg_dump of app by its owner (not a superuser) succeeds");
like(slurp_file($node->basedir . '/app.sql'), qr/CREATE EXTENSION IF NOT EXISTS streamkafka/,
	'the dump has the extension');
sql("CREATE DATABASE app_restored OWNER appowner");
($ret, $out, $err) = $node->psql('app_restored', "\\i " . $node->basedir . '/app.sql');
is($ret, 0, 'the dump restores without an error') or diag($err);

# the dead letters' own database, dumped by its owner: every row comes back
$ret = PostgreSQL::Test::Utils::system_log('pg_dump', '-h', $node->host, '-p', $node->port,
	'-U', 'postgres', '-d', 'postgres', '-f', $node->basedir . '/postgres.sql');
sql("CREATE DATABASE postgres_restored");
($ret, $out, $err) = $node->psql('postgres_restored', "\\i " . $node->basedir . '/postgres.sql');
is($ret, 0, 'the worker\'s database restores without an error') or diag($err);
is(sql("SELECT count(*) FROM kafka_dead_letters", 'postgres_restored'),
	sql("SELECT count(*) FROM kafka_dead_letters"), 'with its dead letters');

$node->stop;
done_testing();
