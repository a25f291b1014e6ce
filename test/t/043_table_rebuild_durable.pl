# A consumer that keeps a copy of a streamed table can rebuild it from the
# stream in durable mode (streamkafka.durability = 'wal'): TableRebuild's
# workload and checks, as in 042, with the change events, the snapshots'
# rows and the transaction metadata going through the WAL and the worker's
# logical decoding; and the slot confirmed past the whole workload.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;
use TableRebuild;

my $node = rebuild_start("wal_level = logical\nstreamkafka.durability = 'wal'\n");
trust_streamkafka_plugin($node);
$node->restart;
ok($node->poll_query_until('postgres', "SELECT finding = 'wal: ok' FROM kafka_durability()"),
	'durable mode works');
my $workload_end = rebuild_workload();
is($node->safe_psql('postgres', "SELECT confirmed_flush_lsn >= '$workload_end' "
		  . "FROM pg_replication_slots WHERE slot_name = 'streamkafka'"),
	't', 'the worker decoded the whole workload from the WAL');
rebuild_check_copies();
rebuild_check_transactions();
rebuild_check_compacted();

$node->stop;
done_testing();
