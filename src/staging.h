/*
 * staging.h
 *		Pre-touched shared memory lent to transactions for their pending
 *		events (see staging.c).
 */
#ifndef STREAMKAFKA_STAGING_H
#define STREAMKAFKA_STAGING_H

#include "hugepage.h"

/* every staging chunk is one huge page (and starts at a page boundary) */
#define SK_STAGING_CHUNK	SK_HUGE_PAGE

extern Size staging_shmem_size(void);
extern void staging_shmem_init(void *place, bool first_time);
extern void *staging_take(void);
extern void staging_give_back(void *chunk);
extern bool staging_owns(const void *pointer);
extern void staging_report(uint64 *size, uint64 *in_use, uint64 *most_used, uint64 *misses);

#endif							/* STREAMKAFKA_STAGING_H */
