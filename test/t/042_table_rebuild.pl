# A consumer that keeps a copy of a streamed table can rebuild it from the
# stream, in memory mode: TableRebuild's workload and checks (four writing
# sessions, a TRUNCATE, rows the streams never saw, snapshots while the
# sessions write; each copy equals its table, in both envelopes, through a
# row filter and on a compacted topic; transaction metadata counts match),
# the events going through the queue only (no replication slot).
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use StreamKafkaTest;
use TableRebuild;

my $node = rebuild_start();
rebuild_workload();
rebuild_check_copies();
rebuild_check_transactions();
rebuild_check_compacted();
# the events went through the queue, not the WAL: memory mode has no slot
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'), 0,
	'memory mode: no replication slot');

$node->stop;
done_testing();
