/*
 * flush.c
 *		kafka_flush(): wait until every event queued before the call is
 *		acknowledged by Kafka or dead-lettered.  The one call that waits, and
 *		only when asked; the wait is interruptible (Ctrl-C) and bounded.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/timestamp.h"

#include "ring.h"
#include "streamkafka.h"

PG_FUNCTION_INFO_V1(streamkafka_flush);

/* flush_passed - ring_wait's test: has the tail passed *target? */
static bool
flush_passed(void *arg)
{
	uint64		target = *(uint64 *) arg;
	uint64		tail;
	uint64		head;

	ring_bounds(&tail, &head);
	return tail >= target;
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
	uint64		target;

	streamkafka_require_preload();
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kafka_flush timeout must not be negative, got %d", timeout_ms)));

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ring_bounds(&tail, &target);
	PG_RETURN_BOOL(ring_wait(flush_passed, &target, deadline, 1000));
}
