/*
 * event.c
 *		Checks and packs one event: topic names, headers given as jsonb, and
 *		the byte layout an event has in the queue.
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
	SkPackedHeader ph;

	if (value->type != jbvString && value->type != jbvNull)
		headers_error("The value of header \"%s\" is not a string or null.",
					  pnstrdup(name->val.string.val, name->val.string.len));
	if (*count == PG_UINT16_MAX)
		headers_error("An event can carry at most 65535 headers.", NULL);

	ph.name_len = name->val.string.len;
	ph.value_len = value->type == jbvNull ? -1 : value->val.string.len;
	appendBinaryStringInfo(out, (const char *) &ph, sizeof(ph));
	appendBinaryStringInfo(out, name->val.string.val, name->val.string.len);
	appendStringInfoChar(out, '\0');
	if (ph.value_len > 0)
		appendBinaryStringInfo(out, value->val.string.val, ph.value_len);
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
 * event_has_header - does a packed header list have a header called name?
 */
bool
event_has_header(const char *packed, int count, const char *name)
{
	for (int i = 0; i < count; i++)
	{
		SkPackedHeader ph;

		memcpy(&ph, packed, sizeof(ph));
		if (strcmp(packed + sizeof(ph), name) == 0)
			return true;
		packed += sizeof(ph) + ph.name_len + 1 + Max(ph.value_len, 0);
	}
	return false;
}
