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

typedef enum SkOverflow
{
	SK_OVERFLOW_ERROR,
	SK_OVERFLOW_BLOCK,
	SK_OVERFLOW_DROP_NEWEST,
	SK_OVERFLOW_DROP_OLDEST
} SkOverflow;

/* default_headers, checked and packed (the GUC's "extra") */
typedef struct SkPackedHeaders
{
	uint32		len;
	uint16		count;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} SkPackedHeaders;

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
extern int	sk_batch_size;
extern int	sk_batch_num_messages;
extern int	sk_message_max_bytes;
extern int	sk_request_timeout_ms;
extern int	sk_retries;
extern int	sk_retry_backoff_ms;
extern char *sk_topic_prefix;
extern char *sk_default_headers;
extern char *sk_rdkafka_options;
extern int	sk_overflow;
extern int	sk_enqueue_timeout_ms;
extern const SkPackedHeaders *sk_default_headers_packed;

extern void settings_define(void);
extern const char *settings_compression_name(int codec);
extern bool settings_mock_mode(void);
extern const char *settings_overflow_name(int policy);

typedef void (*SkOptionCallback) (const char *name, const char *value, void *arg);
extern bool settings_parse_rdkafka_options(const char *options, SkOptionCallback callback,
										   void *arg, char *error, size_t errlen);

#endif							/* STREAMKAFKA_SETTINGS_H */
