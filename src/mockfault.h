/*
 * mockfault.h
 *		Fault injection into librdkafka's embedded mock cluster, asked for from
 *		SQL and applied by the worker (tests and demonstrations only).
 */
#ifndef STREAMKAFKA_MOCKFAULT_H
#define STREAMKAFKA_MOCKFAULT_H

#include <librdkafka/rdkafka.h>

extern Size mockfault_shmem_size(void);
extern void mockfault_shmem_init(void);
extern void mockfault_apply(rd_kafka_t *rk);

#endif							/* STREAMKAFKA_MOCKFAULT_H */
