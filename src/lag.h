/*
 * lag.h
 *		Consumer lag and the metadata of the topics streamkafka publishes to,
 *		refreshed by the monitor worker, behind kafka_consumer_lag and
 *		kafka_topics.
 */
#ifndef STREAMKAFKA_LAG_H
#define STREAMKAFKA_LAG_H

#include <librdkafka/rdkafka.h>

#include "datatype/timestamp.h"

#define SK_MAX_LAG_ROWS			2048
#define SK_MAX_PARTITION_ROWS	2048
#define SK_MAX_REPLICAS			8

typedef struct SkLagRow
{
	char		group_id[256];
	char		topic[250];
	int32		partition;
	int64		committed_offset;
	int64		high_watermark;
	int64		lag;
} SkLagRow;

typedef struct SkPartitionRow
{
	char		topic[250];
	int32		partition;
	int32		leader;
	int16		nreplicas;
	int16		nisr;
	int32		replicas[SK_MAX_REPLICAS];
	int32		isr[SK_MAX_REPLICAS];
} SkPartitionRow;

/* lag_partition_under_replicated - fewer in-sync replicas than replicas */
static inline bool
lag_partition_under_replicated(const SkPartitionRow *partition)
{
	return partition->nisr < partition->nreplicas;
}

typedef struct SkLagSnapshot
{
	TimestampTz refreshed_at;
	char		last_error[256];
	int64		max_group_lag;	/* largest lag of a group on a topic */
	int			under_replicated;	/* partitions with fewer in-sync replicas */
	int			stale_answers;	/* answers discarded as not the request's */
	int			nlag;
	int			npartitions;
	SkLagRow	lag[SK_MAX_LAG_ROWS];
	SkPartitionRow partitions[SK_MAX_PARTITION_ROWS];
} SkLagSnapshot;

extern Size lag_shmem_size(void);
extern void lag_shmem_init(void);

/* the monitor worker: a refresh runs on a thread of its own */
extern bool lag_refresh_start(rd_kafka_t *rk, int timeout_ms, int budget_ms);
extern pgsocket lag_refresh_fd(void);
extern bool lag_refresh_running(void);
extern bool lag_refresh_finish(char *error, size_t errlen);
extern void lag_refresh_cancel(void);

/* readers */
extern SkLagSnapshot *lag_snapshot(void);
extern int64 lag_max_group_lag(void);
extern int	lag_under_replicated(void);
extern int64 lag_group_sum(const SkLagSnapshot *snap, int i, bool *first);
extern int	lag_topic_under_replicated(const SkLagSnapshot *snap, int i, bool *first);

#endif							/* STREAMKAFKA_LAG_H */
