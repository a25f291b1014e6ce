/*
 * ratelimit.h
 *		Log lines about something that recurs (drops, failures) at a bounded
 *		rate: the caller counts what it did not log and says so in the next
 *		line.
 */
#ifndef STREAMKAFKA_RATELIMIT_H
#define STREAMKAFKA_RATELIMIT_H

#include "utils/timestamp.h"

/* the interval between two lines about dropped events */
#define SK_DROP_LOG_INTERVAL_MS	10000

/*
 * log_interval_passed - true, and *logged_at set to now, if at least
 * interval_ms have passed since *logged_at (always for 0: never logged)
 */
static inline bool
log_interval_passed(TimestampTz *logged_at, TimestampTz now, int interval_ms)
{
	if (!TimestampDifferenceExceeds(*logged_at, now, interval_ms))
		return false;
	*logged_at = now;
	return true;
}

#endif							/* STREAMKAFKA_RATELIMIT_H */
