/*
 * event.h
 *		One Kafka event as it is stored in the queue, and the checks an event
 *		passes before it is stored.
 */
#ifndef STREAMKAFKA_EVENT_H
#define STREAMKAFKA_EVENT_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "ring.h"

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
 * sent_generation is the current producer's and it is not finished.  Only
 * this module knows the layout: others use the event_ring_* accessors below
 * for an event in the queue, and event_view() for a copy.
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
	uint32		sent_generation;	/* producer holding it, 0: none */
	int32		refusal_error;	/* once REFUSED: Kafka's error code */
	uint32		unused;			/* 0: keeps the header 8-byte aligned */
} SkEventHeader;

/*
 * Up to SKSPILL2 spill files (spill.c), events have 0.2.0's header: this one
 * without refusal_error and unused; event_upgrade_v1() rewrites them.
 */
#define SK_EVENT_HEADER_V1_SIZE		48

/*
 * Packed headers: for each header, uint32 name length, int32 value length
 * (-1 for a null value), the name and a NUL, then the value; unaligned.
 */
typedef struct SkPackedHeader
{
	uint32		name_len;
	int32		value_len;
} SkPackedHeader;

/* one header of a packed list, as event_headers_next() finds it */
typedef struct SkHeaderField
{
	const char *name;			/* NUL terminated */
	uint32		name_len;
	const char *value;			/* NULL: a null value */
	uint32		value_len;		/* 0 for a null value */
} SkHeaderField;

/* a walk over a packed header list */
typedef struct SkHeaderIterator
{
	const char *next;
	int			left;			/* headers not yet returned */
} SkHeaderIterator;

/* event_headers_begin - start a walk over count packed headers at packed */
static inline void
event_headers_begin(SkHeaderIterator *it, const char *packed, int count)
{
	it->next = packed;
	it->left = count;
}

/* event_headers_next - the next header into *field; false after the last */
static inline bool
event_headers_next(SkHeaderIterator *it, SkHeaderField *field)
{
	SkPackedHeader ph;

	if (it->left <= 0)
		return false;
	memcpy(&ph, it->next, sizeof(ph));
	field->name = it->next + sizeof(ph);
	field->name_len = ph.name_len;
	field->value = ph.value_len < 0 ? NULL : field->name + ph.name_len + 1;
	field->value_len = Max(ph.value_len, 0);
	it->next = field->name + ph.name_len + 1 + field->value_len;
	it->left--;
	return true;
}

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
	bool		never_dropped;	/* waits for queue room whatever the overflow policy */
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

/* event_length - bytes of a packed event, its header included */
static inline uint32
event_length(const char *packed)
{
	return ((const SkEventHeader *) packed)->length;
}

extern void event_append_header(StringInfo out, const char *name, uint32 name_len,
								const char *value, int32 value_len);
extern bool event_has_header(const char *packed, int count, const char *name);
extern uint32 event_check_packed(const char *packed, uint64 avail);
extern uint64 event_block_delta(const char *packed);
extern void event_reset_state(char *packed, uint64 block_delta);
extern void event_adopt_decoded(char *packed, int64 event_id, uint64 block_delta);
extern char *event_upgrade_v1(const char *events, uint64 bytes, uint32 nevents,
							  uint64 *upgraded_bytes);

/* event_min_size - the fewest bytes a packed event takes (0.2.0's: v1) */
static inline uint64
event_min_size(bool v1)
{
	return v1 ? SK_EVENT_HEADER_V1_SIZE : sizeof(SkEventHeader);
}

/*
 * The state of an event in the queue, at a ring offset.  Flags, generation
 * and refusal are written by the worker only (see sender.c).
 */
#define EVENT_RING_FIELD(off, type, field) \
	((type *) ring_at((off) + offsetof(SkEventHeader, field)))

/* event_ring_length - bytes of the event at off, its header included */
static inline uint32
event_ring_length(uint64 off)
{
	return *EVENT_RING_FIELD(off, uint32, length);
}

/* event_ring_flags - the SK_EVENT_* flags of the event at off */
static inline uint32
event_ring_flags(uint64 off)
{
	return *EVENT_RING_FIELD(off, uint32, flags);
}

/* event_ring_add_flags - the worker sets flags on the event at off */
static inline void
event_ring_add_flags(uint64 off, uint32 flags)
{
	*EVENT_RING_FIELD(off, uint32, flags) |= flags;
}

/* event_ring_id - the id of the event at off */
static inline int64
event_ring_id(uint64 off)
{
	return *EVENT_RING_FIELD(off, int64, event_id);
}

/* event_ring_block - the offset of the block holding the event at off */
static inline uint64
event_ring_block(uint64 off)
{
	return off - *EVENT_RING_FIELD(off, uint64, block_delta);
}

/* event_ring_set_sent - the event at off is held by producer generation */
static inline void
event_ring_set_sent(uint64 off, uint32 generation)
{
	*EVENT_RING_FIELD(off, uint32, sent_generation) = generation;
}

extern void event_ring_refuse(uint64 off, int error);
extern int	event_ring_refusal_error(uint64 off);
extern void event_ring_finish(uint64 off, uint32 flag);
extern uint32 event_ring_read_header(uint64 off, SkEventHeader *header);
extern void event_ring_topic(uint64 off, char *topic);
extern uint64 event_block_unfinished(uint64 block_off, uint32 nevents);

#endif							/* STREAMKAFKA_EVENT_H */
