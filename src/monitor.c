/*
 * monitor.c
 *		The monitor worker: a second background worker that refreshes
 *		consumer lag and topic metadata (lag.c) every
 *		streamkafka.lag_interval_ms with a client of its own, and, when
 *		streamkafka.http_port is set, serves /metrics and /health over HTTP.
 *
 * It is separate from the sending worker so that its blocking calls (admin
 * requests, watermark queries, an HTTP client) never delay delivery, and so
 * that no SQL session ever waits on them.  It talks to the same cluster as
 * the producer: the bootstrap servers the producer reports (the mock
 * cluster's address in mock mode) with the same security settings.
 *
 * HTTP: one request per connection, served in turn; a client gets 2 s to
 * send its request line and headers.  GET /metrics: the Prometheus text;
 * GET /health: kafka_health()'s JSON, status 200, or 503 when unhealthy.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <librdkafka/rdkafka.h>

#include "compat.h"
#include "health.h"
#include "lag.h"
#include "metrics.h"
#include "producer.h"
#include "prometheus.h"
#include "settings.h"

#define MONITOR_IDLE_MS			1000
#define MONITOR_ADMIN_TIMEOUT_MS 10000
#define HTTP_IO_TIMEOUT_S		2
#define HTTP_MAX_REQUEST		8192

PGDLLEXPORT void streamkafka_monitor_main(Datum main_arg);

static rd_kafka_t *client = NULL;
static char client_bootstrap[1024];
static pgsocket listener = PGINVALID_SOCKET;
static int	listen_port = 0;
static char listen_address[256];

/* a client of the producer's cluster, rebuilt when its address changes */
static rd_kafka_t *
monitor_client(bool rebuild)
{
	SkStatsSnapshot snap;
	char		errstr[512];
	rd_kafka_conf_t *conf;

	metrics_snapshot(&snap);
	if (client != NULL && !rebuild && strcmp(client_bootstrap, snap.bootstrap) == 0)
		return client;
	if (client != NULL)
		rd_kafka_destroy(client);
	client = NULL;
	if (!snap.producer_ready || snap.bootstrap[0] == '\0')
		return NULL;
	conf = producer_client_conf(snap.bootstrap, errstr, sizeof(errstr));
	if (conf != NULL)
	{
		rd_kafka_conf_set(conf, "log.queue", "false", NULL, 0);
		rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
		client = producer_new_handle(conf, errstr, sizeof(errstr));
	}
	if (client == NULL)
		ereport(LOG, (errmsg("streamkafka monitor could not create a Kafka client: %s", errstr)));
	else
		strlcpy(client_bootstrap, snap.bootstrap, sizeof(client_bootstrap));
	return client;
}

static void
monitor_close_listener(void)
{
	if (listener != PGINVALID_SOCKET)
		closesocket(listener);
	listener = PGINVALID_SOCKET;
	listen_port = 0;
}

/* (re)bind the HTTP listener to the settings; true if it changed */
static bool
monitor_listen(void)
{
	struct sockaddr_in addr = {0};
	int			one = 1;

	if (sk_http_port == listen_port && strcmp(sk_http_listen_address, listen_address) == 0)
		return false;
	monitor_close_listener();
	strlcpy(listen_address, sk_http_listen_address, sizeof(listen_address));
	if (sk_http_port == 0)
		return true;
	addr.sin_family = AF_INET;
	addr.sin_port = htons(sk_http_port);
	if (inet_pton(AF_INET, sk_http_listen_address, &addr.sin_addr) != 1)
	{
		ereport(LOG, (errmsg("streamkafka.http_listen_address \"%s\" is not an IPv4 address",
							 sk_http_listen_address)));
		return true;
	}
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener == PGINVALID_SOCKET ||
		setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		bind(listener, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(listener, 16) != 0 || !pg_set_noblock(listener))
	{
		ereport(LOG, (errmsg("streamkafka monitor could not listen on %s:%d: %m",
							 sk_http_listen_address, sk_http_port)));
		monitor_close_listener();
		return true;
	}
	listen_port = sk_http_port;
	ereport(LOG, (errmsg("streamkafka serves /metrics and /health on http://%s:%d",
						 sk_http_listen_address, sk_http_port)));
	return true;
}

/* read the request head (up to the blank line); false on timeout or junk */
static bool
http_read_request(pgsocket sock, char *buf, size_t size)
{
	size_t		used = 0;

	while (used < size - 1)
	{
		ssize_t		n = recv(sock, buf + used, size - 1 - used, 0);

		if (n <= 0)
			return false;
		used += n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
			return true;
	}
	return false;
}

