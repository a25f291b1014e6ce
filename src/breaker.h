/*
 * breaker.h
 *		The worker's circuit breaker: stops handing events to librdkafka while
 *		Kafka keeps failing, and probes with one event before resuming.
 */
#ifndef STREAMKAFKA_BREAKER_H
#define STREAMKAFKA_BREAKER_H

#include "datatype/timestamp.h"

typedef enum SkBreakerState
{
	SK_BREAKER_CLOSED,
	SK_BREAKER_OPEN,
	SK_BREAKER_HALF_OPEN
} SkBreakerState;

extern Size breaker_shmem_size(void);
extern void breaker_shmem_init(void);

/* the worker; failure and success are plain C, safe inside librdkafka callbacks */
extern void breaker_reset(void);
extern void breaker_failure(const char *why);
extern void breaker_success(void);
extern void breaker_brokers_down(const char *why);
extern void breaker_brokers_seen(int up, int not_connected);
extern bool breaker_may_send(void);
extern void breaker_sent(void);
extern void breaker_tick(bool in_flight);

/* readers */
extern void breaker_read(SkBreakerState *state, int *failures, uint64 *opened);
extern const char *breaker_state_name(SkBreakerState state);

#endif							/* STREAMKAFKA_BREAKER_H */
