/*
 * health.h
 *		The health verdict behind kafka_health(), /health and the
 *		streamkafka_health_status metric.
 */
#ifndef STREAMKAFKA_HEALTH_H
#define STREAMKAFKA_HEALTH_H

#include "lib/stringinfo.h"

typedef enum SkHealthStatus
{
	SK_HEALTHY,
	SK_DEGRADED,
	SK_UNHEALTHY
} SkHealthStatus;

extern SkHealthStatus health_report(StringInfo json);

#endif							/* STREAMKAFKA_HEALTH_H */
