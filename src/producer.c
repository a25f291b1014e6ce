/*
 * producer.c
 *		The worker's librdkafka producer: built from the streamkafka.* settings
 *		(kafkaconf.c), fed one event at a time by sender.c, served by
 *		producer_poll(), which hands delivery reports to the SkProducerHandler
 *		given to producer_start() (sender.c's).
 *
 * Thread rules (librdkafka runs its own threads inside the worker process,
 * and PostgreSQL code is not thread-safe):
 * - Signals are blocked while rd_kafka_new() starts librdkafka's threads, so
 *   they inherit a full mask and SIGTERM/SIGHUP reach the worker's own thread.
 * - No callback runs on a librdkafka thread: delivery reports, errors,
 *   statistics and (with log.queue) log lines all arrive through the main
 *   queue and are served by rd_kafka_poll() in the worker's thread.
 * - Callbacks are plain C: they record into shared memory or local buffers
 *   and never call elog or palloc; producer_poll() emits logs and parses
 *   statistics after rd_kafka_poll() has returned.
 * - The main queue signals the worker's wake pipe when it becomes non-empty,
 *   so the worker sleeps in WaitEventSetWait instead of polling on a timer.
 *
 * Payloads are handed over without a copy: they point into the shared-memory
 * queue, which keeps every event until its delivery report arrives.
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "breaker.h"
#include "brokers.h"
#include "kafkaconf.h"
#include "metrics.h"
#include "mockfault.h"
#include "producer.h"
#include "rdstats.h"
#include "settings.h"
#include "topicstats.h"

#define PRODUCER_LOG_LINES	64
#define PRODUCER_LOG_LEN	512

typedef struct TopicEntry
{
	char		name[SK_TOPIC_MAX_LEN + 1];
	rd_kafka_topic_t *rkt;		/* its opaque points back to this entry */
	int			stats_slot;		/* in topicstats.c */
} TopicEntry;

static rd_kafka_t *rk = NULL;
static HTAB *topics = NULL;
static TopicEntry *last_topic = NULL;
static char config_fingerprint[16384];	/* settings the producer was built from */
static char failed_fingerprint[16384];	/* settings last rejected by librdkafka */
static bool fatal_error = false;
static const SkProducerHandler *handler = NULL;	/* given to producer_start */

/*
 * The last error that said why brokers cannot be used (authentication, TLS,
 * name resolution), until an event is delivered or the producer restarts.
 * librdkafka 2.x suppresses repeats of that error but reports "all brokers
 * down" on every retry: the consequence must not hide the cause in
 * kafka_health()'s last_error.
 */
static int	broker_failure_cause = RD_KAFKA_RESP_ERR_NO_ERROR;

/* log lines and statistics recorded by callbacks, handled after polling */
static char log_lines[PRODUCER_LOG_LINES][PRODUCER_LOG_LEN];
static int	log_count = 0;
static int	log_dropped = 0;
static char *pending_stats = NULL;

static void
log_record(const char *fmt,...) pg_attribute_printf(1, 2);

static void
log_record(const char *fmt,...)
{
	va_list		ap;

	if (log_count == PRODUCER_LOG_LINES)
	{
		log_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(log_lines[log_count++], PRODUCER_LOG_LEN, fmt, ap);
	va_end(ap);
}

static void
on_log(const rd_kafka_t *handle pg_attribute_unused(), int level pg_attribute_unused(),
	   const char *facility, const char *message)
{
	log_record("librdkafka %s: %s", facility, message);
}

static void
on_error(rd_kafka_t *handle pg_attribute_unused(), int err, const char *reason,
		 void *opaque pg_attribute_unused())
{
	char		text[PRODUCER_LOG_LEN];

	snprintf(text, sizeof(text), "%s: %s", rd_kafka_err2name(err), reason);
	if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
		broker_failure_cause == RD_KAFKA_RESP_ERR_NO_ERROR)
		metrics_note_error(text);
	brokers_note_error(reason);
	if (err == RD_KAFKA_RESP_ERR__FATAL)
		fatal_error = true;
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__RESOLVE ||
		err == RD_KAFKA_RESP_ERR__SSL)
		broker_failure_cause = err;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		breaker_brokers_down(text);
	else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__RESOLVE ||
			 err == RD_KAFKA_RESP_ERR__SSL)
		breaker_failure(text);
	log_record("librdkafka error %s", text);
}

