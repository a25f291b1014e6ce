# The spill file across single-user mode and damage.
# - postgres --single neither loads nor removes the spill file (no worker
#   would ever send the events), and kafka_publish fails there with 55000.
# - A damaged spill file never stops the server from starting: it is set
#   aside with a log line and counted in kafka_health(); the events before the
#   damage that pass their checksum are queued.
# - A file in 0.2.0's format (no checksums) is still loaded.
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
is(stats_row($node)->{queue_events}, 1000, 'the 1,000 events of the block before the damage were queued');

# --- damaged content: the checksum finds it --------------------------------------
unlink("$spill.damaged");
$node->stop;
$bytes = file_bytes();
ok(length($bytes) > 1000 * 16, 'the 1,000 events were saved again');
substr($bytes, int(length($bytes) / 2), 1) ^= "\x01";
write_file_bytes($bytes);
$node->start;
like(slurp_file($node->logfile), qr/set aside the damaged spill file .*: a block's checksum is wrong/,
	'a flipped bit fails the checksum');
ok(-e "$spill.damaged", 'the file was set aside');
is(stats_row($node)->{queue_events}, 0, 'none of its events were queued');
unlink("$spill.damaged");

# as_0_2_0(FILE) - the same events as 0.2.0 wrote them: "SKSPILL1", blocks
# described by count, 0 and length only (no CRC, no origin), and each event's
# block_delta counted from 0.2.0's 24-byte block header
sub as_0_2_0
{
	my ($v2) = @_;
	my $v1 = 'SKSPILL1' . substr($v2, 8, 8);
	my $pos = 16;
	while ($pos < length($v2))
	{
		my ($nevents, $crc, $length) = unpack('L L Q', substr($v2, $pos, 16));
		my $events = substr($v2, $pos + 24, $length);
		my $at = 0;
		for (1 .. $nevents)
		{
			substr($events, $at + 16, 8) = pack('Q', 24 + $at);
			$at += unpack('L', substr($events, $at, 4));
		}
		$v1 .= pack('L L Q', $nevents, 0, $length) . $events;
		$pos += 24 + $length;
	}
	return $v1;
}

# --- a file in 0.2.0's format -------------------------------------------------------
publish_and_stop();
write_file_bytes(as_0_2_0(file_bytes()));
$node->start;
is(stats_row($node)->{queue_events}, 1000, 'a spill file in the 0.2.0 format is loaded');
ok(!-e $spill && !-e "$spill.damaged", 'and removed');
identity_holds($node, 'after the loads');

$node->stop;
done_testing();
