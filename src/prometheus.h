/*
 * prometheus.h
 *		Every streamkafka metric in Prometheus' text exposition format.
 */
#ifndef STREAMKAFKA_PROMETHEUS_H
#define STREAMKAFKA_PROMETHEUS_H

#include "lib/stringinfo.h"

extern void prometheus_text(StringInfo out);

#endif							/* STREAMKAFKA_PROMETHEUS_H */
