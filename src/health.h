/*
 * health.h
 *		The health verdict behind kafka_health(), /health and the
 *		streamkafka_health_status metric.
 */
#ifndef STREAMKAFKA_HEALTH_H
#define STREAMKAFKA_HEALTH_H

#include "lib/stringinfo.h"

#include "decoder.h"
#include "durable.h"

typedef enum SkHealthStatus
{
	SK_HEALTHY,
	SK_DEGRADED,
	SK_UNHEALTHY
} SkHealthStatus;

/* durable mode's figures, as kafka_health(), kafka_durability() and /metrics give them */
typedef struct SkDurabilityFigures
{
	SkDecoderShared decoder;	/* what the worker says */
	SkSlotInfo	slot;
	uint64		retained;		/* WAL bytes the slot keeps */
	uint64		undelivered;	/* WAL bytes past the slot's confirmed position */
} SkDurabilityFigures;

extern SkHealthStatus health_report(StringInfo json);
extern void health_durability(SkDurabilityFigures *figures);

#endif							/* STREAMKAFKA_HEALTH_H */
