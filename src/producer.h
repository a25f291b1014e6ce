/*
 * producer.h
 *		The worker's librdkafka producer.
 */
#ifndef STREAMKAFKA_PRODUCER_H
#define STREAMKAFKA_PRODUCER_H

#include <librdkafka/rdkafka.h>

#include "event.h"
#include "kafkaconf.h"

/*
 * what the producer calls back in the worker's thread: poll_begins before it
 * serves delivery reports, on_delivery for each of them (event_off is the
 * opaque given to producer_send)
 */
typedef struct SkProducerHandler
{
	void		(*poll_begins) (void);
	void		(*on_delivery) (uint64 event_off, rd_kafka_resp_err_t err, size_t len,
								int stats_slot);
} SkProducerHandler;

extern bool producer_start(int wake_fd, int old_flush_timeout_ms,
						   const SkProducerHandler *events);
extern void producer_stop(int flush_timeout_ms);
extern void producer_purge_queued(void);
extern bool producer_running(void);
extern void producer_apply_mock_faults(void);
extern void producer_stats_reset(void);
extern bool producer_failed(void);
extern bool producer_settings_changed(void);
extern void producer_poll(void);
extern rd_kafka_resp_err_t producer_send(const SkEventView *event, bool copy_value,
										 uint64 opaque, int *stats_slot);

#endif							/* STREAMKAFKA_PRODUCER_H */
