# Randomised inputs against the SQL entry points, with oracles (mock
# cluster; no broker needed).  Seeded: STREAMKAFKA_SEED=N reproduces a run.
#
# 1. Header JSON: random documents, valid and not (objects of strings,
#    nulls and arrays of them; numbers, booleans, nested objects, top-level
#    non-objects; odd Unicode, quotes, backslashes, empty and long names).
#    Oracle: kafka_publish accepts a document exactly when it is valid, else
#    fails with 22023 and queues nothing; an accepted event carries exactly
#    the expected (name, value) pairs.
# 2. Envelopes: random tables (random column types, random values with
#    NULLs, NaN, infinities, arrays, odd text) streamed in both formats;
#    inserts, updates, deletes.  Oracle: each event's "after" and "before"
#    images are byte-identical to row_to_json of the row.
# 3. Savepoints: random transactions of kafka_publish calls and inserts
#    into a streamed table between nested SAVEPOINT, RELEASE and ROLLBACK TO,
#    with a transaction topic.  Oracle: a model of PostgreSQL's savepoint
#    rules.  Before COMMIT, kafka_pending_events() lists exactly the model's
#    surviving events in order (a BEGIN before the first row); after it,
#    the transaction topic holds a BEGIN and an END counting those rows, or
#    nothing for the transaction when none survived.
# The server must stay up throughout (no crash restart in the log).
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $seed = $ENV{STREAMKAFKA_SEED} // time();
srand($seed);
diag("seed $seed (STREAMKAFKA_SEED=$seed reproduces this run)");

my $node = start_pg_node('random', '');
my $json = JSON::PP->new->utf8->canonical->allow_nonref;

sub rand_pick { return $_[ int(rand(@_)) ]; }

sub rand_string
{
	my @alphabet = ('a' .. 'z', 'A', 'Z', '0', '9', ' ', '"', '\\', '/', "\t", "\n", "'",
		"\x{e9}", "\x{4e2d}", "\x{1f600}", "\x{7f}", '{', '}', '[', ']', ':', ',');
	my $len = rand_pick(0, 1, 3, 8, 20, 300);
	return join '', map { rand_pick(@alphabet) } 1 .. $len;
}

# a random header value; returns (value, valid)
sub rand_header_value
{
	my $r = rand();
	return (rand_string(), 1) if $r < 0.45;
	return (undef, 1) if $r < 0.55;
	if ($r < 0.75)
	{
		my @items = map { rand() < 0.8 ? rand_string() : undef } 0 .. int(rand(4));
		return (\@items, 1);
	}
	return (rand_pick(0, 1.5, -7, 1e20), 0) if $r < 0.82;
	return (rand_pick(JSON::PP::true, JSON::PP::false), 0) if $r < 0.88;
	return ({ nested => 'x' }, 0) if $r < 0.94;
	return ([ 'a', 1 ], 0);
}

# a random header document; returns (json text, valid, expected pairs)
sub rand_headers
{
	return (rand_pick('[]', '"text"', '42', 'null', '[{"a":"b"}]', 'true'), 0,
		undef) if rand() < 0.08;
	my (%doc, %ok);
	for (0 .. int(rand(6)))
	{
		my $k = rand_string();
		($doc{$k}, $ok{$k}) = rand_header_value();
	}
	my $valid = !grep { !$_ } values %ok;
	my @pairs = map {
		my $k = $_;
		map { [ $k, $_ ] } (ref $doc{$k} eq 'ARRAY' ? @{ $doc{$k} } : ($doc{$k}))
	} keys %doc;
	return ($json->encode(\%doc), $valid, \@pairs);
}

