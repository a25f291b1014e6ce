/*
 * rdstats.h
 *		Reading librdkafka's statistics JSON.
 */
#ifndef STREAMKAFKA_RDSTATS_H
#define STREAMKAFKA_RDSTATS_H

/* false when no broker is connected */
extern bool rdstats_process(const char *json);

#endif							/* STREAMKAFKA_RDSTATS_H */
