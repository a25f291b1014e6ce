/*
 * rdstats.h
 *		Reading librdkafka's statistics JSON.
 */
#ifndef STREAMKAFKA_RDSTATS_H
#define STREAMKAFKA_RDSTATS_H

extern void rdstats_process(const char *json);

#endif							/* STREAMKAFKA_RDSTATS_H */
