/*
 * durable.h
 *		Durable mode: events written into the WAL as logical messages
 *		(durable.c) and read back by the worker through the slot
 *		"streamkafka" (decoder.c).
 */
#ifndef STREAMKAFKA_DURABLE_H
#define STREAMKAFKA_DURABLE_H

#include "access/xlogdefs.h"

#include "event.h"

#define SK_SLOT_NAME		"streamkafka"
#define SK_WAL_PREFIX_TAG	"streamkafka:"
#define SK_WAL_FORMAT		1
/* a logical message that only marks a WAL position (kafka_flush, closing) */
#define SK_WAL_MARKER_PREFIX	"streamkafka.marker"

/* what starts every event message in the WAL, before the packed event */
typedef struct SkWalEventHead
{
	uint32		format;			/* SK_WAL_FORMAT */
	Oid			role;			/* the current_user that published it */
} SkWalEventHead;

typedef enum SkSlotState
{
	SK_SLOT_MISSING,			/* no persistent slot "streamkafka" */
	SK_SLOT_READY,
	SK_SLOT_INVALIDATED			/* PostgreSQL removed WAL the slot held */
} SkSlotState;

extern void durable_load_token(void);
extern bool durable_prefix_matches(const char *prefix);
extern bool durable_prefix_is_ours(const char *prefix);
/* what durable_find_slot says of the slot "streamkafka" */
typedef struct SkSlotInfo
{
	SkSlotState state;
	Oid			database;		/* InvalidOid if missing */
	XLogRecPtr	restart_lsn;	/* the oldest WAL it keeps */
	XLogRecPtr	confirmed;		/* events up to here are finished */
} SkSlotInfo;

extern SkSlotState durable_find_slot(SkSlotInfo *info);
extern Size durable_shmem_size(void);
extern void durable_shmem_init(void);
extern bool durable_close_writers(XLogRecPtr *end);
extern void durable_reopen_writers(void);
extern int64 durable_publish(const SkEvent *event, uint64 size, bool transactional);
extern void durable_defer_flush(bool defer);
extern void durable_flush_deferred(void);

#endif							/* STREAMKAFKA_DURABLE_H */
