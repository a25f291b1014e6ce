/*
 * event.c
 *		Checks and packs one event: topic names, headers given as jsonb, and
 *		the byte layout an event has in the queue.  The only module that
 *		knows that layout: the state of an event in the queue is read and
 *		changed through the event_ring_* functions (inline ones in event.h),
 *		packed header lists are walked with event_headers_next().
 *
 * The checks run in the calling backend before anything is reserved, so bad
 * input leaves nothing behind.  The topic rules are in parse.c (fuzzed).
 */
#include "postgres.h"

#include "event.h"
#include "parse.h"
#include "ring.h"

#define EVENT_TOPIC_HINT \
	"Kafka topic names use ASCII letters, digits, \".\", \"_\" and \"-\", up to 249 characters."

/*
 * event_check_topic - ERROR unless topic is a legal Kafka topic name
 */
void
event_check_topic(const char *topic, int len)
{
	const char *problem = parse_topic_problem(topic, len);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka topic name \"%s%s\"",
						pnstrdup(topic, Min(len, 64)), len > 64 ? "..." : ""),
				 errdetail("%s", problem),
				 errhint(EVENT_TOPIC_HINT)));
}

static void
headers_error(const char *detail, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid Kafka headers"),
			 name ? errdetail(detail, name) : errdetail("%s", detail),
			 errhint("Pass headers as a JSON object whose values are strings or null, "
					 "or arrays of them to repeat a header, e.g. '{\"source\": \"billing\"}'.")));
}

/* append one header to the packed form */
static void
headers_append(StringInfo out, const JsonbValue *name, const JsonbValue *value,
			   uint16 *count)
{
	if (value->type != jbvString && value->type != jbvNull)
		headers_error("The value of header \"%s\" is not a string or null.",
					  pnstrdup(name->val.string.val, name->val.string.len));
	if (*count == PG_UINT16_MAX)
		headers_error("An event can carry at most 65535 headers.", NULL);

	event_append_header(out, name->val.string.val, name->val.string.len,
						value->val.string.val,
						value->type == jbvNull ? -1 : value->val.string.len);
	(*count)++;
}

/*
 * event_pack_headers - check headers (a JSON object of strings, nulls, or
 * arrays of them) and append their packed form to out
 */
void
event_pack_headers(Jsonb *headers, StringInfo out, uint16 *count)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbValue	name = {0};
	bool		in_array = false;

	*count = 0;
	if (!JB_ROOT_IS_OBJECT(headers))
		headers_error("The headers are not a JSON object.", NULL);

	it = JsonbIteratorInit(&headers->root);
	tok = JsonbIteratorNext(&it, &v, false);	/* WJB_BEGIN_OBJECT */
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_KEY:
				name = v;
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				headers_append(out, &name, &v, count);
				break;
			case WJB_BEGIN_ARRAY:
				if (in_array)
					headers_error("Header \"%s\" holds a nested array.",
								  pnstrdup(name.val.string.val, name.val.string.len));
				in_array = true;
				break;
			case WJB_END_ARRAY:
				in_array = false;
				break;
			case WJB_BEGIN_OBJECT:
				headers_error("Header \"%s\" holds a JSON object.",
							  pnstrdup(name.val.string.val, name.val.string.len));
				break;
			default:
				break;
		}
	}
}

/*
 * event_packed_size - bytes the event takes in the queue (a multiple of 8)
 */
uint64
event_packed_size(const SkEvent *event)
{
	uint64		size = sizeof(SkEventHeader);

	size += event->topic_len + 1;
	size += Max(event->key_len, 0);
	size += Max(event->value_len, 0);
	size += event->headers_len;
	return TYPEALIGN64(8, size);
}

/* where event_pack writes: a local buffer, or the ring at an offset */
typedef struct EventSink
{
	char	   *local;
	uint64		ring_off;
} EventSink;

static inline void
sink_put(EventSink *sink, const void *src, uint64 len)
{
	if (len == 0)
		return;
	if (sink->local)
	{
		memcpy(sink->local, src, len);
		sink->local += len;
	}
	else
	{
		ring_write(sink->ring_off, src, len);
		sink->ring_off += len;
	}
}

static void
event_pack_to(EventSink *sink, const SkEvent *event, int64 event_id,
			  uint64 block_delta)
{
	SkEventHeader header;

	header.length = (uint32) event_packed_size(event);
	header.flags = ((uint32) event->attempts << SK_EVENT_ATTEMPTS_SHIFT) |
		(event->retry_id != 0 ? SK_EVENT_RETRY : 0);
	header.event_id = event_id;
	header.block_delta = block_delta;
	header.partition = event->partition;
	header.key_len = event->key_len;
	header.value_len = event->value_len;
	header.headers_len = event->headers_len;
	header.topic_len = (uint16) event->topic_len;
	header.nheaders = event->nheaders;
	header.sent_generation = 0;
	header.refusal_error = 0;
	header.unused = 0;

	sink_put(sink, &header, sizeof(header));
	sink_put(sink, event->topic, event->topic_len);
	sink_put(sink, "", 1);
	sink_put(sink, event->key, Max(event->key_len, 0));
	sink_put(sink, event->value, Max(event->value_len, 0));
	sink_put(sink, event->headers, event->headers_len);
}

