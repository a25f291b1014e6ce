# The spill file across single-user mode and damage.
# - postgres --single neither loads nor removes the spill file (no worker
#   would ever send the events), and kafka_publish fails there with 55000.
# - A damaged spill file never stops the server from starting: it is set
#   aside with a log line and counted in kafka_health(); the events before the
#   damage that pass their checksum are queued.
# - Files in 0.2.0's format (no checksums) and in SKSPILL2 (0.2.0's event
#   header) are still loaded.
use strict;
use warnings;

use IPC::Run qw(run);
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

my $node = start_pg_node('spill', '127.0.0.1:1', "streamkafka.shutdown_timeout_ms = 500\n");
my $spill = $node->data_dir . '/pg_streamkafka/spill';

sub sql { return $node->safe_psql('postgres', $_[0]); }

# one transaction of 1,000 events: one block in the spill file
sub publish_and_stop
{
	sql("SELECT count(kafka_publish('spill', 'event-' || i)) FROM generate_series(1, 1000) i");
	$node->stop;
	ok(-e $spill, 'the stopping worker saved the queue to the spill file');
}

sub file_bytes
{
	open(my $fh, '<:raw', $spill) or die "cannot read $spill: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return $bytes;
}

sub write_file_bytes
{
	open(my $fh, '>:raw', $spill) or die "cannot write $spill: $!";
	print $fh $_[0];
	close $fh;
}

# --- single-user mode -----------------------------------------------------------
publish_and_stop();
my ($out, $err) = ('', '');
run([ 'postgres', '--single', '-D', $node->data_dir, '-c', 'log_error_verbosity=verbose',
		'postgres' ],
	'<', \"SELECT 1;\nSELECT kafka_publish('spill', 'single');\n", '>', \$out, '2>', \$err);
like($out . $err, qr/ERROR:  55000: streamkafka does not publish in single-user mode/,
	'kafka_publish fails in single-user mode with 55000');
ok(-e $spill, 'single-user mode left the spill file in place');
$node->start;
is(stats_row($node)->{queue_events}, 1000, 'the next normal start queued the 1,000 saved events');
ok(!-e $spill, 'and removed the file');

# --- a damaged length -----------------------------------------------------------
# two blocks now: the 1,000 events loaded above and 1,000 new ones
publish_and_stop();
my $bytes = file_bytes();
# block headers: event count 4, checksum 4, length 8; the file header is 16
my $first_length = unpack('Q<', substr($bytes, 24, 8));
substr($bytes, 16 + 16 + $first_length + 8, 8) = "\xff" x 8;
write_file_bytes($bytes);
ok($node->start(fail_ok => 1), 'the server starts with a damaged spill file');
like(slurp_file($node->logfile), qr/WARNING:  streamkafka set aside the damaged spill file/,
	'a WARNING says the file was set aside');
ok(!-e $spill && -e "$spill.damaged", 'the file was renamed to spill.damaged');
is(sql("SELECT kafka_health()->'spill_damaged_files'"), '1', 'kafka_health() counts it');
is(sql("SELECT kafka_health()->'checks'->>'spill'"),
	'a damaged spill file was set aside at start: see the server log',
	'and its spill check says so');
is(stats_row($node)->{queue_events}, 1000,
	'the 1,000 events of the block before the damage were queued');

# --- damaged content: the checksum finds it --------------------------------------
unlink("$spill.damaged");
$node->stop;
$bytes = file_bytes();
ok(length($bytes) > 1000 * 16, 'the 1,000 events were saved again');
substr($bytes, int(length($bytes) / 2), 1) ^= "\x01";
write_file_bytes($bytes);
$node->start;
like(slurp_file($node->logfile),
	qr/set aside the damaged spill file .*: a block's checksum is wrong/,
	'a flipped bit fails the checksum');
ok(-e "$spill.damaged", 'the file was set aside');
is(stats_row($node)->{queue_events}, 0, 'none of its events were queued');
unlink("$spill.damaged");

# crc32c(DATA) - CRC-32C of DATA, as PostgreSQL computes it
sub crc32c
{
	my $crc = 0xffffffff;
	for my $byte (unpack('C*', $_[0]))
	{
		$crc ^= $byte;
		$crc = ($crc >> 1) ^ (($crc & 1) ? 0x82f63b78 : 0) for 1 .. 8;
	}
	return $crc ^ 0xffffffff;
}

# v1_events(EVENTS, COUNT, BLOCK_HEADER) - the events with 0.2.0's 48-byte
# event header (this version's less refusal_error and its padding), each
# block_delta counted from a block header of BLOCK_HEADER bytes
sub v1_events
{
	my ($events, $count, $block_header) = @_;
	my ($at, $out) = (0, '');
	for (1 .. $count)
	{
		my $length = unpack('L', substr($events, $at, 4));
		$out .= pack('L', $length - 8) . substr($events, $at + 4, 12)
		  . pack('Q', $block_header + length($out)) . substr($events, $at + 24, 24)
		  . substr($events, $at + 56, $length - 56);
		$at += $length;
	}
	return $out;
}

# as_old_format(FILE, MAGIC) - the same events as an older version wrote
# them: "SKSPILL2" (before refusal_error): 0.2.0's event header, each block
# checksummed, block_delta from a 40-byte block header; "SKSPILL1" (0.2.0):
# blocks described by count, 0 and length only (no CRC, no origin), and
# block_delta from 0.2.0's 24-byte block header
sub as_old_format
{
	my ($v3, $magic) = @_;
	my $old = $magic . substr($v3, 8, 8);
	my $pos = 16;
	while ($pos < length($v3))
	{
		my ($nevents, $crc, $length, $database, $role) =
		  unpack('L L Q L L', substr($v3, $pos, 24));
		my $events = v1_events(substr($v3, $pos + 24, $length), $nevents,
			$magic eq 'SKSPILL1' ? 24 : 40);
		my $fields = pack('L Q L L', $nevents, length($events), $database, $role);
		$old .= $magic eq 'SKSPILL1'
		  ? pack('L L Q', $nevents, 0, length($events)) . $events
		  : pack('L L Q L L', $nevents, crc32c($fields . $events), length($events),
			$database, $role) . $events;
		$pos += 24 + $length;
	}
	return $old;
}

# --- files in the formats of 0.2.0 and of 0.3.0 before refusal_error ----------------
# (no broker: the events loaded stay queued, and are in the next file too)
my $queued = 0;
foreach my $magic ('SKSPILL1', 'SKSPILL2')
{
	publish_and_stop();
	$queued += 1000;
	write_file_bytes(as_old_format(file_bytes(), $magic));
	$node->start;
	is(stats_row($node)->{queue_events}, $queued, "a spill file in the $magic format is loaded");
	ok(!-e $spill && !-e "$spill.damaged", 'and removed');
	identity_holds($node, "after the $magic load");
}

$node->stop;
done_testing();
