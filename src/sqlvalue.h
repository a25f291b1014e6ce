/*
 * sqlvalue.h
 *		Column values of the extension's views: a value, or NULL where it
 *		means "never" or "no data".
 */
#ifndef STREAMKAFKA_SQLVALUE_H
#define STREAMKAFKA_SQLVALUE_H

#include "datatype/timestamp.h"
#include "utils/timestamp.h"

/* timestamp_or_null - a timestamptz Datum, NULL for 0 (never happened) */
static inline Datum
timestamp_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = ts == 0;
	return TimestampTzGetDatum(ts);
}

/* ms_or_null - a float8 Datum of milliseconds, NULL for a negative value (no data) */
static inline Datum
ms_or_null(double ms, bool *isnull)
{
	*isnull = ms < 0;
	return Float8GetDatum(ms);
}

#endif							/* STREAMKAFKA_SQLVALUE_H */
