/*
 * rdstats.c
 *		Reads the statistics JSON librdkafka emits every
 *		statistics.interval.ms: the brokers' connection states for
 *		kafka_health() and the circuit breaker, each broker's facts for
 *		kafka_brokers, and batch sizes.  Runs in the worker, after rd_kafka_poll() returned,
 *		never inside a librdkafka callback (it may raise an ERROR, which the
 *		caller catches).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "breaker.h"
#include "brokers.h"
#include "metrics.h"
#include "rdstats.h"
#include "ring.h"

/* a string field of a JSON object, or NULL */
static const char *
json_string_field(JsonbContainer *object, const char *key, int *len)
{
	JsonbValue	tmp;
	JsonbValue *v = getKeyJsonValueFromContainer(object, key, strlen(key), &tmp);

	if (v == NULL || v->type != jbvString)
		return NULL;
	*len = v->val.string.len;
	return v->val.string.val;
}

/* an integer field of a JSON object, or fallback */
static int64
json_int_field(JsonbContainer *object, const char *key, int64 fallback)
{
	JsonbValue	tmp;
	JsonbValue *v = getKeyJsonValueFromContainer(object, key, strlen(key), &tmp);

	if (v == NULL || v->type != jbvNumeric)
		return fallback;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

/* a broker connecting for this long (librdkafka's stateage, in us) is down */
#define BROKER_DOWN_AFTER_US	1000000
/* with nothing waiting, no broker up for this long: the cluster is down */
#define CLUSTER_DOWN_AFTER_MS	5000

static TimestampTz last_up_at = 0;	/* last report with a broker up */

typedef enum BrokerState
{
	BROKER_UP,
	BROKER_UNTRIED,				/* never tried: librdkafka connects sparsely,
								 * only to brokers it needs */
	BROKER_NOT_CONNECTED,		/* tried before, but now INIT, where librdkafka
								 * keeps a broker it has nothing for (one whose
								 * idle connection the broker closed waits
								 * there), or connecting for under a second */
	BROKER_DOWN					/* connecting, or waiting to, for a second or
								 * more */
} BrokerState;

/* one broker entry's state */
static BrokerState
broker_state(JsonbContainer *broker)
{
	int			len;
	const char *state = json_string_field(broker, "state", &len);

	if (state && brokers_state_is_up(state, len))
		return BROKER_UP;
	if (json_int_field(broker, "connects", 0) == 0)
		return BROKER_UNTRIED;
	if ((state && len == 4 && memcmp(state, "INIT", 4) == 0) ||
		json_int_field(broker, "stateage", BROKER_DOWN_AFTER_US) < BROKER_DOWN_AFTER_US)
		return BROKER_NOT_CONNECTED;
	return BROKER_DOWN;
}

/*
 * counts of brokers by state: down (a second or more), and not_connected
 * (down included), which is what counts when no broker is up
 */
typedef struct BrokerCounts
{
	int			total;
	int			up;
	int			down;
	int			not_connected;
} BrokerCounts;

static void
broker_count(BrokerCounts *counts, BrokerState state)
{
	counts->total++;
	counts->up += state == BROKER_UP;
	counts->down += state == BROKER_DOWN;
	counts->not_connected += state == BROKER_DOWN || state == BROKER_NOT_CONNECTED;
}

/* a nested object field of a JSON object, or NULL */
static JsonbContainer *
json_object_member(JsonbContainer *object, const char *key)
{
	JsonbValue	tmp;
	JsonbValue *v = getKeyJsonValueFromContainer(object, key, strlen(key), &tmp);

	return v != NULL && v->type == jbvBinary ? v->val.binary.data : NULL;
}

/* one broker entry of the statistics, as kafka_brokers shows it */
static void
broker_describe(JsonbContainer *broker, SkBroker *out)
{
	JsonbContainer *rtt = json_object_member(broker, "rtt");
	int			len = 0;
	const char *text;

	memset(out, 0, sizeof(SkBroker));
	text = json_string_field(broker, "name", &len);
	if (text)
		strlcpy(out->name, text, Min(len + 1, SK_BROKER_NAME_LEN));
	text = json_string_field(broker, "state", &len);
	if (text)
		strlcpy(out->state, text, Min(len + 1, (int) sizeof(out->state)));
	out->id = (int32) json_int_field(broker, "nodeid", -1);
	out->rtt_avg_us = rtt ? json_int_field(rtt, "avg", 0) : 0;
	out->rtt_p99_us = rtt ? json_int_field(rtt, "p99", 0) : 0;
	out->requests_waiting = json_int_field(broker, "outbuf_cnt", 0) +
		json_int_field(broker, "waitresp_cnt", 0);
	out->connects = json_int_field(broker, "connects", 0);
	out->disconnects = json_int_field(broker, "disconnects", 0);
}

/* batch sizes (messages per batch) of the topic that sent the most batches */
static void
batch_sizes(JsonbContainer *stats, SkBrokerSnapshot *snap)
{
	JsonbContainer *topics = json_object_member(stats, "topics");
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	int64		most = 0;

	if (topics == NULL)
		return;
	it = JsonbIteratorInit(topics);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbContainer *batchcnt;
		int64		cnt;

		if (tok != WJB_VALUE || v.type != jbvBinary ||
			(batchcnt = json_object_member(v.val.binary.data, "batchcnt")) == NULL)
			continue;
		cnt = json_int_field(batchcnt, "cnt", 0);
		if (cnt <= most)
			continue;
		most = cnt;
		snap->batch_messages_avg = json_int_field(batchcnt, "avg", 0);
		snap->batch_messages_p99 = json_int_field(batchcnt, "p99", 0);
	}
}

