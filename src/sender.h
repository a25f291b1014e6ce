/*
 * sender.h
 *		The worker's walk over the queue: send, account, release, evict.
 */
#ifndef STREAMKAFKA_SENDER_H
#define STREAMKAFKA_SENDER_H

#include <librdkafka/rdkafka.h>

extern void sender_restart(uint32 generation);
extern void sender_resync(void);
extern uint32 sender_drain(uint32 budget);
extern bool sender_release(void);
extern bool sender_has_work(void);
extern bool sender_can_send(void);
extern uint64 sender_evict(uint64 bytes_wanted);
extern bool sender_take_delivered_flag(void);
extern bool sender_in_flight(void);
extern void sender_poll_begins(void);
extern void sender_on_delivery(uint64 event_off, rd_kafka_resp_err_t err, size_t len,
							   int stats_slot);

#endif							/* STREAMKAFKA_SENDER_H */
