# Overflow policies with a small queue and no reachable broker; then the real
# broker is configured and a consumer checks exactly which events arrived.
#   error        the statement that does not fit fails (53000), nothing lost
#   block        the session waits for space; it fails after enqueue_timeout_ms,
#                or goes on once the worker frees space
#   drop_newest  the new events are dropped and counted
#   drop_oldest  the oldest queued events are dropped and counted
# After each: queued = delivered + failed + dropped + queue_events.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();

my $fill_function = q{
CREATE FUNCTION fill(topic text, first int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    n int := 0;
BEGIN
    LOOP
        BEGIN
            PERFORM kafka_publish(topic, lpad((first + n)::text, 1000, '0'),
                                  transactional => false);
        EXCEPTION WHEN insufficient_resources THEN
            RETURN n;
        END;
        n := n + 1;
        IF n > 100000 THEN
            RETURN -1;
        END IF;
    END LOOP;
END
$$;
};

# a PostgreSQL whose broker does not answer, with a 1MB queue
sub outage_node
{
	my ($name) = @_;
	my $node = start_pg_node($name, '127.0.0.1:1',
		"streamkafka.queue_size = '1MB'\nstreamkafka.message_timeout_ms = 0\n"
		  . "streamkafka.shutdown_timeout_ms = 1000\n");
	$node->safe_psql('postgres', $fill_function);
	return $node;
}

# point the node at the real broker and wait until everything is finished
sub recover
{
	my ($node) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET streamkafka.brokers = '$bootstrap'; SELECT pg_reload_conf();");
	$node->poll_query_until('postgres', 'SELECT queue_events = 0 FROM kafka_stats')
	  or die 'the queue did not drain';
}

# the event numbers the consumer read from topic
sub numbers_read
{
	my ($topic) = @_;
	return [ sort { $a <=> $b } map { $_->{payload} + 0 } @{ consume_topic($bootstrap, $topic) } ];
}

sub check_identity
{
	my ($node, $what) = @_;
	my $s = stats_row($node);
	is($s->{queued}, $s->{delivered} + $s->{failed} + $s->{dropped} + $s->{queue_events},
		"$what: queued = delivered + failed + dropped + queue_events");
	return $s;
}

# --- error ---------------------------------------------------------------------
{
	my $node = outage_node('ovf_error');
	my $topic = unique_topic('ovf-error');
	my $n = $node->safe_psql('postgres', "SELECT fill('$topic', 0)");
	cmp_ok($n, '>', 500, "error: $n events filled the queue");
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT kafka_publish('$topic', lpad('$n', 1000, '0'), transactional => false)",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  53000: streamkafka queue is full/,
		'error: one more event fails with 53000');
	my $s = stats_row($node);
	is($s->{queued}, $n, 'error: only the events that fit were queued');
	is($s->{rejected}, 2, 'error: the two that did not fit are counted as rejected');

	# kafka_flush is bounded, and interruptible
	is($node->safe_psql('postgres', 'SELECT kafka_flush(200)'), 'f',
		'kafka_flush returns false when its timeout passes first');
	my ($fout, $ferr) = ('', '');
	my $flusher = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-d', $node->connstr('postgres'), '-c',
			'SELECT kafka_flush(600000)' ],
		'>', \$fout, '2>', \$ferr);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'SELECT kafka_flush(600000)%' "
			. "AND wait_event = 'Extension'")
	  or die 'kafka_flush did not wait';
	$node->safe_psql('postgres',
		"SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
			. "WHERE query LIKE 'SELECT kafka_flush(600000)%'");
	$flusher->finish;
	like($ferr, qr/canceling statement due to user request/,
		'kafka_flush can be cancelled (Ctrl-C)');
	recover($node);
	is_deeply(numbers_read($topic), [ 0 .. $n - 1 ], 'error: every queued event arrived, once');
	check_identity($node, 'error');
	$node->stop;
}

