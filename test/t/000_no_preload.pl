# Without shared_preload_libraries the extension can be created (a dump can
# be restored), but every function refuses to run with SQLSTATE 55000 and a
# hint naming the setting.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION streamkafka');

for my $call ("SELECT kafka_publish('t', 'v')", 'SELECT * FROM kafka_stats',
	'SELECT kafka_health()')
{
	my ($ret, $out, $err) = $node->psql('postgres', $call,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($ret, 0, "$call fails");
	like($err, qr/ERROR:  55000: streamkafka must be loaded via shared_preload_libraries/,
		"$call: SQLSTATE 55000 and a clear message");
	like($err, qr/HINT:  Add streamkafka to shared_preload_libraries/,
		"$call: the hint names the setting");
}

$node->stop;
done_testing();
