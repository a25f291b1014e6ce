# 042's workload and checks with streamkafka.durability = 'wal': the change
# events, the snapshots' rows and the transaction metadata go through the
# WAL and the worker's logical decoding, and a consumer still rebuilds each
# table from its stream.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
# loaded here, not by the file run below: their INIT blocks set up the test
# directories, and a file run by do() is too late for INIT
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;

$ENV{STREAMKAFKA_REBUILD_DURABLE} = 1;
my $file = File::Spec->rel2abs(dirname(__FILE__) . '/042_table_rebuild.pl');
do $file or die($@ || "cannot run $file: $!");
