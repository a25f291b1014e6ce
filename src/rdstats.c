/*
 * rdstats.c
 *		Reads the statistics JSON librdkafka emits every
 *		statistics.interval.ms and records the brokers' connection states for
 *		kafka_health().  Runs in the worker, after rd_kafka_poll() returned,
 *		never inside a librdkafka callback (it may raise an ERROR, which the
 *		caller catches).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

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
 * rdstats_process - count the cluster's brokers (node id >= 0; bootstrap
 * entries have -1) by state: UP/UPDATE are up, INIT was never needed
 * (librdkafka connects sparsely), any other state is down or reconnecting
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
	int			total = 0;
	int			up = 0;
	int			down = 0;

	brokers = getKeyJsonValueFromContainer(&stats->root, "brokers", 7, &tmp);
	if (brokers == NULL || brokers->type != jbvBinary)
		return;

	it = JsonbIteratorInit(brokers->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *state;
		int			len;

		if (tok != WJB_VALUE || v.type != jbvBinary)
			continue;
		if (json_int_field(v.val.binary.data, "nodeid", -1) < 0)
			continue;
		state = json_string_field(v.val.binary.data, "state", &len);
		total++;
		if (state && ((len == 2 && memcmp(state, "UP", 2) == 0) ||
					  (len == 6 && memcmp(state, "UPDATE", 6) == 0)))
			up++;
		else if (!(state && len == 4 && memcmp(state, "INIT", 4) == 0))
			down++;
	}
	metrics_set_brokers(total, up, down);
}