static int
on_stats(rd_kafka_t *handle pg_attribute_unused(), char *json, size_t json_len,
		 void *opaque pg_attribute_unused())
{
	free(pending_stats);
	pending_stats = strndup(json, json_len);
	return 0;					/* librdkafka frees json */
}

static void
on_delivery(rd_kafka_t *handle pg_attribute_unused(), const rd_kafka_message_t *msg,
			void *opaque pg_attribute_unused())
{
	TopicEntry *topic = rd_kafka_topic_opaque(msg->rkt);

	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		broker_failure_cause = RD_KAFKA_RESP_ERR_NO_ERROR;
	handler->on_delivery((uint64) (uintptr_t) msg->_private, msg->err, msg->len,
						 topic->stats_slot);
}

/*
 * producer_conf - rd_kafka_conf_t from the settings with the producer's
 * callbacks, or NULL with errstr filled
 */
static rd_kafka_conf_t *
producer_conf(char *errstr, size_t errlen)
{
	rd_kafka_conf_t *conf = kafkaconf_producer(errstr, errlen);

	if (conf == NULL)
		return NULL;
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_stats_cb(conf, on_stats);
	rd_kafka_conf_set_log_cb(conf, on_log);
	return conf;
}

/*
 * producer_start - build a producer from the current settings and make it
 * the worker's, after stopping the previous one (waiting up to
 * old_flush_timeout_ms for its acknowledgements); its delivery reports go to
 * events.  If librdkafka rejects the settings, logs why, records it for
 * kafka_health(), keeps the previous producer (if any) and returns false.
 */
