/*
 * metrics.h
 *		Counters and status in shared memory, behind kafka_stats and
 *		kafka_health().
 */
#ifndef STREAMKAFKA_METRICS_H
#define STREAMKAFKA_METRICS_H

#include "datatype/timestamp.h"

#include "counter.h"

extern Size metrics_shmem_size(void);
extern void metrics_shmem_init(void *place, bool recovered, uint64 queue_events);

/* any process (atomic additions) */
extern void metrics_count_queued(uint32 nevents);
extern void metrics_count_rejected(uint32 nevents);
extern void metrics_count_dropped(uint64 nevents);

/* the worker only (worker_counter_add: another writer would lose counts) */
extern void metrics_count_retried(uint32 nevents);
extern void metrics_count_sent(void);
extern void metrics_count_delivered(uint64 bytes);
extern void metrics_count_failed(const char *error);
extern void metrics_count_dead_lettered(uint64 nevents);
extern void metrics_note_error(const char *error);
extern void metrics_note_delivery_time(TimestampTz when);
extern void metrics_worker_started(int pid);
extern void metrics_worker_stopped(void);
extern void metrics_producer_state(bool ready, bool mock, const char *bootstrap);
extern void metrics_set_brokers(int total, int up, int down);

/* a consistent copy of the counters and the worker's status */
typedef struct SkStatsSnapshot
{
	uint64		queued;
	uint64		sent;
	uint64		delivered;
	uint64		failed;
	uint64		rejected;
	uint64		dropped;
	uint64		dead_lettered;
	uint64		retried;
	uint64		delivered_bytes;
	uint64		queue_events;
	uint64		queue_bytes;
	uint64		queue_size;
	uint64		queue_high_water;
	TimestampTz last_delivered_at;
	TimestampTz last_error_at;
	TimestampTz reset_at;
	TimestampTz last_dead_letter_at;
	char		last_error[256];
	int			worker_pid;
	bool		worker_running;
	bool		producer_ready;
	bool		mock_mode;
	char		bootstrap[1024];
	int			brokers_total;
	int			brokers_up;
	int			brokers_down;
} SkStatsSnapshot;

extern void metrics_snapshot(SkStatsSnapshot *snap);
extern int64 metrics_accounting_gap(SkStatsSnapshot *snap);
extern void metrics_reset(void);

#endif							/* STREAMKAFKA_METRICS_H */
