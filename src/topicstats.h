/*
 * topicstats.h
 *		Per-topic delivery counters and enqueue-to-acknowledgement latency
 *		histograms in shared memory, behind kafka_topic_stats and the
 *		latency columns of kafka_stats.
 */
#ifndef STREAMKAFKA_TOPICSTATS_H
#define STREAMKAFKA_TOPICSTATS_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"

/* the row that counts the topics beyond streamkafka.max_topics */
#define SK_OVERFLOW_TOPIC	"_other"

#define SK_LATENCY_BUCKETS	16	/* 15 upper bounds and +Inf */

extern const double sk_latency_bounds_ms[SK_LATENCY_BUCKETS - 1];

/* a latency histogram: counts per bucket (not cumulative), sum and max */
typedef struct SkLatency
{
	pg_atomic_uint64 buckets[SK_LATENCY_BUCKETS];
	pg_atomic_uint64 sum_us;
	pg_atomic_uint64 max_us;
} SkLatency;

/* a plain copy of a histogram */
typedef struct SkLatencyCopy
{
	uint64		buckets[SK_LATENCY_BUCKETS];
	uint64		count;
	uint64		sum_us;
	uint64		max_us;
} SkLatencyCopy;

extern Size topicstats_shmem_size(void);
extern void topicstats_shmem_init(void *place, bool recovered);

/* the worker: slot of a topic (-1 never; the overflow slot when full) */
extern bool topicstats_reset_seen(void);
extern int	topicstats_slot(const char *topic);
extern int	topicstats_event_slot(uint64 event_off);
extern void topicstats_count_taken(int slot);
extern void topicstats_count_sent(int slot);
extern void topicstats_count_delivered(int slot, uint64 bytes, TimestampTz enqueued_at,
									   TimestampTz now);
extern void topicstats_count_failed(int slot, const char *error);
extern void topicstats_count_dropped(int slot);
extern void topicstats_count_dead_lettered(int slot);

/* readers */
extern void topicstats_total_latency(SkLatencyCopy *copy);
extern double topicstats_percentile_ms(const SkLatencyCopy *copy, double q);
extern void topicstats_reset(void);

/* readers (Prometheus, the lag refresh): a palloc'd copy of every row shown */
typedef struct SkTopicRow
{
	char		topic[256];
	uint64		queued;
	uint64		sent;
	uint64		delivered;
	uint64		failed;
	uint64		dropped;
	uint64		dead_lettered;
	uint64		bytes;
	TimestampTz last_delivered_at;
	TimestampTz last_error_at;
	char		last_error[128];
	SkLatencyCopy latency;
} SkTopicRow;

extern int	topicstats_rows(SkTopicRow **rows);

#endif							/* STREAMKAFKA_TOPICSTATS_H */