bool
producer_start(int wake_fd, int old_flush_timeout_ms, const SkProducerHandler *events)
{
	char		errstr[512];
	char		fingerprint[sizeof(config_fingerprint)];
	rd_kafka_conf_t *conf;
	rd_kafka_t *handle = NULL;
	rd_kafka_queue_t *mainq;
	HASHCTL		ctl = {0};
	const char *bootstrap = sk_brokers;

	kafkaconf_fingerprint(fingerprint, sizeof(fingerprint));
	conf = producer_conf(errstr, sizeof(errstr));
	if (conf != NULL)
		handle = kafkaconf_new_handle(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (handle == NULL)
	{
		ereport(LOG,
				(errmsg("streamkafka worker could not create a Kafka producer: %s", errstr),
				 rk ? errhint("The previous producer keeps running with the previous "
							  "settings; fix the streamkafka.* settings and reload.")
				 : errhint("Fix the streamkafka.* settings and reload; "
						   "events wait in the queue.")));
		metrics_note_error(errstr);
		strlcpy(failed_fingerprint, fingerprint, sizeof(failed_fingerprint));
		if (rk == NULL)
			metrics_producer_state(false, settings_mock_mode(), "");
		return false;
	}

	producer_stop(old_flush_timeout_ms);
	rk = handle;
	handler = events;
	strlcpy(config_fingerprint, fingerprint, sizeof(config_fingerprint));
	failed_fingerprint[0] = '\0';
	fatal_error = false;
	broker_failure_cause = RD_KAFKA_RESP_ERR_NO_ERROR;

	rd_kafka_set_log_queue(rk, NULL);
	mainq = rd_kafka_queue_get_main(rk);
	rd_kafka_queue_io_event_enable(mainq, wake_fd, "1", 1);
	rd_kafka_queue_destroy(mainq);

	ctl.keysize = SK_TOPIC_MAX_LEN + 1;
	ctl.entrysize = sizeof(TopicEntry);
	topics = hash_create("streamkafka topics", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	last_topic = NULL;

	if (settings_mock_mode())
	{
		bootstrap = rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(rk));
		ereport(LOG,
				(errmsg("streamkafka is using librdkafka's embedded mock cluster at %s", bootstrap),
				 errdetail("streamkafka.brokers is empty: events go to an in-memory cluster "
						   "inside the worker and are gone when it stops.")));
	}
	else
		ereport(LOG, (errmsg("streamkafka producer started for brokers %s", bootstrap)));
	metrics_producer_state(true, settings_mock_mode(), bootstrap);
	return true;
}

/*
 * producer_apply_mock_faults - apply what kafka_mock_fault() asked for
 */
void
producer_apply_mock_faults(void)
{
	if (rk != NULL && settings_mock_mode())
		mockfault_apply(rk);
}

bool
producer_running(void)
{
	return rk != NULL;
}

/*
 * producer_failed - librdkafka raised a fatal error: the producer must be
 * replaced
 */
bool
producer_failed(void)
{
	return fatal_error;
}

/*
 * producer_settings_changed - do the settings (after a reload) ask for another
 * producer than the running one?  Settings librdkafka already refused once do
 * not count until they change again.
 */
bool
producer_settings_changed(void)
{
	char		now[sizeof(config_fingerprint)];

	kafkaconf_fingerprint(now, sizeof(now));
	return strcmp(now, config_fingerprint) != 0 && strcmp(now, failed_fingerprint) != 0;
}

static void
producer_emit_logs(void)
{
	for (int i = 0; i < log_count; i++)
		ereport(LOG, (errmsg_internal("streamkafka: %s", log_lines[i])));
	if (log_dropped > 0)
		ereport(LOG, (errmsg("streamkafka: %d librdkafka log lines were dropped", log_dropped)));
	log_count = 0;
	log_dropped = 0;
}

/*
 * producer_connect_any - with no broker connected, have librdkafka connect to
 * one.  It connects only to brokers it needs, and leaves one that closed an
 * idle connection, or restarted, unconnected until events wait: whether the
 * cluster is up would stay unknown, and an idle producer's brokers would
 * look down.  A metadata request that may not wait asks librdkafka to
 * connect to a broker it is not connected to, and returns at once.
 */
static void
producer_connect_any(void)
{
	const struct rd_kafka_metadata *metadata = NULL;

	if (rd_kafka_metadata(rk, 0, NULL, &metadata, 0) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		metadata != NULL)
		rd_kafka_metadata_destroy(metadata);
}

static void
producer_handle_stats(void)
{
	char	   *json = pending_stats;
	MemoryContext context = CurrentMemoryContext;

	if (json == NULL)
		return;
	pending_stats = NULL;
	PG_TRY();
	{
		if (!rdstats_process(json) && rk != NULL)
			producer_connect_any();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		FlushErrorState();
		ereport(LOG, (errmsg("streamkafka: could not read librdkafka statistics")));
	}
	PG_END_TRY();
	free(json);
}

/*
 * producer_poll - serve delivery reports, errors and statistics, then emit
 * the log lines they produced
 */
void
producer_poll(void)
{
	if (rk != NULL)
	{
		handler->poll_begins();
		rd_kafka_poll(rk, 0);
	}
	producer_emit_logs();
	producer_handle_stats();
}

static TopicEntry *
producer_topic(const char *name)
{
	bool		found;
	TopicEntry *entry;

	if (last_topic != NULL && strcmp(last_topic->name, name) == 0)
		return last_topic;
	entry = hash_search(topics, name, HASH_ENTER, &found);
	if (!found)
	{
		/* a copy of the settings' topic properties (the partitioner) */
		rd_kafka_topic_conf_t *conf = rd_kafka_default_topic_conf_dup(rk);

		rd_kafka_topic_conf_set_opaque(conf, entry);
		entry->rkt = rd_kafka_topic_new(rk, name, conf);
		entry->stats_slot = topicstats_slot(name);
	}
	last_topic = entry;
	return entry;
}

/*
 * producer_stats_reset - kafka_stats_reset() emptied the topic statistics:
 * look the slots up again
 */
void
producer_stats_reset(void)
{
	HASH_SEQ_STATUS seq;
	TopicEntry *entry;

	if (topics == NULL)
		return;
	hash_seq_init(&seq, topics);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->stats_slot = topicstats_slot(entry->name);
}

/* append packed headers to vus, skipping names already in "unless" */
static int
add_headers(rd_kafka_vu_t *vus, int n, const char *packed, int count,
			const char *unless, int unless_count)
{
	SkHeaderIterator it;
	SkHeaderField field;

	event_headers_begin(&it, packed, count);
	while (event_headers_next(&it, &field))
	{
		if (unless == NULL || !event_has_header(unless, unless_count, field.name))
		{
			vus[n].vtype = RD_KAFKA_VTYPE_HEADER;
			vus[n].u.header.name = field.name;
			vus[n].u.header.val = field.value;
			vus[n++].u.header.size = field.value_len;
		}
	}
	return n;
}

/*
 * producer_send - hand one event to librdkafka.  The value is used in place
 * unless copy_value (the event wraps around the ring's end and was copied).
 * *stats_slot is set to the topic's statistics slot (topicstats.c).
 */
rd_kafka_resp_err_t
producer_send(const SkEventView *event, bool copy_value, uint64 opaque, int *stats_slot)
{
	TopicEntry *topic = producer_topic(event->topic);
	static rd_kafka_vu_t *vus = NULL;
	static int	max_vus = 0;
	const SkEventHeader *h = event->header;
	int			n = 0;
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;

	const SkPackedHeaders *defaults = sk_default_headers_packed;
	int			most = 7 + h->nheaders + (defaults ? defaults->count : 0);
	char		id_text[24];

	*stats_slot = topic->stats_slot;
	if (max_vus < most)
	{
		if (vus != NULL)
			pfree(vus);
		max_vus = most + 16;
		vus = MemoryContextAlloc(TopMemoryContext, max_vus * sizeof(rd_kafka_vu_t));
	}

	vus[n].vtype = RD_KAFKA_VTYPE_RKT;
	vus[n++].u.rkt = topic->rkt;
	vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
	vus[n++].u.i32 = h->partition < 0 ? RD_KAFKA_PARTITION_UA : h->partition;
	if (h->key_len >= 0)
	{
		vus[n].vtype = RD_KAFKA_VTYPE_KEY;
		vus[n].u.mem.ptr = (void *) event->key;
		vus[n++].u.mem.size = h->key_len;
	}
	vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vus[n].u.mem.ptr = h->value_len < 0 ? NULL : (void *) event->value;
	vus[n++].u.mem.size = Max(h->value_len, 0);
	vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vus[n++].u.i = copy_value ? RD_KAFKA_MSG_F_COPY : 0;
	vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vus[n++].u.ptr = (void *) (uintptr_t) opaque;
	n = add_headers(vus, n, event->headers, h->nheaders, NULL, 0);
	if (sk_id_header[0] != '\0' && !event_has_header(event->headers, h->nheaders, sk_id_header))
	{
		/* librdkafka copies header values: id_text need not outlive the call */
		vus[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vus[n].u.header.name = sk_id_header;
		vus[n].u.header.val = id_text;
		vus[n++].u.header.size = snprintf(id_text, sizeof(id_text), INT64_FORMAT, h->event_id);
	}
	if (defaults != NULL)
		n = add_headers(vus, n, defaults->data, defaults->count, event->headers, h->nheaders);

	error = rd_kafka_produceva(rk, vus, n);
	if (error == NULL)
		return RD_KAFKA_RESP_ERR_NO_ERROR;
	err = rd_kafka_error_code(error);
	if (err == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_error_is_fatal(error))
		fatal_error = true;
	rd_kafka_error_destroy(error);
	return err;
}

/*
 * producer_purge_queued - take back the events librdkafka has not put on the
 * wire yet; their delivery reports (purged) are served here
 */
void
producer_purge_queued(void)
{
	if (rk == NULL)
		return;
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
	handler->poll_begins();
	rd_kafka_poll(rk, 0);
}

/*
 * producer_stop - wait up to flush_timeout_ms for acknowledgements, purge the
 * rest (their events stay unfinished in the queue, to be sent again), and
 * destroy the producer
 */
void
producer_stop(int flush_timeout_ms)
{
	HASH_SEQ_STATUS seq;
	TopicEntry *entry;
	TimestampTz deadline;

	if (rk == NULL)
		return;

	handler->poll_begins();
	rd_kafka_flush(rk, flush_timeout_ms);
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
	while (rd_kafka_outq_len(rk) > 0 && GetCurrentTimestamp() < deadline)
		rd_kafka_poll(rk, 50);
	rd_kafka_poll(rk, 0);

	hash_seq_init(&seq, topics);
	while ((entry = hash_seq_search(&seq)) != NULL)
		rd_kafka_topic_destroy(entry->rkt);
	hash_destroy(topics);
	topics = NULL;
	last_topic = NULL;

	rd_kafka_destroy(rk);
	rk = NULL;
	producer_emit_logs();
	free(pending_stats);
	pending_stats = NULL;
	metrics_producer_state(false, settings_mock_mode(), "");
	brokers_clear();
}
