/*
 * deadletter.h
 *		Events Kafka refused for good, written by the worker to the
 *		kafka_dead_letters table.
 */
#ifndef STREAMKAFKA_DEADLETTER_H
#define STREAMKAFKA_DEADLETTER_H

/* plain C: called from delivery reports */
extern void deadletter_add(uint64 event_off);
extern void deadletter_retry_delivered(int64 event_id);
extern void deadletter_retry_dropped(int64 event_id);
extern void deadletter_forget_all(void);

/* the worker's loop */
extern bool deadletter_flush(void);
extern bool deadletter_missed(void);

/* the worker's connection to streamkafka.database */
extern void deadletter_connected(bool to_database);
extern void deadletter_connect_failed(void);
extern bool deadletter_database_back(void);

/* shared: was streamkafka.database out of reach? */
extern Size deadletter_shmem_size(void);
extern void deadletter_shmem_init(void);
extern bool deadletter_no_database(void);

#endif							/* STREAMKAFKA_DEADLETTER_H */