# --- block ---------------------------------------------------------------------
{
	my $node = outage_node('ovf_block');
	my $topic = unique_topic('ovf-block');
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET streamkafka.overflow = 'block'; "
		  . "ALTER SYSTEM SET streamkafka.enqueue_timeout_ms = 300; SELECT pg_reload_conf();");
	$node->poll_query_until('postgres', "SELECT current_setting('streamkafka.overflow') = 'block'");
	my $n = $node->safe_psql('postgres', "SELECT fill('$topic', 0)");
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT kafka_publish('$topic', lpad('$n', 1000, '0'), transactional => false)");
	like($err, qr/no room came free within streamkafka.enqueue_timeout_ms/,
		'block: a full queue fails the statement after enqueue_timeout_ms');

	# a session that waits long enough goes on once the broker is back
	my $script = "SET streamkafka.enqueue_timeout_ms = 120000;\n"
	  . "SELECT count(kafka_publish('$topic', lpad(i::text, 1000, '0'), transactional => false)) "
	  . "FROM generate_series($n, $n + 199) i;\n";
	my ($sout, $serr) = ('', '');
	my $waiter = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
		'<', \$script, '>', \$sout, '2>', \$serr);
	my $deadline = time() + 60;
	until ($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'Extension' "
				. "AND query LIKE '%generate_series%'") > 0)
	{
		$waiter->pump_nb;
		die "the session did not wait: out '$sout' err '$serr'" if time() > $deadline
			|| !$waiter->pumpable;
		sleep 0.1;
	}
	pass('block: a session waits for queue space');
	recover($node);
	$waiter->finish;
	chomp $sout;
	is($sout, "200", 'block: the waiting session published all its events once space came free');
	$node->poll_query_until('postgres', 'SELECT queue_events = 0 FROM kafka_stats');
	is_deeply(numbers_read($topic), [ 0 .. $n + 199 ], 'block: every event arrived, once');
	check_identity($node, 'block');
	$node->stop;
}

# --- drop_newest -----------------------------------------------------------------
{
	my $node = outage_node('ovf_drop_newest');
	my $topic = unique_topic('ovf-newest');
	my $n = $node->safe_psql('postgres', "SELECT fill('$topic', 0)");
	my $published = $node->safe_psql('postgres',
		"SET streamkafka.overflow = 'drop_newest'; "
		  . "SELECT count(kafka_publish('$topic', lpad(i::text, 1000, '0'), "
			. "transactional => false)) "
		  . "FROM generate_series($n, $n + 99) i; "
		  . "BEGIN; SELECT count(kafka_publish('$topic', lpad(i::text, 1000, '0'))) "
		  . "FROM generate_series($n + 100, $n + 149) i; COMMIT;");
	is($published, "100\n50", 'drop_newest: the statements and the COMMIT succeed');
	my $s = stats_row($node);
	is($s->{dropped}, 150, 'drop_newest: the 150 new events are counted as dropped');
	like(slurp_file($node->logfile),
		qr/streamkafka queue is full: dropped \d+ new event\(s\) \(overflow = drop_newest\)/,
		'drop_newest: the drop is logged');
	recover($node);
	is_deeply(numbers_read($topic), [ 0 .. $n - 1 ],
		'drop_newest: the queued events arrived, the dropped ones did not');
	$s = check_identity($node, 'drop_newest');
	is($s->{delivered}, $n, 'drop_newest: delivered equals what the consumer read');
	$node->stop;
}

# --- drop_oldest -----------------------------------------------------------------
{
	my $node = outage_node('ovf_drop_oldest');
	my $topic = unique_topic('ovf-oldest');
	my $n = $node->safe_psql('postgres', "SELECT fill('$topic', 0)");
	my $published = $node->safe_psql('postgres',
		"SET streamkafka.overflow = 'drop_oldest'; SET streamkafka.enqueue_timeout_ms = 10000; "
		  . "SELECT count(kafka_publish('$topic', lpad(i::text, 1000, '0'), "
			. "transactional => false)) "
		  . "FROM generate_series($n, $n + 99) i; "
		  . "BEGIN; SELECT count(kafka_publish('$topic', lpad(i::text, 1000, '0'))) "
		  . "FROM generate_series($n + 100, $n + 149) i; COMMIT;");
	is($published, "100\n50", 'drop_oldest: the statements and the COMMIT succeed');
	my $s = stats_row($node);
	my $dropped = $s->{dropped};
	# the new events take the room of as many old ones, less what was free
	cmp_ok($dropped, '>=', 100,
		"drop_oldest: $dropped of the oldest events were dropped to make room");
	cmp_ok($dropped, '<=', 150, 'drop_oldest: no more than the room the 150 new events need');
	like(slurp_file($node->logfile), qr/dropped the \d+ oldest queued events to make room/,
		'drop_oldest: the drop is logged');
	recover($node);
	is_deeply(numbers_read($topic), [ $dropped .. $n + 149 ],
		'drop_oldest: exactly the oldest events are missing; all newer ones arrived, once');
	check_identity($node, 'drop_oldest');
	$node->stop;
}

done_testing();