static void
http_respond(pgsocket sock, int status, const char *reason, const char *type, StringInfo body)
{
	StringInfoData out;
	size_t		sent = 0;

	initStringInfo(&out);
	appendStringInfo(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
					 "Connection: close\r\n\r\n", status, reason, type, body->len);
	appendBinaryStringInfo(&out, body->data, body->len);
	while (sent < (size_t) out.len)
	{
		ssize_t		n = send(sock, out.data + sent, out.len - sent, 0);

		if (n <= 0)
			break;
		sent += n;
	}
}

/* answer one connection */
static void
http_serve(pgsocket sock)
{
	char		request[HTTP_MAX_REQUEST];
	struct timeval timeout = {HTTP_IO_TIMEOUT_S, 0};
	StringInfoData body;

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	initStringInfo(&body);
	if (!http_read_request(sock, request, sizeof(request)))
		return;
	if (strncmp(request, "GET ", 4) != 0)
	{
		appendStringInfoString(&body, "only GET\n");
		http_respond(sock, 405, "Method Not Allowed", "text/plain", &body);
	}
	else if (strncmp(request + 4, "/metrics ", 9) == 0 || strncmp(request + 4, "/metrics?", 9) == 0)
	{
		prometheus_text(&body);
		http_respond(sock, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body);
	}
	else if (strncmp(request + 4, "/health ", 8) == 0)
	{
		bool		unhealthy = health_report(&body) == SK_UNHEALTHY;

		http_respond(sock, unhealthy ? 503 : 200, unhealthy ? "Service Unavailable" : "OK",
					 "application/json", &body);
	}
	else
	{
		appendStringInfoString(&body, "not found: try /metrics or /health\n");
		http_respond(sock, 404, "Not Found", "text/plain", &body);
	}
}

/* serve every connection waiting on the listener */
static void
monitor_accept(void)
{
	pgsocket	sock;

	while (listener != PGINVALID_SOCKET &&
		   (sock = accept(listener, NULL, NULL)) != PGINVALID_SOCKET)
	{
		int			flags = fcntl(sock, F_GETFL);

		fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
		http_serve(sock);
		closesocket(sock);
	}
}

static WaitEventSet *
monitor_wait_set(WaitEventSet *old)
{
	WaitEventSet *events;

	if (old != NULL)
		FreeWaitEventSet(old);
	events = SK_CreateWaitEventSet(3);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (listener != PGINVALID_SOCKET)
		AddWaitEventToSet(events, WL_SOCKET_READABLE, listener, NULL, NULL);
	return events;
}

/* refresh lag and metadata when due; returns ms until the next refresh */
static long
monitor_refresh(TimestampTz *next, bool rebuild)
{
	TimestampTz now = GetCurrentTimestamp();
	rd_kafka_t *rk;

	if (sk_lag_interval_ms == 0)
		return MONITOR_IDLE_MS;
	if (now >= *next)
	{
		rk = monitor_client(rebuild);
		if (rk != NULL)
			lag_refresh(rk, Min(sk_lag_interval_ms, MONITOR_ADMIN_TIMEOUT_MS));
		/* without a producer yet, try again soon */
		*next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											rk ? sk_lag_interval_ms : MONITOR_IDLE_MS);
	}
	return Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), *next), MONITOR_IDLE_MS);
}

void
streamkafka_monitor_main(Datum main_arg pg_attribute_unused())
{
	WaitEventSet *events;
	MemoryContext loop_context;
	TimestampTz next_refresh = 0;
	bool		rebuild = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	loop_context = AllocSetContextCreate(TopMemoryContext, "streamkafka monitor loop",
										 ALLOCSET_DEFAULT_SIZES);
	monitor_listen();
	events = monitor_wait_set(NULL);

	while (!ShutdownRequestPending)
	{
		MemoryContext old = MemoryContextSwitchTo(loop_context);
		WaitEvent	event;
		long		timeout;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (monitor_listen())
				events = monitor_wait_set(events);
			rebuild = true;
			next_refresh = 0;
		}
		timeout = monitor_refresh(&next_refresh, rebuild);
		rebuild = false;
		if (WaitEventSetWait(events, Max(timeout, 1), &event, 1, PG_WAIT_EXTENSION) > 0 &&
			(event.events & WL_SOCKET_READABLE))
			monitor_accept();
		ResetLatch(MyLatch);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
	}
	monitor_close_listener();
	if (client != NULL)
		rd_kafka_destroy(client);
	proc_exit(0);
}
