/*
 * counter.h
 *		Shared-memory counters that only the worker writes.
 */
#ifndef STREAMKAFKA_COUNTER_H
#define STREAMKAFKA_COUNTER_H

#include "port/atomics.h"

/*
 * worker_counter_add - add to a counter only the worker writes: a plain load
 * and store (no locked instruction); readers still see whole values.  A
 * kafka_stats_reset() racing with it may be undone for that one counter.
 */
static inline void
worker_counter_add(pg_atomic_uint64 *counter, uint64 n)
{
	pg_atomic_write_u64(counter, pg_atomic_read_u64(counter) + n);
}

#endif							/* STREAMKAFKA_COUNTER_H */
