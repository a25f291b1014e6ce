/*
 * testconsume.c
 *		kafka_test_consume(): for tests only, read back every message of a
 *		topic from the cluster the worker publishes to (the embedded mock
 *		cluster too), as a consumer sees them: partition, offset, the key's,
 *		value's and headers' exact bytes.  So the regression suite checks
 *		what Kafka received, not only what the queue held.
 *
 * The consumer lives in the calling backend for the call only: it reads each
 * partition from its beginning to its end (partition EOF) or until the
 * timeout, is closed, and only then are the rows built.  librdkafka's
 * threads make no PostgreSQL calls; its messages are copied in this thread.
 * Superuser only (the function is also revoked from PUBLIC).
 */
#include "postgres.h"


#include <librdkafka/rdkafka.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "kafkaconf.h"
#include "metrics.h"
#include "settings.h"
#include "streamkafka.h"

#define CONSUME_POLL_MS		100

/* one message as read, copied out of librdkafka's memory */
typedef struct ConsumedMessage
{
	int32		partition;
	int64		offset;
	bytea	   *key;			/* NULL: no key */
	bytea	   *value;			/* NULL: null value */
	int			nheaders;
	char	  **header_names;
	bytea	  **header_values;	/* an element NULL: null value */
} ConsumedMessage;

/* a bytea copy of len bytes at data; NULL for a NULL pointer */
static bytea *
copy_bytes(const void *data, size_t len)
{
	bytea	   *copy;

	if (data == NULL)
		return NULL;
	copy = palloc(VARHDRSZ + len);
	SET_VARSIZE(copy, VARHDRSZ + len);
	memcpy(VARDATA(copy), data, len);
	return copy;
}

/* copy the message msg into out */
static void
consume_copy(const rd_kafka_message_t *msg, ConsumedMessage *out)
{
	rd_kafka_headers_t *headers = NULL;

	out->partition = msg->partition;
	out->offset = msg->offset;
	out->key = copy_bytes(msg->key, msg->key_len);
	out->value = copy_bytes(msg->payload, msg->len);
	out->nheaders = 0;
	if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	out->nheaders = (int) rd_kafka_header_cnt(headers);
	out->header_names = palloc(sizeof(char *) * Max(out->nheaders, 1));
	out->header_values = palloc(sizeof(bytea *) * Max(out->nheaders, 1));
	for (int i = 0; i < out->nheaders; i++)
	{
		const char *name;
		const void *value;
		size_t		size;

		rd_kafka_header_get_all(headers, i, &name, &value, &size);
		out->header_names[i] = pstrdup(name);
		out->header_values[i] = copy_bytes(value, size);
	}
}

/*
 * the consumer for topic, assigned every partition from its beginning (not
 * inlined into consume_all's PG_TRY)
 */
