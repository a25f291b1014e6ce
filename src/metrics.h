/*
 * metrics.h
 *		Counters and status in shared memory, behind kafka_stats and
 *		kafka_health().
 */
#ifndef STREAMKAFKA_METRICS_H
#define STREAMKAFKA_METRICS_H

#include "datatype/timestamp.h"

extern Size metrics_shmem_size(void);
extern void metrics_shmem_init(void *place, bool recovered, uint64 queue_events);

/* backends */
extern void metrics_count_queued(uint32 nevents);
extern void metrics_count_rejected(uint32 nevents);
extern void metrics_count_dropped(uint64 nevents);
extern void metrics_count_retried(uint32 nevents);

/* the worker */
extern void metrics_count_delivered(uint64 bytes);
extern void metrics_count_failed(const char *error);
extern void metrics_count_dead_lettered(uint64 nevents);
extern void metrics_note_error(const char *error);
extern void metrics_note_delivery_time(TimestampTz when);
extern void metrics_worker_started(int pid);
extern void metrics_worker_stopped(void);
extern void metrics_producer_state(bool ready, bool mock, const char *bootstrap);
extern void metrics_set_brokers(int total, int up, int down);

#endif							/* STREAMKAFKA_METRICS_H */
