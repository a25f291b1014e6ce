/*
 * flush.c
 *		kafka_flush(): wait until every event queued before the call is
 *		acknowledged by Kafka or dead-lettered.  The one call that waits, and
 *		only when asked; the wait is interruptible (Ctrl-C) and bounded.
 */
#include "postgres.h"

#include "fmgr.h"
#include "pgstat.h"
#include "utils/timestamp.h"

#include "ring.h"
#include "streamkafka.h"

PG_FUNCTION_INFO_V1(streamkafka_flush);

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
	bool		done = false;

	streamkafka_require_preload();
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kafka_flush timeout must not be negative, got %d", timeout_ms)));

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ring_bounds(&tail, &target);
	ConditionVariablePrepareToSleep(&sk_ring->space_cv);
	for (;;)
	{
		uint64		head;
		long		remaining;

		ring_bounds(&tail, &head);
		if (tail >= target)
		{
			done = true;
			break;
		}
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			break;
		/* checks for interrupts: Ctrl-C ends the wait */
		(void) ConditionVariableTimedSleep(&sk_ring->space_cv, Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(done);
}
