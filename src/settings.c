/*
 * settings.c
 *		Defines the streamkafka.* settings.
 *
 * Sizes of shared memory are fixed at server start (PGC_POSTMASTER); producer
 * settings are PGC_SIGHUP: the worker re-reads them on pg_reload_conf() and
 * rebuilds its producer when they changed.  Values are range-checked here by
 * the GUC machinery; their combination is checked by librdkafka when the worker
 * builds the producer, and a rejected combination keeps the last good one.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "compat.h"
#include "settings.h"

char	   *sk_brokers = NULL;
int			sk_queue_size_kb = 64 * 1024;
int			sk_acks = SK_ACKS_ALL;
bool		sk_enable_idempotence = true;
int			sk_compression = SK_COMPRESSION_NONE;
int			sk_linger_ms = 5;
char	   *sk_client_id = NULL;
int			sk_message_timeout_ms = 300000;
int			sk_shutdown_timeout_ms = 10000;

static const struct config_enum_entry acks_options[] = {
	{"all", SK_ACKS_ALL, false},
	{"-1", SK_ACKS_ALL, true},
	{"1", 1, false},
	{"0", 0, false},
	{NULL, 0, false}
};

static const struct config_enum_entry compression_options[] = {
	{"none", SK_COMPRESSION_NONE, false},
	{"gzip", SK_COMPRESSION_GZIP, false},
	{"snappy", SK_COMPRESSION_SNAPPY, false},
	{"lz4", SK_COMPRESSION_LZ4, false},
	{"zstd", SK_COMPRESSION_ZSTD, false},
	{NULL, 0, false}
};

/*
 * settings_compression_name - librdkafka's name for a compression codec
 */
const char *
settings_compression_name(int codec)
{
	return compression_options[codec].name;
}

/*
 * settings_mock_mode - true when no broker list is set: the worker then runs
 * librdkafka's embedded mock cluster
 */
bool
settings_mock_mode(void)
{
	return sk_brokers == NULL || sk_brokers[0] == '\0';
}

/*
 * settings_define - register every streamkafka.* setting
 */
void
settings_define(void)
{
	DefineCustomStringVariable("streamkafka.brokers",
							   "Kafka bootstrap servers (host:port, comma separated).",
							   "Empty runs librdkafka's embedded mock cluster inside the worker.",
							   &sk_brokers, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.queue_size",
							"Size of the shared-memory event queue.",
							"Events wait here until Kafka acknowledges them; "
							"a transaction's events must fit in it at commit.",
							&sk_queue_size_kb, 64 * 1024, 1024, INT_MAX / 2,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.acks",
							 "Acknowledgements the producer waits for: all, 1 or 0.",
							 "enable_idempotence requires all.",
							 &sk_acks, SK_ACKS_ALL, acks_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("streamkafka.enable_idempotence",
							 "Use the idempotent producer (no duplicates from retries, order kept).",
							 NULL,
							 &sk_enable_idempotence, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.compression",
							 "Compression codec for message batches.",
							 NULL,
							 &sk_compression, SK_COMPRESSION_NONE, compression_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.linger_ms",
							"How long the producer waits to fill a batch.",
							NULL,
							&sk_linger_ms, 5, 0, 900000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.client_id",
							   "Client id the producer reports to Kafka.",
							   NULL,
							   &sk_client_id, "streamkafka",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.message_timeout_ms",
							"How long the producer retries one event before counting it failed (0 = forever).",
							NULL,
							&sk_message_timeout_ms, 300000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.shutdown_timeout_ms",
							"How long the worker waits for acknowledgements when it stops.",
							NULL,
							&sk_shutdown_timeout_ms, 10000, 0, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	MarkGUCPrefixReserved("streamkafka");
}
