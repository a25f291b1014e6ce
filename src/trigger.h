/*
 * trigger.h
 *		What the table trigger (trigger.c) offers the snapshot: a row sent as
 *		the stream's envelope would carry it.
 */
#ifndef STREAMKAFKA_TRIGGER_H
#define STREAMKAFKA_TRIGGER_H

#include "access/htup.h"
#include "utils/rel.h"

/* the name kafka_stream_table gives the row trigger */
#define SK_STREAM_TRIGGER_NAME "streamkafka_changes"

extern uint64 trigger_snapshot_row(Trigger *trigger, Relation rel, HeapTuple row, bool last);

#endif							/* STREAMKAFKA_TRIGGER_H */
