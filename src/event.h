/*
 * event.h
 *		One Kafka event as it is stored in the queue, and the checks an event
 *		passes before it is stored.
 */
#ifndef STREAMKAFKA_EVENT_H
#define STREAMKAFKA_EVENT_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#define SK_TOPIC_MAX_LEN	249

/*
 * Event flags.  The low byte is written by the worker only; the rest is set
 * by the session that queued the event.
 */
#define SK_EVENT_DELIVERED	0x1
#define SK_EVENT_REFUSED	0x2		/* Kafka refused it: awaits the dead-letter table */
#define SK_EVENT_DROPPED	0x4		/* discarded by overflow = drop_oldest */
#define SK_EVENT_DEAD_LETTERED 0x8	/* written to the dead-letter table */
#define SK_EVENT_COUNTED	0x10	/* counted in its topic's statistics */
#define SK_EVENT_FINISHED	(SK_EVENT_DELIVERED | SK_EVENT_DROPPED | SK_EVENT_DEAD_LETTERED)
#define SK_EVENT_SETTLED	(SK_EVENT_FINISHED | SK_EVENT_REFUSED)	/* never sent again */
#define SK_EVENT_WORKER_FLAGS	0xff
#define SK_EVENT_RETRY		0x100	/* a dead letter queued again */
#define SK_EVENT_ATTEMPTS_SHIFT 16	/* high 16 bits: failed attempts before */

/*
 * SkEventHeader - what starts every event in a block, followed by the topic
 * (NUL terminated), the key, the value and the packed headers.  Every field
 * sits in an 8-byte aligned word (see ring.h), so the worker can update flags
 * and sent_generation in place in the ring.  An event is in flight when its
 * sent_generation is the current producer's and it is not finished.
 */
typedef struct SkEventHeader
{
	uint32		length;			/* bytes, header included, multiple of 8 */
	uint32		flags;			/* SK_EVENT_* */
	int64		event_id;
	uint64		block_delta;	/* this event's offset minus its block's */
	int32		partition;		/* -1: the partitioner chooses */
	int32		key_len;		/* -1: no key */
	int32		value_len;		/* -1: null value (a tombstone) */
	uint32		headers_len;	/* bytes of packed headers */
	uint16		topic_len;		/* without the NUL */
	uint16		nheaders;
	uint32		sent_generation;	/* producer holding it, 0: none; once
									 * REFUSED: the error code (worker only) */
} SkEventHeader;

/*
 * Packed headers: for each header, uint32 name length, int32 value length
 * (-1 for a null value), the name and a NUL, then the value; unaligned.
 */
typedef struct SkPackedHeader
{
	uint32		name_len;
	int32		value_len;
} SkPackedHeader;

/* what a caller asks to publish; pointers are borrowed */
typedef struct SkEvent
{
	const char *topic;
	int			topic_len;
	const char *key;
	int32		key_len;		/* -1: no key */
	const char *value;
	int32		value_len;		/* -1: null value */
	const char *headers;		/* packed */
	uint32		headers_len;
	uint16		nheaders;
	int32		partition;		/* -1: the partitioner chooses */
	int64		retry_id;		/* a dead letter queued again: its id; else 0 */
	uint16		attempts;		/* failed attempts before this one */
} SkEvent;

/* a packed event seen by the worker; pointers into the event */
typedef struct SkEventView
{
	const SkEventHeader *header;
	const char *topic;
	const char *key;
	const char *value;
	const char *headers;
} SkEventView;

extern void event_check_topic(const char *topic, int len);
extern void event_pack_headers(Jsonb *headers, StringInfo out, uint16 *count);
extern uint64 event_packed_size(const SkEvent *event);
extern void event_pack(char *dst, const SkEvent *event, int64 event_id,
					   uint64 block_delta);
extern void event_pack_ring(uint64 off, const SkEvent *event, int64 event_id,
							uint64 block_delta);
extern void event_view(const char *packed, SkEventView *view);
extern bool event_has_header(const char *packed, int count, const char *name);

#endif							/* STREAMKAFKA_EVENT_H */
