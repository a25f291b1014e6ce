/*
 * publish.c
 *		kafka_publish(): checks the arguments, packs one event and hands it to
 *		the transaction's buffer (transactional, the default) or to the queue
 *		at once.  Never waits and never touches the network.  publish() is the
 *		part the table trigger shares.
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/proc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "compat.h"
#include "durable.h"
#include "enqueue.h"
#include "event.h"
#include "pending.h"
#include "publish.h"
#include "ring.h"
#include "settings.h"
#include "streamkafka.h"

/* the last topic name that passed the checks, to skip checking it again */
static char last_topic[SK_TOPIC_MAX_LEN + 1];
static int	last_topic_len = -1;
static uint32 last_topic_generation = 0;	/* of streamkafka.allowed_topics */

/* the topic with streamkafka.topic_prefix in front */
static char prefixed_topic[2 * SK_TOPIC_MAX_LEN + 1];

/* reused buffer for packed headers */
static StringInfo headers_buf = NULL;

static void
publish_check_topic(const char *topic, int len)
{
	if (len == last_topic_len && last_topic_generation == sk_allowed_topics_generation &&
		memcmp(topic, last_topic, len) == 0)
		return;
	event_check_topic(topic, len);
	if (!settings_topic_allowed(topic, len))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("publishing to Kafka topic \"%s\" is not allowed", pnstrdup(topic, len)),
				 errdetail("streamkafka.allowed_topics is \"%s\".", sk_allowed_topics),
				 errhint("A superuser can add the topic to streamkafka.allowed_topics.")));
	memcpy(last_topic, topic, len);
	last_topic_len = len;
	last_topic_generation = sk_allowed_topics_generation;
}

/* the topic name the event goes to: streamkafka.topic_prefix + topic */
static void
publish_prefix_topic(SkEvent *event)
{
	int			prefix_len = strlen(sk_topic_prefix);
	int			len = event->topic_len;

	/* a dead letter's topic already has the prefix it was published with */
	if (prefix_len > 0 && len > 0 && event->retry_id == 0)
	{
		len = Min(len, SK_TOPIC_MAX_LEN);
		memcpy(prefixed_topic, sk_topic_prefix, prefix_len);
		memcpy(prefixed_topic + prefix_len, event->topic, len);
		event->topic = prefixed_topic;
		event->topic_len = prefix_len + len;
	}
}

/* the checked topic name the event goes to */
static void
publish_topic(SkEvent *event)
{
	publish_prefix_topic(event);
	publish_check_topic(event->topic, event->topic_len);
}

/*
 * publish_check_context - ERROR in a parallel operation: a parallel worker's
 * transaction state (and the events in it) ends with the worker, so its
 * events would be lost; the leader refuses too, so the outcome does not
 * depend on which process ran the call
 */
static void
publish_check_context(void)
{
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot publish Kafka events during a parallel operation"),
				 errdetail("A function that publishes was called from a parallel query; "
						   "events queued by parallel workers would be lost."),
				 errhint("Declare functions that call kafka_publish PARALLEL UNSAFE.")));
}

/* ERROR if the event is larger than streamkafka.message_max_bytes */
static void
publish_check_size(const SkEvent *event)
{
	uint64		size = (uint64) Max(event->key_len, 0) + Max(event->value_len, 0) +
		event->headers_len;

	if (size > (uint64) sk_message_max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Kafka event too large"),
				 errdetail("Its key, value and headers take %llu bytes; "
						   "streamkafka.message_max_bytes is %d.",
						   (unsigned long long) size, sk_message_max_bytes),
				 errhint("Publish a smaller event, or raise streamkafka.message_max_bytes "
						 "(and the broker's and topic's max.message.bytes).")));
}

/*
 * publish_add_traceparent - with streamkafka.traceparent set, the event gets
 * a traceparent header (unless it has one), so consumers continue the trace
 */
