# TableRebuild: the workload and checks TAP 042 (memory mode) and 043
# (durable mode) share.  Four sessions change tables with a primary key at
# random (inserts, updates, updates of the key, deletes, changes undone by
# a rolled-back subtransaction) and one TRUNCATE, against a real broker; a
# consumer applies each topic in order to a copy keyed by the event key (a
# row image sets the key's row, a delete or a tombstone removes it, a
# truncate empties the copy), and the copy equals the table: once per
# envelope, and once for a stream with a row filter (the copy equals the
# filtered table).  Midway, rows are written with triggers off (rows the
# streams never saw), and kafka_snapshot_table runs on each table while the
# sessions go on writing: only a correct snapshot brings the copies back.
# A fourth table goes to a compacted topic, which after compaction holds
# one record per live key.  Transaction metadata is on:
# every END event's counts match the change events that carry its
# transaction's id, though the sessions' rolled-back subtransactions took
# events back.
package TableRebuild;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

our @EXPORT = qw(rebuild_start rebuild_workload rebuild_check_copies
  rebuild_check_transactions rebuild_check_compacted);

my $bootstrap = kafka_bootstrap();
my $tx_topic = unique_topic('rebuild-tx');
my ($node, $script);
my $json_topic = unique_topic('rebuild-json');
my $dbz_topic = unique_topic('rebuild-dbz');
my $compact_topic = unique_topic('rebuild-compact');
my $filter_topic = unique_topic('rebuild-filter');
# rows in the filter: ids not divisible by 3 whose note has no "+1"; key
# changes and note updates move rows in and out of it
my $filter = q{id % 3 <> 0 AND note NOT LIKE '%+1%'};

# rebuild_start(EXTRA_CONF) - a PostgreSQL with transaction metadata on and
# the four streamed tables; returns it
sub rebuild_start
{
	my ($extra) = @_;
	$node = start_pg_node('rebuild', $bootstrap,
		"streamkafka.transaction_topic = '$tx_topic'\n" . ($extra // ''));
	create_topic($bootstrap, $json_topic, 1);
	create_topic($bootstrap, $filter_topic, 1);
	create_topic($bootstrap, $dbz_topic, 1);
	kafka_ctl('topic', (split /,/, $bootstrap)[0], $compact_topic, 1, 1,
		'cleanup.policy=compact', 'segment.ms=200', 'min.cleanable.dirty.ratio=0.01',
		'delete.retention.ms=100', 'min.compaction.lag.ms=0');

	$node->safe_psql('postgres', qq{
	CREATE TABLE rb_json (id integer PRIMARY KEY, note text);
	CREATE TABLE rb_dbz (LIKE rb_json INCLUDING ALL);
	CREATE TABLE rb_compact (LIKE rb_json INCLUDING ALL);
	CREATE TABLE rb_filter (LIKE rb_json INCLUDING ALL);
	SELECT kafka_stream_table('rb_json', topic => '$json_topic');
	SELECT kafka_stream_table('rb_dbz', topic => '$dbz_topic', format => 'debezium');
	SELECT kafka_stream_table('rb_compact', topic => '$compact_topic');
	SELECT kafka_stream_table('rb_filter', topic => '$filter_topic', row_filter => \$f\$$filter\$f\$);
	-- one random change to each table; a clash with another session rolls the
	-- subtransaction back, and with it that change's events
	CREATE FUNCTION churn(op integer, a integer, b integer) RETURNS void
	LANGUAGE plpgsql AS \$\$
	DECLARE
	    t text;
	BEGIN
	    FOREACH t IN ARRAY ARRAY['rb_json', 'rb_dbz', 'rb_compact', 'rb_filter'] LOOP
	        BEGIN
	            CASE
	            WHEN op < 3 THEN
	                EXECUTE format('INSERT INTO %I VALUES (\$1, \$2) ON CONFLICT (id) '
	                               'DO UPDATE SET note = excluded.note', t) USING a, 'v' || b;
	            WHEN op < 5 THEN
	                EXECUTE format('UPDATE %I SET note = note || \$2 WHERE id = \$1', t)
	                  USING a, '+' || b;
	            WHEN op < 7 THEN
	                EXECUTE format('UPDATE %I SET id = \$2 WHERE id = \$1', t) USING a, b;
	            WHEN op < 8 THEN
	                EXECUTE format('DELETE FROM %I WHERE id = \$1', t) USING a;
	            ELSE
	                -- a change made, then undone by its subtransaction
	                EXECUTE format('UPDATE %I SET note = \$2 WHERE id = \$1', t)
	                  USING a, 'undone';
	                RAISE EXCEPTION 'undo';
	            END CASE;
	        EXCEPTION WHEN unique_violation OR deadlock_detected OR raise_exception THEN
	            NULL;
	        END;
	    END LOOP;
	END
	\$\$;
	});

	$script = "$PostgreSQL::Test::Utils::tmp_check/churn.sql";
	open my $fh, '>', $script or die "cannot write $script: $!";
	print $fh "\\set op random(0, 8)\n\\set a random(1, 200)\n\\set b random(1, 200)\n"
	  . "SELECT churn(:op, :a, :b);\n";
	close $fh;
	return $node;
}

# pgbench(TRANSACTIONS_PER_SESSION) - four sessions of random changes,
# started: (the run, a function that waits for its end and checks it)
sub pgbench
{
	my ($per_session) = @_;
	my ($out, $err) = ('', '');
	my $run = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '4', '-t', $per_session, '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return ($run, sub {
		$run->finish;
		is($?, 0, 'four sessions made ' . 4 * $per_session . ' random changes') or diag($err);
		like($out, qr{processed: (\d+)/\1}, 'none of them failed');
	});
}

