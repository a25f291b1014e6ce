/*
 * streamkafka.h
 *		Names shared by every part of the extension: version, the preload
 *		check, and the entry points registered in _PG_init.
 */
#ifndef STREAMKAFKA_H
#define STREAMKAFKA_H

#include "postgres.h"

#define STREAMKAFKA_VERSION "0.4.0"


/* true in processes where the library came from shared_preload_libraries */
extern bool streamkafka_preloaded;

extern void streamkafka_require_preload(void);

#endif							/* STREAMKAFKA_H */
