# Producer settings against a real broker: every compression codec (checked in
# the broker's own log segments), a reload during a 100,000-event stream,
# key partitioning identical to Kafka's Java producer, default headers,
# topic_prefix, and settings librdkafka rejects leaving the worker running.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $node = start_pg_node('settings', $bootstrap,
	"streamkafka.shutdown_timeout_ms = 30000\n");

# wait until the log shows a line matching $re more than $count times
sub wait_for_log_count
{
	my ($re, $count, $what) = @_;
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my @seen = (slurp_file($node->logfile) =~ /$re/g);
		return if @seen > $count;
		sleep 0.2;
	}
	die "timed out waiting for $what";
}

# set a setting and wait until the worker reloaded (and, for a producer
# setting, rebuilt its producer)
sub reconfigure
{
	my ($setting, $value, $no_rebuild) = @_;
	my $log = slurp_file($node->logfile);
	my $reloads = () = $log =~ /streamkafka worker reloaded its settings/g;
	my $rebuilds = () = $log =~ /streamkafka producer settings changed/g;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET streamkafka.$setting = '$value'; SELECT pg_reload_conf();");
	wait_for_log_count(qr/streamkafka worker reloaded its settings/, $reloads,
		"reload of $setting");
	wait_for_log_count(qr/streamkafka producer settings changed/, $rebuilds, "rebuild for $setting")
	  unless $no_rebuild;
}

sub publish_and_flush
{
	my ($topic, $n, $extra) = @_;
	$extra //= '';
	$node->safe_psql('postgres',
		"SELECT count(kafka_publish('$topic', 'value-' || i, key => 'k' || (i % 20) $extra)) "
		  . "FROM generate_series(1, $n) i");
	is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't', "kafka_flush for $topic");
}

# codecs used in the broker's log segment of partition 0 of a topic
sub segment_codecs
{
	my ($topic) = @_;
	my $dir = "$ENV{STREAMKAFKA_TEST_KAFKA_DIR}/node1/data/$topic-0";
	my $dump = kafka_ctl('tool', 'kafka.tools.DumpLogSegments', '--files',
		"$dir/00000000000000000000.log");
	my %codecs = map { lc($_) => 1 } ($dump =~ /compresscodec: (\w+)/g);
	return join(',', sort keys %codecs);
}

# --- every compression codec: 10,000 events delivered intact ---------------
for my $codec (qw(gzip snappy lz4 zstd none))
{
	reconfigure('compression', $codec);
	my $topic = unique_topic("codec-$codec");
	publish_and_flush($topic, 10000);
	my $messages = consume_topic($bootstrap, $topic);
	my %values = map { $_->{payload} => 1 } @$messages;
	is(scalar @$messages, 10000, "$codec: 10,000 events read back");
	is(scalar(grep { !$values{"value-$_"} } 1 .. 10000), 0, "$codec: every value intact");
	is(segment_codecs($topic), $codec, "$codec: the broker stored batches compressed with $codec");
}

# --- a reload in the middle of a 100,000-event stream ------------------------
my $stream_topic = unique_topic('reload-stream');
my $script = '';
$script .= "SELECT count(kafka_publish('$stream_topic', 's-' || i, key => (i % 97)::text)) "
  . "FROM generate_series($_ * 1000 + 1, $_ * 1000 + 1000) i;\n"
  for 0 .. 99;
my ($out, $err) = ('', '');
my $publisher = IPC::Run::start(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
	'<', \$script, '>', \$out, '2>', \$err);
$node->poll_query_until('postgres', 'SELECT queued > 10000 FROM kafka_stats')
  or die 'the stream did not start';
reconfigure('linger_ms', '20');
reconfigure('compression', 'lz4');
$publisher->finish;
is($?, 0, 'the publishing session ran through both reloads') or diag $err;
is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't', 'the stream was flushed');
my $stream = consume_topic($bootstrap, $stream_topic);
my %seen;
$seen{ $_->{payload} }++ for @$stream;
is(scalar keys %seen, 100000, 'every one of 100,000 events arrived across two producer rebuilds');
is(scalar(grep { $_ > 1 } values %seen), 0, 'none arrived twice');

# --- partitioning: the same partition a Java producer chooses -----------------
my $ours = unique_topic('part-ours');
my $java = unique_topic('part-java');
create_topic($bootstrap, $_, 6) for ($ours, $java);
publish_and_flush($ours, 0);
$node->safe_psql('postgres',
	"SELECT count(kafka_publish('$ours', 'v', key => 'key-' || i)) FROM generate_series(1, 200) i");
$node->safe_psql('postgres', 'SELECT kafka_flush(60000)');
my $lines = join('', map { "key-$_:v\n" } 1 .. 200);
kafka_ctl_input($lines, 'tool', 'org.apache.kafka.tools.ConsoleProducer',
	'--bootstrap-server', (split /,/, $bootstrap)[0], '--topic', $java,
	'--property', 'parse.key=true', '--property', 'key.separator=:');
my %ours_part = map { $_->{key} => $_->{partition} } @{ consume_topic($bootstrap, $ours) };
my %java_part = map { $_->{key} => $_->{partition} } @{ consume_topic($bootstrap, $java) };
is(scalar keys %java_part, 200, "Kafka's Java console producer wrote 200 keys");
is_deeply(\%ours_part, \%java_part, 'every key is in the partition the Java producer chose for it');
cmp_ok(scalar(keys %{ { map { $_ => 1 } values %ours_part } }), '>=', 5,
	'keys are spread over the partitions');