# rebuild_workload() - the sessions, the TRUNCATE, the hidden rows and the
# snapshots, every change delivered; returns the WAL position at its end
sub rebuild_workload
{
	# a TRUNCATE of three tables while the sessions write them
	my ($run, $finish) = pgbench(1000);
	$node->poll_query_until('postgres', 'SELECT count(*) >= 50 FROM rb_json')
	  or die 'the sessions wrote nothing';
	$node->safe_psql('postgres', 'TRUNCATE rb_json, rb_dbz, rb_filter');
	$finish->();

	# rows the streams never saw, as if the tables had them before streaming
	# (written with triggers off): ids 1 to 200 the sessions go on changing,
	# 201 to 400 they never touch, so only the snapshot brings those to a copy
	my @tables = qw(rb_json rb_dbz rb_compact rb_filter);
	$node->safe_psql('postgres', "SET session_replication_role = replica;\n"
		  . join('', map { "INSERT INTO $_ SELECT g, 'hidden ' || g FROM generate_series(1, 400) g "
			  . "ON CONFLICT (id) DO UPDATE SET note = excluded.note;\n" } @tables));

	# the snapshots, each in its own transaction, while the sessions write
	($run, $finish) = pgbench(2500);
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM rb_json WHERE note NOT LIKE 'hidden%'")
	  or die 'the sessions wrote nothing';
	my %snapshot = map { $_ => $node->safe_psql('postgres', "SELECT kafka_snapshot_table('$_')") }
	  @tables;
	ok($run->pumpable, 'the snapshots ran while the sessions were writing');
	cmp_ok($snapshot{$_}, '>', $_ eq 'rb_filter' ? 100 : 200,
		"kafka_snapshot_table('$_') published its rows") for @tables;
	$finish->();

	# a new record after segment.ms rolls the compacted topic's last segment
	sleep 1;
	$node->safe_psql('postgres', "INSERT INTO rb_compact VALUES (100000, 'roll')");
	my $workload_end = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	is($node->safe_psql('postgres', 'SELECT kafka_flush(60000)'), 't', 'every change delivered');
	identity_holds($node, 'after the workload');
	return $workload_end;
}

my $json = JSON::PP->new->canonical;

# rebuild(TOPIC) - the copy a consumer keeps: key => row image (JSON text)
sub rebuild
{
	my ($topic) = @_;
	my %copy;
	my $messages = consume_topic($bootstrap, $topic);
	for my $m (sort { $a->{offset} <=> $b->{offset} } @$messages)
	{
		if (!defined $m->{payload})
		{
			delete $copy{ $m->{key} };
			next;
		}
		my $v = $json->decode($m->{payload});
		if ($v->{op} eq 'truncate' || $v->{op} eq 't')
		{
			%copy = ();
		}
		elsif ($v->{op} eq 'delete' || $v->{op} eq 'd')
		{
			delete $copy{ $m->{key} };
		}
		else
		{
			$copy{ $m->{key} } = $json->encode($v->{after});
		}
	}
	return (\%copy, scalar @$messages);
}

