/*
 * spill.h
 *		Keeping unacknowledged events across a clean server restart.
 */
#ifndef STREAMKAFKA_SPILL_H
#define STREAMKAFKA_SPILL_H

extern void spill_write(void);
extern void spill_load(void);
extern void spill_forget_own(void);
extern int	spill_damaged_files(void);

#endif							/* STREAMKAFKA_SPILL_H */
