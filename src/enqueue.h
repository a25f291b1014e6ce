/*
 * enqueue.h
 *		Moving events into the shared-memory queue.
 */
#ifndef STREAMKAFKA_ENQUEUE_H
#define STREAMKAFKA_ENQUEUE_H

#include "event.h"

extern void enqueue_check_fits(uint64 block_length, uint64 event_size);
extern bool enqueue_reserve(uint64 block_length, uint32 nevents,
							bool at_commit, uint64 *off);
extern bool enqueue_now(const SkEvent *event, uint64 size, int64 event_id);

#endif							/* STREAMKAFKA_ENQUEUE_H */