static pg_noinline rd_kafka_t *
consume_start(const char *topic, int *npartitions)
{
	SkStatsSnapshot snap;
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	const rd_kafka_metadata_t *metadata = NULL;
	rd_kafka_topic_partition_list_t *assignment;
	rd_kafka_resp_err_t err;

	metrics_snapshot(&snap);
	if (!snap.producer_ready || snap.bootstrap[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the streamkafka producer is not running"),
				 errhint("Wait until kafka_health() reports producer_ready.")));
	conf = kafkaconf_client(snap.bootstrap, errstr, sizeof(errstr));
	if (conf == NULL ||
		rd_kafka_conf_set(conf, "group.id", "streamkafka-test-consume", errstr,
						  sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
						  sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
						  sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		if (conf != NULL)
			rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not configure a Kafka consumer: %s", errstr)));
	}
	rk = kafkaconf_new_handle(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not create a Kafka consumer: %s", errstr)));
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	err = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
	rd_kafka_topic_destroy(rkt);
	*npartitions = 0;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topic_cnt == 1 &&
		metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
		*npartitions = metadata->topics[0].partition_cnt;
	if (metadata != NULL)
		rd_kafka_metadata_destroy(metadata);
	assignment = rd_kafka_topic_partition_list_new(Max(*npartitions, 1));
	for (int p = 0; p < *npartitions; p++)
		rd_kafka_topic_partition_list_add(assignment, topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	if (*npartitions > 0)
		rd_kafka_assign(rk, assignment);
	rd_kafka_topic_partition_list_destroy(assignment);
	return rk;
}

/*
 * consume_all - read every partition to its end or until timeout_ms; the
 * messages into *messages, their count returned.  The consumer is destroyed
 * here, also when an ERROR (Ctrl-C, out of memory) leaves.
 */
static int
consume_all(const char *topic, int timeout_ms, ConsumedMessage **messages)
{
	int			npartitions;
	rd_kafka_t *rk = consume_start(topic, &npartitions);
	rd_kafka_message_t *volatile msg = NULL;
	int			count = 0;
	int			capacity = 64;
	char		error[512] = "";
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	*messages = palloc(sizeof(ConsumedMessage) * capacity);
	PG_TRY();
	{
		bool	   *at_end = palloc0(sizeof(bool) * Max(npartitions, 1));
		int			ends = 0;

		while (ends < npartitions && error[0] == '\0' &&
			   GetCurrentTimestamp() < deadline)
		{
			CHECK_FOR_INTERRUPTS();
			msg = rd_kafka_consumer_poll(rk, CONSUME_POLL_MS);
			if (msg == NULL)
				continue;
			if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			{
				if (msg->partition >= 0 && msg->partition < npartitions &&
					!at_end[msg->partition])
				{
					at_end[msg->partition] = true;
					ends++;
				}
			}
			else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
				strlcpy(error, rd_kafka_message_errstr(msg), sizeof(error));
			else
			{
				if (count == capacity)
				{
					capacity *= 2;
					*messages = repalloc(*messages, sizeof(ConsumedMessage) * capacity);
				}
				consume_copy(msg, &(*messages)[count++]);
			}
			rd_kafka_message_destroy(msg);
			msg = NULL;
		}
	}
	PG_FINALLY();
	{
		if (msg != NULL)
			rd_kafka_message_destroy(msg);
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	PG_END_TRY();
	if (error[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not consume topic \"%s\": %s", topic, error)));
	return count;
}

/* an array of the message's header names (text) or values (bytea) */
static Datum
header_array(const ConsumedMessage *m, bool names)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(m->nheaders, 1));
	bool	   *nulls = palloc0(sizeof(bool) * Max(m->nheaders, 1));
	int			dims[1] = {m->nheaders};
	int			lbs[1] = {1};
	Oid			type = names ? TEXTOID : BYTEAOID;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	for (int i = 0; i < m->nheaders; i++)
	{
		if (names)
			elems[i] = CStringGetTextDatum(m->header_names[i]);
		else
		{
			nulls[i] = m->header_values[i] == NULL;
			elems[i] = PointerGetDatum(m->header_values[i]);
		}
	}
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	if (m->nheaders == 0)
		return PointerGetDatum(construct_empty_array(type));
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

PG_FUNCTION_INFO_V1(streamkafka_test_consume);

/*
 * streamkafka_test_consume - kafka_test_consume(topic, timeout_ms): every
 * message of the topic, in partition and offset order
 */
Datum
streamkafka_test_consume(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ConsumedMessage *messages;
	int			count;

	streamkafka_require_preload();
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for kafka_test_consume"),
				 errdetail("It reads any topic with the worker's credentials; it is for tests."),
				 errhint("Run it as a superuser, on a test server.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_GETARG_INT32(1) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kafka_test_consume needs a topic and a positive timeout"),
				 errhint("For example kafka_test_consume('my.topic', 10000).")));
	count = consume_all(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_INT32(1), &messages);
	SK_InitMaterializedSRF(fcinfo);
	for (int i = 0; i < count; i++)
	{
		ConsumedMessage *m = &messages[i];
		Datum		values[6];
		bool		nulls[6] = {0};

		values[0] = Int32GetDatum(m->partition);
		values[1] = Int64GetDatum(m->offset);
		values[2] = PointerGetDatum(m->key);
		nulls[2] = m->key == NULL;
		values[3] = PointerGetDatum(m->value);
		nulls[3] = m->value == NULL;
		values[4] = header_array(m, true);
		values[5] = header_array(m, false);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
