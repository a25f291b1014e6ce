/*
 * locks.h
 *		The extension's named LWLock tranche "streamkafka": one lock for each
 *		shared region that needs one, requested all together at preload.
 */
#ifndef STREAMKAFKA_LOCKS_H
#define STREAMKAFKA_LOCKS_H

#include "storage/lwlock.h"

#define SK_LWLOCK_TOPICS	0	/* topicstats.c */
#define SK_LWLOCK_BROKERS	1	/* brokers.c */
#define SK_LWLOCK_MONITOR	2	/* lag.c: lag and topic metadata */
#define SK_LWLOCKS			3

/* sk_lwlock - one lock of the tranche, by its SK_LWLOCK_* index */
static inline LWLock *
sk_lwlock(int index)
{
	return &(GetNamedLWLockTranche("streamkafka"))[index].lock;
}

#endif							/* STREAMKAFKA_LOCKS_H */
