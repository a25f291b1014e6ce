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

typedef enum SkSecurityProtocol
{
	SK_SECURITY_PLAINTEXT,
	SK_SECURITY_SSL,
	SK_SECURITY_SASL_PLAINTEXT,
	SK_SECURITY_SASL_SSL
} SkSecurityProtocol;

typedef enum SkSaslMechanism
{
	SK_SASL_PLAIN,
	SK_SASL_SCRAM_SHA_256,
	SK_SASL_SCRAM_SHA_512
} SkSaslMechanism;

/* acks values as librdkafka spells them */
typedef enum SkAcks
{
	SK_ACKS_ALL = -1,
	SK_ACKS_NONE = 0,
	SK_ACKS_LEADER = 1
} SkAcks;

typedef enum SkOverflow
{
	SK_OVERFLOW_ERROR,
	SK_OVERFLOW_BLOCK,
	SK_OVERFLOW_DROP_NEWEST,
	SK_OVERFLOW_DROP_OLDEST
} SkOverflow;

/* default_headers, checked and packed (the GUC's "extra") */
/* streamkafka.durability: where a committed event lives until Kafka has it */
typedef enum SkDurability
{
	SK_DURABILITY_MEMORY,		/* the shared-memory queue (and the spill file) */
	SK_DURABILITY_WAL			/* the WAL, held by the extension's slot */
} SkDurability;

typedef struct SkPackedHeaders
{
	uint32		len;
	uint16		count;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} SkPackedHeaders;

extern char *sk_brokers;
extern int	sk_queue_size_kb;
extern int	sk_staging_size_kb;
extern int	sk_acks;		/* an SkAcks */
extern bool sk_enable_idempotence;
extern int	sk_compression;	/* an SkCompression */
extern int	sk_linger_ms;
extern char *sk_client_id;
extern int	sk_message_timeout_ms;
extern int	sk_shutdown_timeout_ms;
extern int	sk_breaker_failure_threshold;
extern int	sk_breaker_recovery_timeout_ms;
extern char *sk_database;
extern int	sk_max_topics;
extern char *sk_lag_groups;
extern int	sk_lag_interval_ms;
extern int	sk_lag_alert_threshold;
extern int	sk_http_port;
extern char *sk_http_listen_address;
extern char *sk_traceparent;
extern int	sk_batch_size;
extern int	sk_batch_num_messages;
extern int	sk_message_max_bytes;
extern int	sk_request_timeout_ms;
extern int	sk_retries;
extern int	sk_retry_backoff_ms;
extern char *sk_topic_prefix;
extern char *sk_default_headers;
extern char *sk_rdkafka_options;
extern int	sk_overflow;	/* an SkOverflow */
extern int	sk_database_queue_share;
extern int	sk_durability;	/* an SkDurability */
extern char *sk_id_header;
extern char *sk_transaction_topic;
extern int	sk_wal_retention_alert_mb;
extern int	sk_enqueue_timeout_ms;
extern const SkPackedHeaders *sk_default_headers_packed;
extern int	sk_security_protocol;	/* an SkSecurityProtocol */
extern int	sk_sasl_mechanism;	/* an SkSaslMechanism */
extern char *sk_sasl_username;
extern char *sk_sasl_password;
extern char *sk_ssl_ca_location;
extern char *sk_ssl_certificate_location;
extern char *sk_ssl_key_location;
extern char *sk_ssl_key_password;
extern bool sk_ssl_verify_hostname;
extern char *sk_allowed_topics;
extern uint32 sk_allowed_topics_generation;

extern void settings_define(void);
extern const char *settings_compression_name(SkCompression codec);
extern bool settings_mock_mode(void);
extern const char *settings_overflow_name(SkOverflow policy);
extern const char *settings_security_protocol_name(SkSecurityProtocol protocol);
extern const char *settings_sasl_mechanism_name(SkSaslMechanism mechanism);
extern bool settings_security_uses_sasl(SkSecurityProtocol protocol);
extern bool settings_security_uses_ssl(SkSecurityProtocol protocol);
extern bool settings_topic_allowed(const char *topic, int len);


#endif							/* STREAMKAFKA_SETTINGS_H */