# --- 1. header documents
$node->safe_psql('postgres', q{
CREATE TABLE docs (id int PRIMARY KEY, doc text, valid bool, expected text);
CREATE FUNCTION try_headers(doc text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    got text;
BEGIN
    BEGIN
        PERFORM kafka_publish('fuzz.headers', 'v', headers => doc::jsonb);
        SELECT headers::text INTO got FROM kafka_pending_events() LIMIT 1;
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ok:' || coalesce(got, '[]');
    EXCEPTION WHEN OTHERS THEN
        RETURN CASE WHEN SQLSTATE = 'P0001' THEN SQLERRM ELSE 'error:' || SQLSTATE END;
    END;
END
$$;
});
my $ndocs = 400;
my (%valid, %expected);
my $copy = '';
for my $id (1 .. $ndocs)
{
	my ($doc, $valid, $pairs) = rand_headers();
	$valid{$id} = $valid;
	$expected{$id} = $pairs;
	(my $escaped = $doc) =~
	  s/([\\\t\n\r])/$1 eq "\t" ? '\t' : $1 eq "\n" ? '\n' : $1 eq "\r" ? '\r' : '\\\\'/ge;
	$copy .= "$id\t$escaped\n";
}
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"COPY docs (id, doc) FROM STDIN;\n$copy\\.\n");
is($ret, 0, "$ndocs random header documents loaded") or diag($stderr);
my $results = $node->safe_psql('postgres',
	"SELECT id, try_headers(doc) FROM docs ORDER BY id", extra_params => [ '-F', "\x01", '-A' ]);
