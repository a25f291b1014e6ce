/*
 * streamkafka.h
 *		Names shared by every part of the extension: version, the preload
 *		check, and the entry points registered in _PG_init.
 */
#ifndef STREAMKAFKA_H
#define STREAMKAFKA_H

#include "postgres.h"

#include "datatype/timestamp.h"

#define STREAMKAFKA_VERSION "0.4.0"

/* a timestamp as Unix epoch microseconds */
static inline int64
sk_unix_us(TimestampTz ts)
{
	return ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

/* a timestamp as Unix epoch milliseconds, as Kafka and Debezium count time */
static inline int64
sk_unix_ms(TimestampTz ts)
{
	return sk_unix_us(ts) / 1000;
}

/* true in processes where the library came from shared_preload_libraries */
extern bool streamkafka_preloaded;

extern void streamkafka_require_preload(void);

#endif							/* STREAMKAFKA_H */