my $keyless = unique_topic('part-keyless');
create_topic($bootstrap, $keyless, 6);
# keyless events stick to one partition for sticky.partitioning.linger.ms
# (librdkafka, like Java's KIP-480): publish them in bursts over time
$node->safe_psql('postgres',
	join('', map { "SELECT count(kafka_publish('$keyless', 'v' || i)) "
		. "FROM generate_series(1, 100) i; SELECT pg_sleep(0.03);" } 1 .. 20)
	  . "SELECT count(kafka_publish('$keyless', 'pinned', partition => 4)) "
		. "FROM generate_series(1, 50);");
$node->safe_psql('postgres', 'SELECT kafka_flush(60000)');
my $kl = consume_topic($bootstrap, $keyless);
my %kl_parts = map { $_->{partition} => 1 } grep { $_->{payload} ne 'pinned' } @$kl;
cmp_ok(scalar keys %kl_parts, '>', 1, 'keyless events are spread over several partitions');
is(scalar(grep { $_->{payload} eq 'pinned' && $_->{partition} == 4 } @$kl), 50,
	'events with an explicit partition are all in it');

# --- default headers, per-call headers win -------------------------------------
reconfigure('default_headers', '{"env": "test", "source": "default"}', 'no rebuild');
my $hdr_topic = unique_topic('headers');
$node->safe_psql('postgres',
	"SELECT kafka_publish('$hdr_topic', 'plain', key => '1'); "
	  . "SELECT kafka_publish('$hdr_topic', 'own', key => '2', "
		. "headers => '{\"source\": \"call\", \"x\": [\"1\", \"2\"]}');");
$node->safe_psql('postgres', 'SELECT kafka_flush(60000)');
my %hdrs = map { $_->{payload} => [ map { "$_->[0]=$_->[1]" } @{ $_->{headers} } ] }
  @{ consume_topic($bootstrap, $hdr_topic) };
is_deeply([ sort @{ $hdrs{plain} } ], [ 'env=test', 'source=default' ],
	'default headers are added to every event');
is_deeply([ sort @{ $hdrs{own} } ], [ 'env=test', 'source=call', 'x=1', 'x=2' ],
	'per-call headers win over default ones, and an array repeats a header');
is($hdrs{own}[-1], 'env=test', 'default headers come after the per-call ones');

# --- topic_prefix (new sessions see the reloaded value) ------------------------
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.topic_prefix = 'pfx.'; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('streamkafka.topic_prefix') = 'pfx.'")
  or die 'prefix not seen';
my $base = unique_topic('prefixed');
$node->safe_psql('postgres',
	"SELECT kafka_publish('$base', 'with prefix'); SELECT kafka_flush(60000);");
is(scalar @{ consume_topic($bootstrap, "pfx.$base") }, 1,
	'topic_prefix is put in front of the topic');
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET streamkafka.topic_prefix; SELECT pg_reload_conf();");

# --- settings librdkafka rejects: the previous producer keeps running ---------
my $log_before = length(slurp_file($node->logfile));
$node->safe_psql('postgres',
	"ALTER SYSTEM SET streamkafka.acks = '1'; SELECT pg_reload_conf();");
my $deadline = time() + 30;
sleep 0.2 until time() > $deadline
  || substr(slurp_file($node->logfile), $log_before) =~ /could not create a Kafka producer/;
like(substr(slurp_file($node->logfile), $log_before),
	qr/could not create a Kafka producer: .*acks.*\n.*previous producer keeps running/,
	'acks = 1 with idempotence on is rejected by librdkafka, with the reason');
like($node->safe_psql('postgres', "SELECT kafka_health()->>'last_error'"), qr/acks/,
	'kafka_health() shows why');
my $after = unique_topic('after-bad-settings');
$node->safe_psql('postgres',
	"SELECT kafka_publish('$after', 'still works'); SELECT kafka_flush(60000);");
is(scalar @{ consume_topic($bootstrap, $after) }, 1, 'the previous producer still delivers');

# a bad value in postgresql.conf is refused by the reload itself
$node->append_conf('postgresql.conf', "streamkafka.rdkafka_options = 'no.such.property=1'\n");
$node->reload;
$deadline = time() + 30;
sleep 0.2 until time() > $deadline
  || slurp_file($node->logfile) =~ /invalid value for parameter "streamkafka.rdkafka_options"/;
my $bad_option = qr/invalid value for parameter "streamkafka.rdkafka_options"/;
like(slurp_file($node->logfile), qr/$bad_option.*\n.*No such configuration property/,
	'an unknown librdkafka property in postgresql.conf is refused, with the reason');
is($node->safe_psql('postgres', "SELECT kafka_health()->>'producer_ready'"), 'true',
	'the worker keeps running');

my $stats = stats_row($node);
is($stats->{failed} + $stats->{dropped}, 0, 'nothing failed or was dropped in all of this');
is($stats->{queued}, $stats->{delivered} + $stats->{queue_events},
	'queued = delivered + still queued');

$node->stop;
done_testing();
