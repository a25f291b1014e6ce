/*
 * settings.h
 *		The streamkafka.* configuration settings (GUCs).
 */
#ifndef STREAMKAFKA_SETTINGS_H
#define STREAMKAFKA_SETTINGS_H

typedef enum SkCompression
{
	SK_COMPRESSION_NONE,
	SK_COMPRESSION_GZIP,
	SK_COMPRESSION_SNAPPY,
	SK_COMPRESSION_LZ4,
	SK_COMPRESSION_ZSTD
} SkCompression;

/* acks values as librdkafka spells them: -1 is "all" */
#define SK_ACKS_ALL (-1)

extern char *sk_brokers;
extern int	sk_queue_size_kb;
extern int	sk_acks;
extern bool sk_enable_idempotence;
extern int	sk_compression;
extern int	sk_linger_ms;
extern char *sk_client_id;
extern int	sk_message_timeout_ms;
extern int	sk_shutdown_timeout_ms;

extern void settings_define(void);
extern const char *settings_compression_name(int codec);
extern bool settings_mock_mode(void);

#endif							/* STREAMKAFKA_SETTINGS_H */
