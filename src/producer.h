/*
 * producer.h
 *		The worker's librdkafka producer.
 */
#ifndef STREAMKAFKA_PRODUCER_H
#define STREAMKAFKA_PRODUCER_H

#include <librdkafka/rdkafka.h>

#include "event.h"

/* how many events may be handed to librdkafka and not yet acknowledged */
#define SK_PRODUCER_WINDOW	100000

extern bool producer_start(int wake_fd, int old_flush_timeout_ms);
extern void producer_stop(int flush_timeout_ms);
extern void producer_purge_queued(void);
extern bool producer_running(void);
extern void producer_apply_mock_faults(void);
extern void producer_stats_reset(void);
extern bool producer_failed(void);
extern rd_kafka_conf_t *producer_client_conf(const char *bootstrap, char *errstr, size_t errlen);
extern rd_kafka_t *producer_new_handle(rd_kafka_conf_t *conf, char *errstr, size_t errlen);
extern bool producer_settings_changed(void);
extern void producer_poll(void);
extern rd_kafka_resp_err_t producer_send(const SkEventView *event, bool copy_value,
										 uint64 opaque, int *stats_slot);

#endif							/* STREAMKAFKA_PRODUCER_H */
