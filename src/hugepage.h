/*
 * hugepage.h
 *		The huge page size the queue, the staging pool and large pending
 *		buffers are laid out for (x86-64 and arm64 with 4kB base pages).
 */
#ifndef STREAMKAFKA_HUGEPAGE_H
#define STREAMKAFKA_HUGEPAGE_H

#define SK_HUGE_PAGE	((Size) 2 * 1024 * 1024)

#endif							/* STREAMKAFKA_HUGEPAGE_H */