/*
 * event_pack - write the event at dst, which has event_packed_size() bytes
 */
void
event_pack(char *dst, const SkEvent *event, int64 event_id, uint64 block_delta)
{
	EventSink	sink = {dst, 0};

	event_pack_to(&sink, event, event_id, block_delta);
}

/*
 * event_pack_ring - write the event into reserved ring space at off
 */
void
event_pack_ring(uint64 off, const SkEvent *event, int64 event_id,
				uint64 block_delta)
{
	EventSink	sink = {NULL, off};

	event_pack_to(&sink, event, event_id, block_delta);
}

/*
 * event_view - find the parts of a packed event
 */
void
event_view(const char *packed, SkEventView *view)
{
	const SkEventHeader *header = (const SkEventHeader *) packed;

	view->header = header;
	view->topic = packed + sizeof(SkEventHeader);
	view->key = view->topic + header->topic_len + 1;
	view->value = view->key + Max(header->key_len, 0);
	view->headers = view->value + Max(header->value_len, 0);
}

/*
 * event_append_header - append one header (value_len -1: a null value) to a
 * packed header list
 */
void
event_append_header(StringInfo out, const char *name, uint32 name_len,
					const char *value, int32 value_len)
{
	SkPackedHeader ph;

	ph.name_len = name_len;
	ph.value_len = value_len;
	appendBinaryStringInfo(out, (const char *) &ph, sizeof(ph));
	appendBinaryStringInfo(out, name, name_len);
	appendStringInfoChar(out, '\0');
	if (value_len > 0)
		appendBinaryStringInfo(out, value, value_len);
}

/*
 * event_has_header - does a packed header list have a header called name?
 */
bool
event_has_header(const char *packed, int count, const char *name)
{
	SkHeaderIterator it;
	SkHeaderField field;

	event_headers_begin(&it, packed, count);
	while (event_headers_next(&it, &field))
	{
		if (strcmp(field.name, name) == 0)
			return true;
	}
	return false;
}

/* are count packed headers exactly len bytes, each name NUL-terminated? */
static bool
headers_valid(const char *p, uint64 len, int count)
{
	uint64		pos = 0;

	for (int i = 0; i < count; i++)
	{
		SkPackedHeader ph;

		if (len - pos < sizeof(ph))
			return false;
		memcpy(&ph, p + pos, sizeof(ph));
		pos += sizeof(ph);
		if (ph.value_len < -1 || len - pos < (uint64) ph.name_len + 1 ||
			p[pos + ph.name_len] != '\0')
			return false;
		pos += (uint64) ph.name_len + 1;
		if (len - pos < (uint64) Max(ph.value_len, 0))
			return false;
		pos += Max(ph.value_len, 0);
	}
	return pos == len;
}

/*
 * event_check_packed - the length of the packed event at packed (avail bytes
 * there) if it is well-formed, else 0; for events read from a file
 */
uint32
event_check_packed(const char *packed, uint64 avail)
{
	SkEventHeader h;
	uint64		topic_end;
	uint64		need;

	if (avail < sizeof(SkEventHeader))
		return 0;
	memcpy(&h, packed, sizeof(h));
	if (h.length % 8 != 0 || h.length < sizeof(SkEventHeader) || h.length > avail ||
		h.topic_len == 0 || h.topic_len > SK_TOPIC_MAX_LEN || h.key_len < -1 ||
		h.value_len < -1 || h.partition < -1)
		return 0;
	topic_end = sizeof(SkEventHeader) + h.topic_len;
	need = topic_end + 1 + Max(h.key_len, 0) + Max(h.value_len, 0) + h.headers_len;
	if (need > h.length || packed[topic_end] != '\0' ||
		!headers_valid(packed + need - h.headers_len, h.headers_len, h.nheaders))
		return 0;
	return h.length;
}

/*
 * event_block_delta - a packed event's distance from its block's start
 */
uint64
event_block_delta(const char *packed)
{
	SkEventHeader h;

	memcpy(&h, packed, sizeof(h));
	return h.block_delta;
}

/*
 * event_reset_state - clear the worker's state of a packed event about to be
 * queued again, block_delta bytes after its block's start
 */
void
event_reset_state(char *packed, uint64 block_delta)
{
	SkEventHeader *h = (SkEventHeader *) packed;

	h->flags &= ~SK_EVENT_WORKER_FLAGS;
	h->sent_generation = 0;
	h->refusal_error = 0;
	h->block_delta = block_delta;
}

