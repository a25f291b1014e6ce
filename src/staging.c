/*
 * staging.c
 *		A pool of fixed-size chunks of shared memory, touched once by the
 *		postmaster, that backends borrow to hold a large transaction's events
 *		until it commits (pending.c), and give back when it ends.
 *
 * Why: a transaction's events wait in backend memory until COMMIT (they must
 * not reach the queue, and block other sessions' events behind them, before
 * that).  A fresh backend's memory is fresh pages, and the kernel zeroes
 * every page on its first write: measured on a 1M-event transaction
 * (bench/, 150 MB of events), that took a third of the statement's time.
 * Borrowed chunks were zeroed once, at server start; a backend only maps
 * them.  When the pool is empty, or streamkafka.staging_size is 0, pending.c
 * uses backend memory as before.
 *
 * The pool is a stack of free chunk numbers under a spinlock, taken once per
 * 2 MB of events.  It lives in the memory the postmaster maps for the queue
 * (streamkafka.c); after a crash restart every chunk is free again, since
 * every backend that held one is gone.
 */
#include "postgres.h"

#include "storage/spin.h"

#include "settings.h"
#include "staging.h"

#define STAGING_PAGE	4096

typedef struct SkStaging
{
	slock_t		lock;
	uint32		nchunks;
	uint32		nfree;			/* free[0 .. nfree) are free chunk numbers */
	uint32		most_used;		/* the most chunks lent at once */
	uint64		misses;			/* chunks asked for while none was free */
	char	   *base;			/* chunk i is at base + i * SK_STAGING_CHUNK */
	uint32		free[FLEXIBLE_ARRAY_MEMBER];
} SkStaging;

static SkStaging *sk_staging = NULL;

static uint32
staging_chunks(void)
{
	return (uint32) ((uint64) sk_staging_size_kb * 1024 / SK_STAGING_CHUNK);
}

/* where the chunks start: after the header, at the next page boundary */
static char *
staging_chunks_start(void *place)
{
	return (char *) TYPEALIGN(STAGING_PAGE, (char *) place + offsetof(SkStaging, free) +
							  sizeof(uint32) * staging_chunks());
}

/*
 * staging_shmem_size - memory the pool needs (0 if there is none): header,
 * page alignment, chunks
 */
Size
staging_shmem_size(void)
{
	if (staging_chunks() == 0)
		return 0;
	return add_size(offsetof(SkStaging, free) + sizeof(uint32) * staging_chunks() + STAGING_PAGE,
					mul_size(staging_chunks(), SK_STAGING_CHUNK));
}

/*
 * staging_shmem_init - set the pool up at place (staging_shmem_size bytes),
 * all chunks free; the first time, touch every page.  Called in the
 * postmaster, at start and after a crash restart, with no backend attached.
 */
void
staging_shmem_init(void *place, bool first_time)
{
	uint32		nchunks = staging_chunks();

	if (nchunks == 0)
		return;
	sk_staging = (SkStaging *) place;
	SpinLockInit(&sk_staging->lock);
	sk_staging->nchunks = nchunks;
	sk_staging->base = staging_chunks_start(place);
	for (uint32 i = 0; i < nchunks; i++)
		sk_staging->free[i] = nchunks - 1 - i;
	sk_staging->nfree = nchunks;
	sk_staging->most_used = 0;
	sk_staging->misses = 0;
	if (first_time)
		memset(sk_staging->base, 0, (Size) nchunks * SK_STAGING_CHUNK);
}

/*
 * staging_take - borrow a chunk of SK_STAGING_CHUNK bytes; NULL if none is
 * free (or there is no pool)
 */
void *
staging_take(void)
{
	int32		chunk = -1;

	if (sk_staging == NULL)
		return NULL;
	SpinLockAcquire(&sk_staging->lock);
	if (sk_staging->nfree > 0)
		chunk = sk_staging->free[--sk_staging->nfree];
	else
		sk_staging->misses++;
	sk_staging->most_used = Max(sk_staging->most_used, sk_staging->nchunks - sk_staging->nfree);
	SpinLockRelease(&sk_staging->lock);
	return chunk < 0 ? NULL : sk_staging->base + (Size) chunk * SK_STAGING_CHUNK;
}

/*
 * staging_give_back - return a chunk from staging_take().  Cannot fail.
 */
void
staging_give_back(void *chunk)
{
	uint32		number = ((char *) chunk - sk_staging->base) / SK_STAGING_CHUNK;

	Assert(staging_owns(chunk));
	SpinLockAcquire(&sk_staging->lock);
	Assert(sk_staging->nfree < sk_staging->nchunks);
	sk_staging->free[sk_staging->nfree++] = number;
	SpinLockRelease(&sk_staging->lock);
}

/*
 * staging_owns - is pointer inside the pool's chunks?
 */
bool
staging_owns(const void *pointer)
{
	return sk_staging != NULL && (const char *) pointer >= sk_staging->base &&
		(const char *) pointer < sk_staging->base + (Size) sk_staging->nchunks * SK_STAGING_CHUNK;
}

/*
 * staging_report - the pool's size, what is lent now and at most since the
 * server started, in bytes, and how many chunks were asked for in vain
 * (all 0 without a pool)
 */
void
staging_report(uint64 *size, uint64 *in_use, uint64 *most_used, uint64 *misses)
{
	*size = *in_use = *most_used = *misses = 0;
	if (sk_staging == NULL)
		return;
	SpinLockAcquire(&sk_staging->lock);
	*size = (uint64) sk_staging->nchunks * SK_STAGING_CHUNK;
	*in_use = (uint64) (sk_staging->nchunks - sk_staging->nfree) * SK_STAGING_CHUNK;
	*most_used = (uint64) sk_staging->most_used * SK_STAGING_CHUNK;
	*misses = sk_staging->misses;
	SpinLockRelease(&sk_staging->lock);
}
