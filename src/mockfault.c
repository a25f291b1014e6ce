/*
 * mockfault.c
 *		kafka_mock_fault(): breaks librdkafka's embedded mock cluster on
 *		purpose (brokers down and up, Produce or OffsetFetch request errors,
 *		added latency) so tests can drive the circuit breaker, the
 *		dead-letter path and the monitor's lag refresh without a real
 *		cluster.  Only the worker holds the mock cluster, so a
 *		session leaves its request in shared memory and wakes the worker,
 *		which applies it in mockfault_apply().  Superuser only; refused when
 *		a real cluster is configured.
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "fmgr.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"

#include "mockfault.h"
#include "ring.h"
#include "settings.h"
#include "streamkafka.h"

#define MOCK_BROKERS		3	/* test.mock.num.brokers, see producer.c */
#define MOCK_PRODUCE_API	0	/* Kafka's ApiKey of Produce */
#define MOCK_OFFSET_FETCH_API	9	/* Kafka's ApiKey of OffsetFetch (the monitor's) */

typedef enum MockAction
{
	MOCK_BROKERS_DOWN,
	MOCK_BROKERS_UP,
	MOCK_PRODUCE_ERRORS,
	MOCK_OFFSET_FETCH_ERRORS,
	MOCK_RTT
} MockAction;

typedef struct MockRequest
{
	slock_t		lock;
	uint32		requested;		/* bumped by every request */
	uint32		applied;		/* the worker's copy of requested */
	MockAction	action;
	int			value;
	int			error_code;
} MockRequest;

static MockRequest *mock_request = NULL;

Size
mockfault_shmem_size(void)
{
	return MAXALIGN(sizeof(MockRequest));
}

void
mockfault_shmem_init(void)
{
	bool		found;

	mock_request = ShmemInitStruct("streamkafka mock faults", mockfault_shmem_size(), &found);
	if (found)
		return;
	memset(mock_request, 0, sizeof(MockRequest));
	SpinLockInit(&mock_request->lock);
}

/*
 * mockfault_apply - the worker applies the latest request, if any
 */
void
mockfault_apply(rd_kafka_t *rk)
{
	MockRequest req;
	rd_kafka_mock_cluster_t *mcluster;

	/* the worker alone writes applied: no request, no lock */
	if (mock_request->requested == mock_request->applied)
		return;
	SpinLockAcquire(&mock_request->lock);
	memcpy(&req, mock_request, sizeof(req));
	mock_request->applied = mock_request->requested;
	SpinLockRelease(&mock_request->lock);
	if (req.applied == req.requested || rk == NULL ||
		(mcluster = rd_kafka_handle_mock_cluster(rk)) == NULL)
		return;

	for (int id = 1; id <= MOCK_BROKERS; id++)
	{
		if (req.action == MOCK_BROKERS_DOWN)
			rd_kafka_mock_broker_set_down(mcluster, id);
		else if (req.action == MOCK_BROKERS_UP)
			rd_kafka_mock_broker_set_up(mcluster, id);
		else if (req.action == MOCK_RTT)
			rd_kafka_mock_broker_set_rtt(mcluster, id, req.value);
	}
	if (req.action == MOCK_PRODUCE_ERRORS || req.action == MOCK_OFFSET_FETCH_ERRORS)
		for (int i = 0; i < req.value; i++)
			rd_kafka_mock_push_request_errors(mcluster,
											  req.action == MOCK_PRODUCE_ERRORS ?
											  MOCK_PRODUCE_API : MOCK_OFFSET_FETCH_API, 1,
											  (rd_kafka_resp_err_t) req.error_code);
	ereport(LOG, (errmsg("streamkafka applied a mock cluster fault (action %d, value %d)",
						 (int) req.action, req.value)));
}

static MockAction
mockfault_parse(const char *fault)
{
	if (strcmp(fault, "brokers_down") == 0)
		return MOCK_BROKERS_DOWN;
	if (strcmp(fault, "brokers_up") == 0)
		return MOCK_BROKERS_UP;
	if (strcmp(fault, "produce_errors") == 0)
		return MOCK_PRODUCE_ERRORS;
	if (strcmp(fault, "offset_fetch_errors") == 0)
		return MOCK_OFFSET_FETCH_ERRORS;
	if (strcmp(fault, "rtt") == 0)
		return MOCK_RTT;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown mock cluster fault \"%s\"", fault),
			 errhint("Use brokers_down, brokers_up, produce_errors, "
					 "offset_fetch_errors or rtt.")));
	return MOCK_RTT;			/* keep the compiler quiet */
}

PG_FUNCTION_INFO_V1(streamkafka_mock_fault);

/*
 * streamkafka_mock_fault - kafka_mock_fault(fault, value, error_code)
 */
Datum
streamkafka_mock_fault(PG_FUNCTION_ARGS)
{
	MockAction	action;

	streamkafka_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mock cluster fault must not be null"),
				 errhint("Use brokers_down, brokers_up, produce_errors, "
						 "offset_fetch_errors or rtt.")));
	action = mockfault_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (!settings_mock_mode())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kafka_mock_fault works only with the embedded mock cluster"),
				 errdetail("streamkafka.brokers is set: the worker talks to a real cluster."),
				 errhint("Stop real brokers to test outages.")));

	SpinLockAcquire(&mock_request->lock);
	mock_request->action = action;
	mock_request->value = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	mock_request->error_code = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	mock_request->requested++;
	SpinLockRelease(&mock_request->lock);
	ring_set_consumer_latch();
	PG_RETURN_VOID();
}