/*
 * cluster_down - true when, with no broker up, every broker tried and not
 * connected counts as down: once events wait, or after CLUSTER_DOWN_AFTER_MS;
 * before that an idle producer's brokers may just have had their idle
 * connections closed (connections.max.idle.ms), and librdkafka connects
 * again (the worker asks it to: producer.c).  With one up, the others not connected are idle (librdkafka
 * connects only to brokers it needs), not down.
 */
static bool
cluster_down(const BrokerCounts *counts)
{
	TimestampTz now = GetCurrentTimestamp();

	if (counts->up > 0 || last_up_at == 0)
		last_up_at = now;
	return counts->up == 0 &&
		(ring_unfinished_events() > 0 ||
		 TimestampDifferenceExceeds(last_up_at, now, CLUSTER_DOWN_AFTER_MS));
}

/* the brokers of one source (learned from metadata, or configured) */
typedef struct BrokerList
{
	BrokerCounts counts;
	SkBrokerSnapshot *snap;		/* the first SK_MAX_BROKERS, described */
	BrokerState states[SK_MAX_BROKERS]; /* of each described one */
} BrokerList;

static void
broker_list_add(BrokerList *list, JsonbContainer *broker)
{
	BrokerState state = broker_state(broker);

	broker_count(&list->counts, state);
	if (list->snap->count >= SK_MAX_BROKERS)
		return;
	list->states[list->snap->count] = state;
	broker_describe(broker, &list->snap->brokers[list->snap->count++]);
}

/* mark the described brokers that count as down */
static void
broker_list_mark_down(BrokerList *list, bool not_connected_is_down)
{
	for (int i = 0; i < list->snap->count; i++)
		list->snap->brokers[i].down = list->states[i] == BROKER_DOWN ||
			(not_connected_is_down && list->states[i] == BROKER_NOT_CONNECTED);
}

/*
 * rdstats_process - count the cluster's brokers by state and describe each.
 * Brokers learned from metadata count; the configured bootstrap entries
 * count only while no broker was ever learned (then they are all there is:
 * e.g. every bootstrap address refuses connections).  Returns false when
 * brokers are known and none is up.
 */
bool
rdstats_process(const char *json)
{
	Jsonb	   *stats = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	JsonbContainer *brokers = json_object_member(&stats->root, "brokers");
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	BrokerList *learned = palloc0(sizeof(BrokerList));
	BrokerList *configured = palloc0(sizeof(BrokerList));
	BrokerList *cluster;
	bool		down;

	if (brokers == NULL)
		return true;
	learned->snap = palloc0(sizeof(SkBrokerSnapshot));
	configured->snap = palloc0(sizeof(SkBrokerSnapshot));
	it = JsonbIteratorInit(brokers);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *source;
		int			len = 0;

		if (tok != WJB_VALUE || v.type != jbvBinary)
			continue;
		source = json_string_field(v.val.binary.data, "source", &len);
		if (json_int_field(v.val.binary.data, "nodeid", -1) >= 0)
			broker_list_add(learned, v.val.binary.data);
		else if (source && len == 10 && memcmp(source, "configured", 10) == 0)
			broker_list_add(configured, v.val.binary.data);
	}
	cluster = learned->counts.total > 0 ? learned : configured;
	batch_sizes(&stats->root, cluster->snap);
	down = cluster_down(&cluster->counts);
	broker_list_mark_down(cluster, down);
	metrics_set_brokers(cluster->counts.total, cluster->counts.up,
						down ? cluster->counts.not_connected : cluster->counts.down);
	brokers_publish(cluster->snap);
	breaker_brokers_seen(cluster->counts.up, cluster->counts.not_connected);
	return cluster->counts.total == 0 || cluster->counts.up > 0;
}
