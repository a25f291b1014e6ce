/*
 * shmem.h
 *		Every shared region of streamkafka, registered and sized in one table.
 */
#ifndef STREAMKAFKA_SHMEM_H
#define STREAMKAFKA_SHMEM_H

/* the regions of survivor memory, in their order there */
typedef enum SkSurvivorRegion
{
	SK_REGION_RING,
	SK_REGION_METRICS,
	SK_REGION_TOPICSTATS,
	SK_REGION_STAGING,
	SK_SURVIVOR_REGIONS
} SkSurvivorRegion;

extern void shmem_map_survivor(void);
extern char *shmem_survivor_place(SkSurvivorRegion region);
extern Size shmem_main_size(void);
extern void shmem_main_init(void);

#endif							/* STREAMKAFKA_SHMEM_H */
