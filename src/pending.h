/*
 * pending.h
 *		A transaction's transactional events, held until it commits.
 */
#ifndef STREAMKAFKA_PENDING_H
#define STREAMKAFKA_PENDING_H

#include "event.h"

extern void pending_init(void);
extern void pending_add(const SkEvent *event, uint64 size, int64 event_id);
extern void pending_list(const SkEvent *event, uint64 size, int64 event_id);
extern void pending_note_table(Oid relid);

#endif							/* STREAMKAFKA_PENDING_H */
