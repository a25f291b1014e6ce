/*
 * compat.h
 *		Every PG_VERSION_NUM shim streamkafka needs, in one place.
 *
 * The extension is built and tested on PostgreSQL 15 and 18; these
 * shims keep it compiling on 13 to 18 where the API moved.
 */
#ifndef STREAMKAFKA_COMPAT_H
#define STREAMKAFKA_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#if PG_VERSION_NUM >= 170000
#define SK_CreateWaitEventSet(nevents) CreateWaitEventSet(NULL, (nevents))
#else
#define SK_CreateWaitEventSet(nevents) CreateWaitEventSet(CurrentMemoryContext, (nevents))
#endif

/* this backend's index in ProcGlobal->allProcs (PostgreSQL 17: MyProcNumber) */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define SK_MyProcNumber() ((int) MyProcNumber)
#else
#include "storage/proc.h"
#define SK_MyProcNumber() (MyProc->pgprocno)
#endif

/* this backend's local transaction id field in PGPROC (PostgreSQL 17: vxid.lxid) */
#if PG_VERSION_NUM >= 170000
#define SK_lxid vxid.lxid
#else
#define SK_lxid lxid
#endif

/*
 * durable mode: a logical message (PostgreSQL 17 flushes a non-transactional
 * one when asked; before, we flush it; flush false: the caller flushes),
 * whether a slot was invalidated (PostgreSQL 16: a cause; before, the LSN it
 * happened at), acquiring a slot
 */
#include "access/xlog.h"
#include "replication/message.h"
#include "replication/slot.h"
static inline XLogRecPtr
SK_LogLogicalMessage(const char *prefix, const char *message, size_t size, bool transactional,
					 bool flush)
{
#if PG_VERSION_NUM >= 170000
	return LogLogicalMessage(prefix, message, size, transactional, flush && !transactional);
#else
	XLogRecPtr	lsn = LogLogicalMessage(prefix, message, size, transactional);

	if (flush && !transactional)
		XLogFlush(lsn);
	return lsn;
#endif
}

#if PG_VERSION_NUM >= 160000
#define SK_SlotInvalidated(slot) ((slot)->data.invalidated != RS_INVAL_NONE)
#else
#define SK_SlotInvalidated(slot) ((slot)->data.invalidated_at != InvalidXLogRecPtr)
#endif

#if PG_VERSION_NUM >= 180000
#define SK_ReplicationSlotAcquire(name) ReplicationSlotAcquire((name), true, true)
#else
#define SK_ReplicationSlotAcquire(name) ReplicationSlotAcquire((name), true)
#endif

/* PostgreSQL 18 no longer defines Abs() */
#ifndef Abs
#define Abs(x) ((x) >= 0 ? (x) : -(x))
#endif

/*
 * memory for a GUC check hook's new value and extra (PostgreSQL 16:
 * guc_malloc; PostgreSQL frees both with guc_free, which refuses malloc's)
 */
#if PG_VERSION_NUM >= 160000
#include "utils/guc.h"
#define SK_guc_malloc(size) guc_malloc(LOG, (size))
#define SK_guc_strdup(s) guc_strdup(LOG, (s))
#define SK_guc_free(p) guc_free(p)
#else
#define SK_guc_malloc(size) malloc(size)
#define SK_guc_strdup(s) strdup(s)
#define SK_guc_free(p) free(p)
#endif

/* a materialized set-returning function's tuplestore and descriptor */
#if PG_VERSION_NUM >= 150000
#include "funcapi.h"
#define SK_InitMaterializedSRF(fcinfo) InitMaterializedSRF((fcinfo), 0)
#else
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"
static inline void
SK_InitMaterializedSRF(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	MemoryContext old;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->setDesc = CreateTupleDescCopy(desc);
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	MemoryContextSwitchTo(old);
}
#endif

#endif							/* STREAMKAFKA_COMPAT_H */
