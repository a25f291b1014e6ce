/*
 * rowfilter.h
 *		The row filter of a streamed table: a boolean SQL expression over the
 *		table's columns that decides which rows the stream carries.
 */
#ifndef STREAMKAFKA_ROWFILTER_H
#define STREAMKAFKA_ROWFILTER_H

#include "access/htup.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/relcache.h"

typedef struct RowFilter
{
	ExprState  *state;
	ExprContext *econtext;
	TupleTableSlot *slot;
} RowFilter;

/* compile FILTER for REL in the current memory context (ERROR if not allowed) */
extern void rowfilter_compile(RowFilter *filter, Relation rel, const char *text);

/* does the row match? (NULL counts as no) */
extern bool rowfilter_matches(RowFilter *filter, HeapTuple tuple);

#endif
