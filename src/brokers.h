/*
 * brokers.h
 *		Per-broker connection facts from librdkafka's statistics, behind the
 *		kafka_brokers view, and the batch sizes seen in them.
 */
#ifndef STREAMKAFKA_BROKERS_H
#define STREAMKAFKA_BROKERS_H

#include "datatype/timestamp.h"

#define SK_MAX_BROKERS		64
#define SK_BROKER_NAME_LEN	128
#define SK_BROKER_ERROR_LEN	160
#define SK_BROKER_STATE_LEN	24	/* librdkafka's longest, APIVERSION_QUERY, has 16 */

typedef struct SkBroker
{
	char		name[SK_BROKER_NAME_LEN];	/* host:port/id as librdkafka names it */
	int32		id;				/* -1: a bootstrap entry */
	char		state[SK_BROKER_STATE_LEN];
	bool		down;			/* counted down by kafka_stats and
								 * kafka_health() (rdstats.c says when) */
	int64		rtt_avg_us;
	int64		rtt_p99_us;
	int64		requests_waiting;	/* queued to send plus awaiting a response */
	int64		connects;
	int64		disconnects;
	char		last_error[SK_BROKER_ERROR_LEN];
	TimestampTz last_error_at;
} SkBroker;

/*
 * brokers_state_is_up - true for librdkafka's broker states of a usable
 * connection ("UP", "UPDATE"); state need not be NUL-terminated
 */
static inline bool
brokers_state_is_up(const char *state, int len)
{
	return (len == 2 && memcmp(state, "UP", 2) == 0) ||
		(len == 6 && memcmp(state, "UPDATE", 6) == 0);
}

typedef struct SkBrokerSnapshot
{
	int			count;
	TimestampTz seen_at;
	double		batch_messages_avg;	/* of the busiest topic's partitions */
	double		batch_messages_p99;
	SkBroker	brokers[SK_MAX_BROKERS];
} SkBrokerSnapshot;

extern Size brokers_shmem_size(void);
extern void brokers_shmem_init(void);

/* the worker */
extern void brokers_note_error(const char *reason);
extern void brokers_publish(SkBrokerSnapshot *snapshot);
extern void brokers_clear(void);

/* readers: a palloc'd copy */
extern SkBrokerSnapshot *brokers_snapshot(void);

#endif							/* STREAMKAFKA_BROKERS_H */
