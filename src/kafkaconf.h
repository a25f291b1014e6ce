/*
 * kafkaconf.h
 *		The librdkafka configuration the streamkafka.* settings give.
 */
#ifndef STREAMKAFKA_KAFKACONF_H
#define STREAMKAFKA_KAFKACONF_H

#include <librdkafka/rdkafka.h>

/* how many events may be handed to librdkafka and not yet acknowledged */
#define SK_PRODUCER_WINDOW	100000

extern void kafkaconf_fingerprint(char *out, size_t outlen);
extern rd_kafka_conf_t *kafkaconf_producer(char *errstr, size_t errlen);
extern rd_kafka_conf_t *kafkaconf_client(const char *bootstrap, char *errstr, size_t errlen);
extern rd_kafka_t *kafkaconf_new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf,
										 char *errstr, size_t errlen);

#endif							/* STREAMKAFKA_KAFKACONF_H */
