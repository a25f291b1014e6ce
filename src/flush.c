/*
 * flush.c
 *		kafka_flush(): wait until every event queued before the call is
 *		acknowledged by Kafka or dead-lettered.  The one call that waits, and
 *		only when asked; the wait is interruptible (Ctrl-C) and bounded.
 *
 * While the slot "streamkafka" exists (durable mode, or its events still
 * being delivered after it), events committed before the call may still be
 * in the WAL only: the call writes a marker into the WAL (a logical message
 * the worker skips) and the wait also lasts until the worker has confirmed
 * the slot past it.  The marker's own LSN, not the insert position, is the
 * target: the position after a page header is no record's end.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "decoder.h"
#include "durable.h"
#include "ring.h"
#include "streamkafka.h"

PG_FUNCTION_INFO_V1(streamkafka_flush);

/* what kafka_flush waits for */
typedef struct FlushTarget
{
	uint64		ring_head;		/* the queue's tail passes this */
	XLogRecPtr	wal_end;		/* the slot is confirmed past this, or 0 */
} FlushTarget;

/* flush_passed - ring_wait's test: has every target been passed? */
static bool
flush_passed(void *arg)
{
	FlushTarget *target = (FlushTarget *) arg;
	uint64		tail;
	uint64		head;
	SkDecoderShared decoder;

	ring_bounds(&tail, &head);
	if (tail < target->ring_head)
		return false;
	if (target->wal_end == InvalidXLogRecPtr)
		return true;
	decoder_read_shared(&decoder);
	return decoder.confirmed >= target->wal_end;
}

/*
 * streamkafka_flush - true once the queue's tail has passed the head as it
 * was at the call (every earlier block finished and released), false when
 * timeout_ms passed first
 */
Datum
streamkafka_flush(PG_FUNCTION_ARGS)
{
	int32		timeout_ms = PG_ARGISNULL(0) ? 30000 : PG_GETARG_INT32(0);
	TimestampTz deadline;
	uint64		tail;
	FlushTarget target = {0, InvalidXLogRecPtr};
	SkSlotInfo	slot;

	streamkafka_require_preload();
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kafka_flush timeout must not be negative, got %d", timeout_ms)));

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ring_bounds(&tail, &target.ring_head);
	if (durable_find_slot(&slot) == SK_SLOT_READY && !RecoveryInProgress())
	{
		target.wal_end = SK_LogLogicalMessage(SK_WAL_MARKER_PREFIX, "", 0, false, true);
		ring_wake_consumer();
	}
	PG_RETURN_BOOL(ring_wait(flush_passed, &target, deadline,
							 target.wal_end == InvalidXLogRecPtr ? 1000 : 100));
}
