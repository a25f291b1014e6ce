/*
 * decoder.h
 *		Durable mode's reader: the worker reads events back from the WAL
 *		through the slot "streamkafka" and queues them (decoder.c).
 */
#ifndef STREAMKAFKA_DECODER_H
#define STREAMKAFKA_DECODER_H

#include "access/xlogdefs.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* what the worker says about durable mode, for health and the views */
typedef struct SkDecoderShared
{
	slock_t		mutex;
	XLogRecPtr	confirmed;		/* the slot is confirmed up to here */
	XLogRecPtr	read_upto;		/* the WAL is read up to here */
	TimestampTz oldest_pending; /* commit time of the oldest transaction
								 * whose events are queued, not finished; 0 */
	char		problem[256];	/* why durable mode does not work, or "" */
} SkDecoderShared;

/* serve the queue (send, poll, release) while the decoder waits for room */
typedef void (*DecoderServeQueue) (void);

extern Size decoder_shmem_size(void);
extern void decoder_shmem_init(void);
extern void decoder_read_shared(SkDecoderShared *copy);
extern bool decoder_step(DecoderServeQueue serve);
extern void decoder_forget(void);

#endif							/* STREAMKAFKA_DECODER_H */