my ($agree, $exact, $accepted) = (0, 0, 0);
my @disagree;
for my $line (split /\n/, $results)
{
	my ($id, $outcome) = split /\x01/, $line, 2;
	my $ok = $outcome =~ /^ok:/;
	if (($ok ? 1 : 0) == ($valid{$id} ? 1 : 0) && ($ok || $outcome eq 'error:22023'))
	{
		$agree++;
	}
	else
	{
		push @disagree, "$id: $outcome (expected " . ($valid{$id} ? 'valid' : 'invalid') . ')';
		next;
	}
	next unless $ok;
	$accepted++;
	(my $got = $outcome) =~ s/^ok://;
	my @got = map { join "\0", map { $_ // "\x{1}NULL" } @$_ } @{ $json->decode($got) };
	my @want = map { join "\0", map { $_ // "\x{1}NULL" } @$_ } @{ $expected{$id} };
	$exact++ if join("\n", sort @got) eq join("\n", sort @want);
}
is($agree, $ndocs, 'every document accepted exactly when valid, else 22023') or diag(join "\n",
	@disagree[0 .. ($#disagree < 9 ? $#disagree : 9)]);
is($exact, $accepted,
	"each of the $accepted accepted documents gave exactly its (name, value) pairs");
ok($accepted > 50 && $accepted < $ndocs, 'the sample holds both kinds');

# --- 2. envelopes against row_to_json
my @types = (
	[ 'int2', '(random()*60000-30000)::int2' ],
	[ 'int8', '(random()*1e18)::int8 * (CASE WHEN random()<0.5 THEN -1 ELSE 1 END)' ],
	[ 'numeric',
		"(ARRAY['NaN', '0', '-1.50', '123456789012345678901234567890.123', (random()*1000)::text])"
		  . "[1+floor(random()*5)]::numeric" ],
	[ 'float4',
		"(ARRAY['NaN', 'Infinity', '-Infinity', '0', '-0', '1e-40', (random()*1e10)::text])"
		  . "[1+floor(random()*7)]::float4" ],
	[ 'float8',
		"(ARRAY['NaN', 'Infinity', '-Infinity', '1e308', '5e-324', (random())::text])"
		  . "[1+floor(random()*6)]::float8" ],
	[ 'text',
		"(ARRAY[E'a\"b\\\\c', E'\\t\\n', '', repeat('x', 3000), 'é中😀', md5(random()::text), "
			. "E'\\x01\\b\\f\\r\\x1fz\\x7f'])[1+floor(random()*7)]" ],
	[ 'varchar(12)', 'left(md5(random()::text), 12)' ],
	[ 'bool', 'random() < 0.5' ],
	[ 'date',
		"(ARRAY['infinity', '-infinity', '2026-01-01', '0001-01-01 BC'])"
		  . "[1+floor(random()*4)]::date" ],
	[ 'timestamp',
		"(ARRAY['infinity', '2026-02-03 04:05:06.789', '1999-12-31 23:59:59'])"
		  . "[1+floor(random()*3)]::timestamp" ],
	[ 'timestamptz', "now() - random() * interval '100 years'" ],
	[ 'time', "'12:34:56.789'::time" ],
	[ 'interval', "random() * interval '1000 days'" ],
	[ 'uuid', 'md5(random()::text)::uuid' ],
	[ 'bytea', "decode(md5(random()::text), 'hex')" ],
	[ 'json',
		"(ARRAY['{\"a\": [1, 2]}', '\"s\"', 'null', '{ \"spaced\" : 1 }'])"
		  . "[1+floor(random()*4)]::json" ],
	[ 'jsonb', "(ARRAY['{\"b\": {\"c\": null}}', '[]', '1.50'])[1+floor(random()*3)]::jsonb" ],
	[ 'int4[]', "ARRAY[(random()*10)::int, NULL, 3]" ],
	[ 'text[]', "ARRAY[E'q\"uote', NULL, '']" ],
	[ 'inet', "'192.168.0.1/24'::inet" ],
	[ 'point', "point(random(), random())" ],
	[ 'char(3)', "'ab'" ],
);
my ($tables, $rows_checked, $mismatches) = (0, 0, 0);
for my $t (1 .. 12)
{
	my @cols = map { rand_pick(@types) } 1 .. 1 + int(rand(8));
	my $defs = join ', ', map { "c$_ $cols[$_ - 1][0]" } 1 .. @cols;
	my $names = join ', ', map { "c$_" } 1 .. @cols;
	my $exprs = join ', ',
		map { "CASE WHEN random() < 0.15 THEN NULL ELSE $cols[$_ - 1][1] END" } 1 .. @cols;
	my $format = rand_pick('json', 'debezium');
	my $sets = join ', ',
		map { "c$_ = CASE WHEN random() < 0.3 THEN NULL ELSE $cols[$_ - 1][1] END" } 1 .. @cols;
	my $out = $node->safe_psql('postgres', qq{
CREATE TABLE r$t (id serial PRIMARY KEY, $defs);
SELECT kafka_stream_table('r$t', format => '$format') IS NOT NULL;
CREATE TEMP TABLE images$t (kind text, image text);
BEGIN;
INSERT INTO r$t ($names) SELECT $exprs FROM generate_series(1, 15);
INSERT INTO images$t SELECT 'after', row_to_json(r)::text FROM r$t r;
INSERT INTO images$t SELECT 'before', row_to_json(r)::text FROM r$t r WHERE id % 3 = 0;
UPDATE r$t SET $sets WHERE id % 3 = 0;
INSERT INTO images$t SELECT 'after', row_to_json(r)::text FROM r$t r WHERE id % 3 = 0;
INSERT INTO images$t SELECT 'before', row_to_json(r)::text FROM r$t r WHERE id % 4 = 0;
DELETE FROM r$t WHERE id % 4 = 0;
SELECT count(*) FILTER (WHERE e.image IS NULL) || ' ' || count(*)
  FROM (SELECT convert_from(value, 'UTF8')::json AS v FROM kafka_pending_events()) p
  CROSS JOIN LATERAL (VALUES ('after', p.v -> 'after'), ('before', p.v -> 'before')) AS i(kind, img)
  LEFT JOIN LATERAL (SELECT image FROM images$t e
                      WHERE e.kind = i.kind AND e.image = i.img::text LIMIT 1) e ON true
 WHERE i.img::text <> 'null';
ROLLBACK;
}, extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	($out) = grep { /^\d+ \d+$/ } split /\n/, $out;
	my ($missing, $total) = split / /, $out // '-1 0';
	$tables++;
	$rows_checked += $total;
	$mismatches += $missing;
	diag("table r$t ($format; @{[ map { $_->[0] } @cols ]}): $missing of $total images differ")
	  if $missing;
}
is($mismatches, 0,
	"$rows_checked row images from $tables random tables equal row_to_json, byte for byte");
ok($rows_checked > 12 * 20, 'inserts, updates and deletes all produced images');

# --- 3. savepoints against a model of them
$node->safe_psql('postgres',
	"CREATE TABLE sp_rows (id serial PRIMARY KEY, v text);
	 SELECT kafka_stream_table('sp_rows', 'rand.sp.rows')");

# a random transaction: its SQL, and the model's surviving events in order
sub rand_savepoint_transaction
{
	my ($round) = @_;
	my @frames = ({ name => '', events => [] });
	my ($sql, $next_sp) = ('', 0);
	for my $step (1 .. 8 + int(rand(30)))
	{
		my $r = rand();
		my @named = grep { $frames[$_]{name} ne '' } 0 .. $#frames;
		if ($r < 0.35)
		{
			push @{ $frames[-1]{events} }, "pub:$round-$step";
			$sql .= "SELECT 1 FROM kafka_publish('rand.sp.pub', '$round-$step');\n";
		}
		elsif ($r < 0.6)
		{
			push @{ $frames[-1]{events} }, "row:$round-$step";
			$sql .= "INSERT INTO sp_rows (v) VALUES ('$round-$step');\n";
		}
		elsif ($r < 0.75 || !@named)
		{
			push @frames, { name => 's' . ++$next_sp, events => [] };
			$sql .= "SAVEPOINT s$next_sp;\n";
		}
		elsif ($r < 0.87)
		{
			# RELEASE: the savepoint and those after it end, their events
			# now the enclosing level's
			my $i = rand_pick(@named);
			$sql .= "RELEASE SAVEPOINT $frames[$i]{name};\n";
			push @{ $frames[ $i - 1 ]{events} }, map { @{ $_->{events} } } @frames[ $i .. $#frames ];
			splice @frames, $i;
		}
		else
		{
			# ROLLBACK TO: the events since the savepoint are gone; it stays
			my $i = rand_pick(@named);
			$sql .= "ROLLBACK TO SAVEPOINT $frames[$i]{name};\n";
			splice @frames, $i + 1;
			$frames[$i]{events} = [];
		}
	}
	return ($sql, [ map { @{ $_->{events} } } @frames ]);
}

my ($transactions, $sp_failures, $sp_events) = (0, 0, 0);
for my $round (1 .. 40)
{
	my ($body, $expected) = rand_savepoint_transaction($round);
	my @rows = grep { /^row:/ } @$expected;
	# BEGIN goes with the first row event: rolled back with it, pushed
	# again with the next
	my $listed = join ',', map { /^pub:/ ? $_ : 'row' } @$expected;
	$listed =~ s/(^|,)row/$1BEGIN,row/;
	my $out = $node->safe_psql('postgres', qq{
BEGIN;
SET LOCAL streamkafka.transaction_topic = 'rand.sp.tx';
SELECT 'xid:' || pg_current_xact_id();
$body
SELECT 'pending:' || coalesce(string_agg(
         CASE topic WHEN 'rand.sp.pub' THEN 'pub:' || convert_from(value, 'UTF8')
                    WHEN 'rand.sp.rows' THEN 'row'
                    ELSE convert_from(value, 'UTF8')::jsonb->>'status' END,
         ',' ORDER BY event_id), '')
  FROM kafka_pending_events();
COMMIT;
SELECT kafka_flush(10000);
}, extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	my ($xid) = $out =~ /^xid:(\d+)$/m;
	my ($pending) = $out =~ /^pending:(.*)$/m;
	my $tx = $node->safe_psql('postgres', qq{
SELECT string_agg((v->>'status') || coalesce(':' || (v->>'event_count'), ''), ',' ORDER BY "offset")
  FROM (SELECT "offset", convert_from(value, 'UTF8')::jsonb AS v
          FROM kafka_test_consume('rand.sp.tx')) m
 WHERE v->>'id' = '$xid'});
	my $expected_tx = @rows ? 'BEGIN,END:' . scalar(@rows) : '';
	$transactions++;
	$sp_events += @$expected;
	next if ($pending // 'none') eq $listed && $tx eq $expected_tx;
	$sp_failures++;
	diag("round $round:\n${body}pending  $pending\nexpected $listed\n"
		  . "tx topic '$tx', expected '$expected_tx'");
}
is($sp_failures, 0,
	"$transactions random savepoint transactions ($sp_events surviving events): pending events "
	  . 'and transaction metadata as the model says');

unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/,
	'no process crashed');
$node->stop;
done_testing();
