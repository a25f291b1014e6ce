/*
 * rowjson.h
 *		Rows as JSON objects, the way row_to_json() writes them.
 */
#ifndef STREAMKAFKA_ROWJSON_H
#define STREAMKAFKA_ROWJSON_H

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

typedef enum RowJsonKind
{
	RJ_INT2,
	RJ_INT4,
	RJ_INT8,
	RJ_BOOL,
	RJ_NUMBER,					/* numeric, float4, float8: output text */
	RJ_TEXT,
	RJ_JSON,
	RJ_JSONB,
	RJ_DATETIME,				/* date, timestamp, timestamptz */
	RJ_OTHER					/* to_json() */
} RowJsonKind;

typedef struct RowJsonColumn
{
	AttrNumber	attnum;
	char	   *key;			/* "name": */
	RowJsonKind kind;
	Oid			base_type;
	FmgrInfo	func;			/* output function (RJ_NUMBER) or to_json (RJ_OTHER) */
} RowJsonColumn;

typedef struct RowJson
{
	int			ncolumns;
	RowJsonColumn *columns;
} RowJson;

extern void rowjson_init(RowJson *rj, TupleDesc desc, const AttrNumber *attnums,
						 int nattnums);
extern void rowjson_append(StringInfo buf, const RowJson *rj, const Datum *values,
						   const bool *isnull);

#endif							/* STREAMKAFKA_ROWJSON_H */