/*
 * event_adopt_decoded - a packed event read back from the WAL, about to be
 * queued block_delta bytes after its block's start: its id is event_id
 * unless it has its own (a dead letter queued again)
 */
void
event_adopt_decoded(char *packed, int64 event_id, uint64 block_delta)
{
	SkEventHeader *h = (SkEventHeader *) packed;

	event_reset_state(packed, block_delta);
	if (h->event_id == 0)
		h->event_id = event_id;
}

StaticAssertDecl(offsetof(SkEventHeader, refusal_error) == SK_EVENT_HEADER_V1_SIZE,
				 "0.2.0's event header is a prefix of this one");

/*
 * event_upgrade_v1 - nevents events with 0.2.0's header (bytes long) in this
 * version's layout: a palloc'd copy, its size in *upgraded_bytes; NULL if
 * the events do not fill bytes.  Each block_delta keeps its distance from
 * the first event's.
 */
char *
event_upgrade_v1(const char *events, uint64 bytes, uint32 nevents, uint64 *upgraded_bytes)
{
	uint64		growth = sizeof(SkEventHeader) - SK_EVENT_HEADER_V1_SIZE;
	char	   *upgraded = palloc_extended(bytes + nevents * growth, MCXT_ALLOC_HUGE);
	uint64		from = 0;
	uint64		to = 0;

	for (uint32 i = 0; i < nevents; i++)
	{
		SkEventHeader h = {0};

		if (bytes - from < SK_EVENT_HEADER_V1_SIZE)
			break;
		memcpy(&h, events + from, SK_EVENT_HEADER_V1_SIZE);
		if (h.length % 8 != 0 || h.length < SK_EVENT_HEADER_V1_SIZE || h.length > bytes - from)
			break;
		memcpy(upgraded + to + sizeof(h), events + from + SK_EVENT_HEADER_V1_SIZE,
			   h.length - SK_EVENT_HEADER_V1_SIZE);
		from += h.length;
		h.length += growth;
		h.block_delta += growth * i;
		memcpy(upgraded + to, &h, sizeof(h));
		to += h.length;
	}
	if (from != bytes || to != bytes + nevents * growth)
	{
		pfree(upgraded);
		return NULL;
	}
	*upgraded_bytes = to;
	return upgraded;
}

/*
 * event_ring_read_header - copy the header of the event at off into *header;
 * returns the event's length
 */
uint32
event_ring_read_header(uint64 off, SkEventHeader *header)
{
	ring_read(off, header, sizeof(*header));
	return header->length;
}

/*
 * event_ring_topic - copy the topic of the event at off, NUL terminated, to
 * topic (SK_TOPIC_MAX_LEN + 1 bytes)
 */
void
event_ring_topic(uint64 off, char *topic)
{
	SkEventHeader header;

	ring_read(off, &header, sizeof(header));
	ring_read(off + sizeof(header), topic, header.topic_len);
	topic[header.topic_len] = '\0';
}

/*
 * event_ring_refuse - the worker: Kafka refused the event at off with error
 * (an rd_kafka_resp_err_t); it waits for its dead-letter row
 */
void
event_ring_refuse(uint64 off, int error)
{
	*EVENT_RING_FIELD(off, uint32, sent_generation) = 0;
	*EVENT_RING_FIELD(off, int32, refusal_error) = error;
	event_ring_add_flags(off, SK_EVENT_REFUSED);
}

/*
 * event_ring_refusal_error - the Kafka error that refused the event at off
 */
int
event_ring_refusal_error(uint64 off)
{
	return *EVENT_RING_FIELD(off, int32, refusal_error);
}

/*
 * event_ring_finish - the worker marks the event at off finished with flag
 * (SK_EVENT_DELIVERED, _DROPPED or _DEAD_LETTERED); the first time, the
 * queue counts it out of its unfinished events
 */
void
event_ring_finish(uint64 off, uint32 flag)
{
	Assert(flag & SK_EVENT_FINISHED);
	if (!(event_ring_flags(off) & SK_EVENT_FINISHED))
		ring_count_finished(1);
	event_ring_add_flags(off, flag);
}

/*
 * event_block_unfinished - how many of the nevents events of the block at
 * block_off are not finished (ring_recover's callback)
 */
uint64
event_block_unfinished(uint64 block_off, uint32 nevents)
{
	uint64		event_off = block_off + SK_BLOCK_HEADER_SIZE;
	uint64		unfinished = 0;

	for (uint32 i = 0; i < nevents; i++)
	{
		unfinished += !(event_ring_flags(event_off) & SK_EVENT_FINISHED);
		event_off += event_ring_length(event_off);
	}
	return unfinished;
}
