# A slow HTTP client (one byte of request a second, never finishing) does not
# hold the monitor worker: /metrics still answers other clients, the lag and
# topic refresh goes on, the server closes the slow connection, and a fast
# shutdown with a slow client connected succeeds and closes it, and so does
# the postmaster's death.  A request
# head larger than the server takes is refused.
use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use StreamKafkaTest;

my $bootstrap = kafka_bootstrap();
my $http_port = free_tcp_port();
my $node = start_pg_node('slowhttp', $bootstrap,
	"streamkafka.lag_groups = '*'\n"
	  . "streamkafka.lag_interval_ms = 300\n"
	  . "streamkafka.http_port = $http_port\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $topic = unique_topic('slowhttp');
create_topic($bootstrap, $topic, 2);
sql("SELECT kafka_publish('$topic', 'x')");
is(sql('SELECT kafka_flush(60000)'), 't', 'an event is delivered');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM kafka_topics WHERE topic = '$topic'"),
	'the monitor refreshed the topic metadata');
my ($status) = http_get('127.0.0.1', $http_port, '/metrics');
is($status, 200, '/metrics answers');

# slow_client() - a child process that connects and sends "GET /metrics
# HTTP/1.0\r\n" then one byte of header a second, never ending the head; it
# exits 0 when the server closes the connection, 1 if it is still open after
# 60 s (the old monitor took a byte every 2 s for hours); a child process
# leaves with _exit so that it does not stop the test's node
sub slow_client
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port,
		Proto => 'tcp') or die "connect: $!";
	my $pid = fork() // die "fork: $!";
	return $pid if $pid;
	$SIG{PIPE} = 'IGNORE';
	syswrite($sock, "GET /metrics HTTP/1.0\r\n") or POSIX::_exit(0);
	for (1 .. 60)
	{
		sleep 1;
		# closed by the server: the read sees the end, or the write fails
		my $rin = '';
		vec($rin, fileno($sock), 1) = 1;
		if (select(my $rout = $rin, undef, undef, 0) > 0)
		{
			my $got = sysread($sock, my $buf, 4096);
			POSIX::_exit(0) if !$got;
		}
		syswrite($sock, 'X') or POSIX::_exit(0);
	}
	POSIX::_exit(1);
}

# --- one slow client: the others are served, the refresh goes on
my $slow = slow_client();
sleep 1.5;    # it has sent a few bytes
my ($code, $body) = http_get('127.0.0.1', $http_port, '/metrics');
is($code, 200, '/metrics answers while a slow client is connected');
like($body // '', qr/^streamkafka_events_delivered_total 1$/m, 'with the metrics');
($code) = http_get('127.0.0.1', $http_port, '/health');
is($code, 200, '/health answers while a slow client is connected');
my $refreshed = sql("SELECT max(refreshed_at) FROM kafka_topics WHERE topic = '$topic'");
ok($node->poll_query_until('postgres',
		"SELECT max(refreshed_at) > '$refreshed' FROM kafka_topics WHERE topic = '$topic'"),
	'the topic metadata is refreshed while the slow client is connected');
waitpid($slow, 0);
is($? >> 8, 0, 'the server closed the slow connection');

# --- a request head larger than the server takes is refused
my $big = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port, Proto => 'tcp')
  or die "connect: $!";
print $big "GET /metrics HTTP/1.0\r\n" . ('X-Filler: ' . ('y' x 100) . "\r\n") x 200;
my $answer = '';
while (defined(my $line = <$big>)) { $answer .= $line; }
close $big;
like($answer, qr{^HTTP/1\.1 431 }, 'a request head over 8 kB is answered 431');

# --- a fast shutdown with slow clients connected
my @slow = map { slow_client() } 1 .. 3;
sleep 1.5;
$node->stop('fast');
pass('a fast shutdown with three slow clients connected succeeds');
my $closed = 0;
for my $pid (@slow)
{
	waitpid($pid, 0);
	$closed++ if ($? >> 8) == 0;
}
is($closed, 3, 'the slow connections were closed');
unlike(slurp_file($node->logfile), qr/terminated by signal/,
	'no process was terminated by a signal');

# --- the postmaster dies while a slow client is connected: the monitor ends
$node->start;
my @serving;
for (1 .. 600)
{
	@serving = slurp_file($node->logfile) =~ /\[(\d+)\] LOG:  streamkafka serves \/metrics/g;
	last if @serving == 2;
	sleep 0.1;
}
my $monitor_pid = $serving[-1];
ok(defined $monitor_pid && kill(0, $monitor_pid), 'the monitor serves again after a restart');
$slow = slow_client();
sleep 1.5;
$node->kill9;
my $gone = 0;
for (1 .. 600)
{
	if (!kill(0, $monitor_pid)) { $gone = 1; last; }
	sleep 0.1;
}
ok($gone, 'the monitor ends when the postmaster dies');
waitpid($slow, 0);
is($? >> 8, 0, 'and the slow connection is closed');
done_testing();
