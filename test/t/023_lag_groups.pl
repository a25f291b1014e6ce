# Consumer lag is recorded under the right group when answers come late.
# Two groups on two topics (gA read 30 of topic A, gB 70 of topic B); the
# monitor's timeouts (lag_interval_ms, at most 10 s) are made so short that
# offsets answers often arrive after their request gave up.  Sampled over
# many refreshes, kafka_consumer_lag never shows a group with the other
# group's topic or offset.  A group the cluster does not know is skipped (its
# offsets are never asked: librdkafka 2.0 crashes on that answer).
use strict;
use warnings;

use IPC::Run qw(run timeout);
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $node = start_pg_node('laggroups', $bootstrap,
	"streamkafka.lag_interval_ms = 300\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

my %topic = (gA => unique_topic('lagA'), gB => unique_topic('lagB'));
my %read = (gA => 30, gB => 70);
my %group = (gA => "gA-$$", gB => "gB-$$");
for my $g (sort keys %topic)
{
	create_topic($bootstrap, $topic{$g}, 1);
	sql("SELECT count(kafka_publish('$topic{$g}', 'v' || i)) FROM generate_series(1, 100) i");
}
is(sql('SELECT kafka_flush(60000)'), 't', 'both topics delivered');
for my $g (sort keys %topic)
{
	my ($out, $err);
	run([ 'kcat', '-b', $bootstrap, '-G', $group{$g}, '-X', 'auto.offset.reset=earliest',
			'-c', $read{$g}, '-q', $topic{$g} ], '>', \$out, '2>', \$err, timeout(120))
	  or die "kcat -G: $err";
	is(scalar(split /\n/, $out), $read{$g}, "group $g read $read{$g} events and committed");
}

# the right rows: each group on its own topic, at its own offset
my $right = join ' OR ', map {
	"(group_id = '$group{$_}' AND topic = '$topic{$_}' AND committed_offset = $read{$_})"
} sort keys %topic;

sql("ALTER SYSTEM SET streamkafka.lag_groups = '$group{gA}, nobody-$$, $group{gB}'; "
	. "SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 AND bool_and($right) FROM kafka_consumer_lag"),
	'kafka_consumer_lag shows both groups, each on its own topic (and not the unknown group)');
is(sql("SELECT string_agg(lag::text, ',' ORDER BY group_id) FROM kafka_consumer_lag"), '70,30',
	'lag 70 for gA, 30 for gB');

# short timeouts: sample the rows over many refreshes
sql('CREATE TABLE seen (timeout_ms int, group_id text, topic text, committed_offset bigint)');
for my $ms (2, 3, 5, 8, 13)
{
	sql("ALTER SYSTEM SET streamkafka.lag_interval_ms = $ms; SELECT pg_reload_conf()");
	sql(qq{DO \$\$ BEGIN
  FOR i IN 1 .. 300 LOOP
    INSERT INTO seen SELECT $ms, group_id, topic, committed_offset FROM kafka_consumer_lag;
    PERFORM pg_sleep(0.02);
  END LOOP;
END \$\$});
}
my $summary = sql("SELECT timeout_ms || ': ' || count(*) FILTER (WHERE $right) || ' right, '"
	  . " || count(*) FILTER (WHERE NOT ($right)) || ' wrong' FROM seen GROUP BY timeout_ms "
		. "ORDER BY timeout_ms");
diag("rows sampled per timeout:\n$summary");
is(sql("SELECT count(*) FROM seen WHERE NOT ($right)"), 0,
	'no sampled row shows a group with another group\'s topic or offset');
is(sql("SELECT string_agg(DISTINCT group_id || ' ' || topic || ' ' || committed_offset, '; ') "
	. "FROM seen WHERE NOT ($right)"),
	'', 'the wrong rows, if any');

sql("ALTER SYSTEM SET streamkafka.lag_interval_ms = 300; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 AND bool_and($right) FROM kafka_consumer_lag"),
	'with the usual timeout both groups show again');
$node->stop('fast');
unlike(slurp_file($node->logfile), qr/terminated by signal/,
	'no process was terminated by a signal');
done_testing();
