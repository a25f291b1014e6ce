/*
 * noop.c
 *		The baseline of benchmark P2: a C function taking kafka_publish()'s
 *		arguments, reading them as kafka_publish does, and doing nothing else.
 */
#include "postgres.h"

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