static void
publish_add_traceparent(SkEvent *event)
{
	static StringInfo buf = NULL;

	if (sk_traceparent == NULL || sk_traceparent[0] == '\0' ||
		event_has_header(event->headers, event->nheaders, "traceparent"))
		return;
	if (buf == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		buf = makeStringInfo();
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(buf);
	if (event->headers_len > 0)
		appendBinaryStringInfo(buf, event->headers, event->headers_len);
	event_append_header(buf, "traceparent", strlen("traceparent"),
						sk_traceparent, strlen(sk_traceparent));
	event->headers = buf->data;
	event->headers_len = buf->len;
	event->nheaders++;
}

/* publish_prepare - check an event and complete it; returns its packed size */
static uint64
publish_prepare(SkEvent *event)
{
	publish_check_context();
	publish_topic(event);
	publish_add_traceparent(event);
	publish_check_size(event);
	return event_packed_size(event);
}

/*
 * publish_durability - streamkafka.durability as the current transaction's
 * first event saw it: a reload in the middle of a transaction does not split
 * its events between the queue and the WAL
 */
static int
publish_durability(void)
{
	static LocalTransactionId lxid = InvalidLocalTransactionId;
	static int	durability;

	if (MyProc->SK_lxid != lxid)
	{
		lxid = MyProc->SK_lxid;
		durability = sk_durability;
	}
	return durability;
}

/*
 * publish - check an event (topic as given, before the prefix) and queue it
 * with the transaction or at once (durable mode: write it into the WAL, and
 * keep a copy of a transactional one for kafka_pending_events); returns its
 * id
 */
int64
publish(SkEvent *event, bool transactional)
{
	uint64		size;
	int64		event_id;

	size = publish_prepare(event);
	if (publish_durability() == SK_DURABILITY_WAL)
	{
		event_id = durable_publish(event, size, transactional);
		if (transactional)
			pending_list(event, size, event_id);
		return event_id;
	}
	event_id = event->retry_id != 0 ? event->retry_id : ring_next_event_id();
	if (transactional)
		pending_add(event, size, event_id);
	else
		enqueue_now(event, size, event_id);
	return event_id;
}

/* arguments: topic, value, key, headers, partition, transactional */
static Datum
publish_event(FunctionCallInfo fcinfo, const char *value, int32 value_len)
{
	SkEvent		event = {0};
	bool		transactional = PG_ARGISNULL(5) || PG_GETARG_BOOL(5);
	text	   *topic;

	streamkafka_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("Kafka topic must not be null"),
				 errhint("Pass the topic name as the first argument of kafka_publish.")));
	topic = PG_GETARG_TEXT_PP(0);
	event.topic = VARDATA_ANY(topic);
	event.topic_len = VARSIZE_ANY_EXHDR(topic);

	event.value = value;
	event.value_len = value_len;
	event.key_len = -1;
	if (!PG_ARGISNULL(2))
	{
		text	   *key = PG_GETARG_TEXT_PP(2);

		event.key = VARDATA_ANY(key);
		event.key_len = VARSIZE_ANY_EXHDR(key);
	}

	if (!PG_ARGISNULL(3))
	{
		if (headers_buf == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			headers_buf = makeStringInfo();
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(headers_buf);
		event_pack_headers(PG_GETARG_JSONB_P(3), headers_buf, &event.nheaders);
		event.headers = headers_buf->data;
		event.headers_len = headers_buf->len;
	}

	event.partition = -1;
	if (!PG_ARGISNULL(4))
	{
		event.partition = PG_GETARG_INT32(4);
		if (event.partition < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("Kafka partition must not be negative, got %d", event.partition),
					 errhint("Pass NULL to let the partitioner choose.")));
	}

	PG_RETURN_INT64(publish(&event, transactional));
}

PG_FUNCTION_INFO_V1(streamkafka_publish);

/*
 * streamkafka_publish - kafka_publish() with a text or bytea value: both are
 * sent as their bytes
 */
Datum
streamkafka_publish(PG_FUNCTION_ARGS)
{
	bytea	   *value;

	if (PG_ARGISNULL(1))
		return publish_event(fcinfo, NULL, -1);
	value = PG_GETARG_BYTEA_PP(1);
	return publish_event(fcinfo, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

PG_FUNCTION_INFO_V1(streamkafka_publish_jsonb);

/*
 * streamkafka_publish_jsonb - kafka_publish() with a jsonb value, sent as its
 * text form
 */
Datum
streamkafka_publish_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *value;
	char	   *json;

	if (PG_ARGISNULL(1))
		return publish_event(fcinfo, NULL, -1);
	value = PG_GETARG_JSONB_P(1);
	json = JsonbToCString(NULL, &value->root, VARSIZE(value));
	return publish_event(fcinfo, json, strlen(json));
}

/*
 * publish_retry - queue a dead letter again at once, with its id
 * (retry_id); its topic is used as stored (the prefix is already in it) but
 * must still be allowed.  False if the overflow policy dropped it.
 */
bool
publish_retry(SkEvent *event)
{
	uint64		size = publish_prepare(event);

	/* in durable mode with the caller's transaction, which marks the row */
	if (publish_durability() == SK_DURABILITY_WAL)
		return durable_publish(event, size, true) != 0;
	return enqueue_now(event, size, event->retry_id);
}

PG_FUNCTION_INFO_V1(streamkafka_requeue_dead_letter);

/*
 * streamkafka_requeue_dead_letter - 0.2.0's kafka_requeue_dead_letter(id,
 * topic, key, value, headers, partition, attempts), which queued what its
 * caller passed under the id of any row: refused until the extension is
 * updated (0.3.0 reads the row itself; see deadletter.c)
 */
Datum
streamkafka_requeue_dead_letter(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("kafka_requeue_dead_letter with the event's fields is no longer supported"),
			 errdetail("It queued what its caller passed under any dead letter's id."),
			 errhint("Run ALTER EXTENSION streamkafka UPDATE; then kafka_retry_dead_letters() "
					 "and kafka_requeue_dead_letter(id) retry the rows as they are stored.")));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(streamkafka_topic_allowed);

/*
 * streamkafka_topic_allowed - kafka_topic_allowed(topic): would kafka_publish
 * accept the topic from the current role?  streamkafka.topic_prefix is put
 * in front, then streamkafka.allowed_topics decides.
 */
Datum
streamkafka_topic_allowed(PG_FUNCTION_ARGS)
{
	text	   *topic = PG_GETARG_TEXT_PP(0);
	SkEvent		event = {0};

	event.topic = VARDATA_ANY(topic);
	event.topic_len = VARSIZE_ANY_EXHDR(topic);
	publish_prefix_topic(&event);
	PG_RETURN_BOOL(settings_topic_allowed(event.topic, event.topic_len));
}
