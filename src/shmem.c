/*
 * shmem.c
 *		Every shared region of streamkafka, registered and sized in one table
 *		per regime.
 *
 * Survivor memory holds the queue, the counters and the topic statistics,
 * then the staging pool: the postmaster maps it once, in _PG_init, not in
 * PostgreSQL's main shared memory.  Every process inherits it, and unlike the
 * main segment it is not re-created when the postmaster restarts all
 * processes after one of them crashed, so queued events survive a crash
 * restart (the staging pool is set up again then: staging.c).  Each module
 * attaches to its place (shmem_survivor_place) in streamkafka.c's startup
 * hook, which decides the order recovery needs.
 *
 * The main regions (the breaker's state, which refers to the running worker,
 * and the other worker-facing state) are in PostgreSQL's main segment,
 * created with ShmemInitStruct by each module's init function.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "storage/pg_shmem.h"
#include "storage/shmem.h"

#include "breaker.h"
#include "brokers.h"
#include "deadletter.h"
#include "decoder.h"
#include "durable.h"
#include "lag.h"
#include "metrics.h"
#include "mockfault.h"
#include "hugepage.h"
#include "ring.h"
#include "shmem.h"
#include "staging.h"
#include "topicstats.h"

/* a region of survivor memory: its size, known once settings are */
typedef struct SurvivorRegion
{
	Size		(*size) (void);
} SurvivorRegion;

/* indexed by SkSurvivorRegion */
static const SurvivorRegion survivor_regions[SK_SURVIVOR_REGIONS] = {
	[SK_REGION_RING] = {ring_shmem_size},
	[SK_REGION_METRICS] = {metrics_shmem_size},
	[SK_REGION_TOPICSTATS] = {topicstats_shmem_size},
	[SK_REGION_STAGING] = {staging_shmem_size},
};

/* a region of PostgreSQL's main segment: its size and what attaches to it */
typedef struct MainRegion
{
	Size		(*size) (void);
	void		(*init) (void);
} MainRegion;

static const MainRegion main_regions[] = {
	{breaker_shmem_size, breaker_shmem_init},
	{decoder_shmem_size, decoder_shmem_init},
	{durable_shmem_size, durable_shmem_init},
	{mockfault_shmem_size, mockfault_shmem_init},
	{brokers_shmem_size, brokers_shmem_init},
	{lag_shmem_size, lag_shmem_init},
	{deadletter_shmem_size, deadletter_shmem_init},
};

/* the survivor memory, and where each region starts in it */
static char *survivor_memory = NULL;
static Size survivor_offsets[SK_SURVIVOR_REGIONS];


/*
 * map_huge - the memory in huge pages if PostgreSQL's huge_pages allows them
 * (its main segment follows the same setting) and the kernel has enough;
 * else NULL.  Each process then maps the queue 2MB at a time instead of
 * 4kB: fewer page faults for every session that publishes.
 */
static char *
map_huge(Size size)
{
#ifdef MAP_HUGETLB
	char	   *memory;

	if (huge_pages == HUGE_PAGES_OFF)
		return NULL;
	memory = mmap(NULL, TYPEALIGN(SK_HUGE_PAGE, size), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (memory != MAP_FAILED)
	{
		ereport(LOG, (errmsg("streamkafka's queue uses huge pages")));
		return memory;
	}
	if (huge_pages == HUGE_PAGES_ON)
		ereport(LOG,
				(errmsg("streamkafka could not get %zu bytes of huge pages for its queue: %m",
						size),
				 errdetail("It uses normal pages."),
				 errhint("Raise vm.nr_hugepages by %zu pages.",
						 TYPEALIGN(SK_HUGE_PAGE, size) / SK_HUGE_PAGE)));
#endif
	return NULL;
}

/*
 * shmem_map_survivor - the postmaster, in _PG_init: place the survivor
 * regions one after another and map memory for all of them
 */
void
shmem_map_survivor(void)
{
	Size		size = 0;

	for (int i = 0; i < SK_SURVIVOR_REGIONS; i++)
	{
		survivor_offsets[i] = size;
		size = add_size(size, survivor_regions[i].size());
	}
	survivor_memory = map_huge(size);
	if (survivor_memory != NULL)
		return;
	survivor_memory = mmap(NULL, size, PROT_READ | PROT_WRITE,
						   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (survivor_memory == MAP_FAILED)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("streamkafka could not map %zu bytes of shared memory for its queue: %m",
						size),
				 errhint("Lower streamkafka.queue_size.")));
}

/*
 * shmem_survivor_place - where a survivor region starts
 */
char *
shmem_survivor_place(SkSurvivorRegion region)
{
	Assert(survivor_memory != NULL && region < SK_SURVIVOR_REGIONS);
	return survivor_memory + survivor_offsets[region];
}

/*
 * shmem_main_size - bytes the main regions need in PostgreSQL's segment
 */
Size
shmem_main_size(void)
{
	Size		size = 0;

	for (size_t i = 0; i < lengthof(main_regions); i++)
		size = add_size(size, main_regions[i].size());
	return size;
}

/*
 * shmem_main_init - create or attach to every main region (the caller holds
 * AddinShmemInitLock)
 */
void
shmem_main_init(void)
{
	for (size_t i = 0; i < lengthof(main_regions); i++)
		main_regions[i].init();
}
