/*
 * compat.h
 *		Every PG_VERSION_NUM shim streamkafka needs, in one place.
 *
 * The extension is built and tested on PostgreSQL 15; these shims keep it
 * compiling on 13 to 17 where the API moved.
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

#endif							/* STREAMKAFKA_COMPAT_H */
