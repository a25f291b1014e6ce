/*
 * streamkafka_bench_noop.c
 *		Baselines for the benchmarks: a C function taking kafka_publish()'s
 *		arguments, reading them as kafka_publish does and doing nothing else
 *		(P2); and a C row trigger that does nothing (the floor of any AFTER
 *		ROW trigger, a reference for P3).
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/jsonb.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(noop_publish);

Datum
noop_publish(PG_FUNCTION_ARGS)
{
	int64		sum = 0;

	for (int i = 0; i < 3; i++)
		if (!PG_ARGISNULL(i))
			sum += VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(i));
	PG_RETURN_INT64(sum);
}

PG_FUNCTION_INFO_V1(noop_trigger);

Datum
noop_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "noop_trigger: not called as a trigger");
	return PointerGetDatum(NULL);
}
