/*
 * rdstats.c
 *		Reads the statistics JSON librdkafka emits every
 *		statistics.interval.ms and records the brokers' connection states for
 *		kafka_health() and the circuit breaker.  Runs in the worker, after rd_kafka_poll() returned,
 *		never inside a librdkafka callback (it may raise an ERROR, which the
 *		caller catches).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "breaker.h"
#include "metrics.h"
#include "rdstats.h"

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

/*
 * one broker entry's state: 1 up; -1 down (not up, and a connection was
 * tried: between reconnect attempts librdkafka may show any state); 0 never
 * tried (librdkafka connects sparsely, only to brokers it needs)
 */
static int
broker_state(JsonbContainer *broker)
{
	int			len;
	const char *state = json_string_field(broker, "state", &len);

	if (state && ((len == 2 && memcmp(state, "UP", 2) == 0) ||
				  (len == 6 && memcmp(state, "UPDATE", 6) == 0)))
		return 1;
	return json_int_field(broker, "connects", 0) > 0 ? -1 : 0;
}

/* counts of brokers by state */
typedef struct BrokerCounts
{
	int			total;
	int			up;
	int			down;
} BrokerCounts;

static void
broker_count(BrokerCounts *counts, int state)
{
	counts->total++;
	counts->up += state > 0;
	counts->down += state < 0;
}

/*
 * rdstats_process - count the cluster's brokers by state.  Brokers learned
 * from metadata count; the configured bootstrap entries count only while no
 * broker was ever learned (then they are all there is: e.g. every bootstrap
 * address refuses connections).
 */
void
rdstats_process(const char *json)
{
	Jsonb	   *stats = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	JsonbValue	tmp;
	JsonbValue *brokers;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	BrokerCounts learned = {0};
	BrokerCounts configured = {0};

	brokers = getKeyJsonValueFromContainer(&stats->root, "brokers", 7, &tmp);
	if (brokers == NULL || brokers->type != jbvBinary)
		return;

	it = JsonbIteratorInit(brokers->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *source;
		int			len = 0;

		if (tok != WJB_VALUE || v.type != jbvBinary)
			continue;
		source = json_string_field(v.val.binary.data, "source", &len);
		if (json_int_field(v.val.binary.data, "nodeid", -1) >= 0)
			broker_count(&learned, broker_state(v.val.binary.data));
		else if (source && len == 10 && memcmp(source, "configured", 10) == 0)
			broker_count(&configured, broker_state(v.val.binary.data));
	}
	if (learned.total == 0)
		learned = configured;
	metrics_set_brokers(learned.total, learned.up, learned.down);
	breaker_brokers_seen(learned.up, learned.down);
}