# table_rows(TABLE[, CONDITION]) - the table (its rows matching CONDITION)
# as the consumer's copy should hold it
sub table_rows
{
	my ($table, $condition) = @_;
	my %rows;
	for my $line (split /\n/,
		$node->safe_psql('postgres',
			"SELECT json_build_object('id', id)::text, row_to_json(t)::text FROM $table t "
			  . "WHERE " . ($condition // 'true')))
	{
		my ($key, $row) = split /\|/, $line, 2;
		$rows{ $json->encode($json->decode($key)) } = $json->encode($json->decode($row));
	}
	return \%rows;
}

# keys as the consumer compares them: canonical JSON
sub canonical_keys
{
	my ($copy) = @_;
	return { map { $json->encode($json->decode($_)) => $copy->{$_} } keys %$copy };
}

# rebuild_check_copies() - each copy a consumer rebuilds equals its table
sub rebuild_check_copies
{
	for my $case ([ 'rb_json', $json_topic, 'json' ], [ 'rb_dbz', $dbz_topic, 'debezium' ],
		[ 'rb_filter', $filter_topic, 'row filter', $filter ])
	{
		my ($table, $topic, $envelope, $condition) = @$case;
		my ($copy, $count) = rebuild($topic);
		my $rows = table_rows($table, $condition);
		cmp_ok(scalar keys %$rows, '>', 20, "$envelope: the table has rows at the end");
		is_deeply(canonical_keys($copy), $rows,
			"$envelope: the copy rebuilt from $count events equals the table");
	}
}

# transaction_events() - the change events that name a transaction, by id
# (the compacted topic's are left out: compaction removes older records);
# checks that every change event names one and no snapshot row does
sub transaction_events
{
	my (%events_of, @unnamed);
	for my $topic ($json_topic, $dbz_topic, $filter_topic)
	{
		for my $m (grep { defined $_->{payload} } @{ consume_topic($bootstrap, $topic) })
		{
			my $v = $json->decode($m->{payload});
			my $op = $v->{op};
			if ($op eq 'read' || $op eq 'r')
			{
				push @unnamed, "$topic: a snapshot row with a transaction block"
				  if defined $v->{transaction};
				next;
			}
			push @unnamed, "$topic: $op at offset $m->{offset} without a transaction block"
			  unless defined $v->{transaction};
			my $table = $v->{table} // $v->{source}{table};
			push @{ $events_of{ $v->{transaction}{id} } },
			  [ "public.$table", @{ $v->{transaction} }{qw(total_order data_collection_order)} ];
		}
	}
	is_deeply(\@unnamed, [], 'every change event names its transaction, no snapshot row does');
	return \%events_of;
}

# end_problems(END, EVENTS) - how an END event's counts disagree with the
# change events that carry its id (rb_compact's counted, not compared)
sub end_problems
{
	my ($end, $events) = @_;
	my (%per_table, %seen, @problems);
	my %counts = map { $_->{data_collection} => $_->{event_count} } @{ $end->{data_collections} };
	my $expected = $end->{event_count} - ($counts{'public.rb_compact'} // 0);
	push @{ $per_table{ $_->[0] } }, $_->[2] for @$events;
	push @problems, "END counts $expected events in three topics, " . @$events . ' carry its id'
	  if $expected != @$events;
	push @problems, 'a total_order repeats or exceeds event_count'
	  if grep { $seen{ $_->[1] }++ || $_->[1] < 1 || $_->[1] > $end->{event_count} } @$events;
	for my $table (sort keys %per_table)
	{
		my @order = sort { $a <=> $b } @{ $per_table{$table} };
		push @problems, "$table: data_collection_order @order, END counts "
		  . ($counts{$table} // 'none')
		  unless ($counts{$table} // -1) == @order && "@order" eq join(' ', 1 .. @order);
	}
	return map { "$end->{id}: $_" } @problems;
}

# rebuild_check_transactions() - every END's counts match the change events
# that carry its id; each transaction has one BEGIN, then one END
sub rebuild_check_transactions
{
	my $events_of = transaction_events();
	my (%status, @wrong);
	for my $m (@{ consume_topic($bootstrap, $tx_topic) })
	{
		my $v = $json->decode($m->{payload});
		push @{ $status{ $v->{id} } }, $v->{status};
		push @wrong, end_problems($v, $events_of->{ $v->{id} } // []) if $v->{status} eq 'END';
	}
	my @unended = grep { join(' ', @{ $status{$_} // [] }) ne 'BEGIN END' } keys %$events_of;
	cmp_ok(scalar keys %status, '>', 1000,
		'the transaction topic has ' . scalar(keys %status) . ' transactions');
	is_deeply([ @wrong[ 0 .. ($#wrong < 4 ? $#wrong : 4) ] ], [],
		"each END's counts match the change events that carry its id");
	is_deeply([ @unended[ 0 .. ($#unended < 4 ? $#unended : 4) ] ], [],
		'each transaction named by an event has one BEGIN, then one END');
}

# rebuild_check_compacted() - once the broker has compacted the fourth
# table's topic, it holds one record per key, and the keys with a value are
# exactly the table's rows
sub rebuild_check_compacted
{
	# wait until the broker has compacted every key to one record
	my ($records, %per_key);
	my $deadline = time + 60;
	while (time < $deadline)
	{
		my $messages = consume_topic($bootstrap, $compact_topic);
		%per_key = ();
		push @{ $per_key{ $_->{key} } }, $_ for @$messages;
		$records = scalar @$messages;
		last unless grep { @$_ > 1 } values %per_key;
		sleep 2;
	}
	my @repeated = grep { @{ $per_key{$_} } > 1 } keys %per_key;
	is(scalar @repeated, 0, "compacted: each key holds one record ($records records)");
	my %live = map { $_ => $per_key{$_}[0]{payload} }
	  grep { defined $per_key{$_}[0]{payload} } keys %per_key;
	my ($compact_copy) = rebuild($compact_topic);
	is_deeply([ sort map { $json->encode($json->decode($_)) } keys %live ],
		[ sort keys %{ table_rows('rb_compact') } ],
		'compacted: the keys with a value are exactly the rows of the table');
	is_deeply(canonical_keys($compact_copy), table_rows('rb_compact'),
		'compacted: a consumer reading it from the start rebuilds the table');
}

1;
