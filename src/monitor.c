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
 * One loop waits for everything and never blocks elsewhere: the lag
 * refresh runs on a thread of its own (lag.c) and wakes the loop when done;
 * HTTP connections are non-blocking, up to HTTP_MAX_CLIENTS at a time, and
 * each gets HTTP_REQUEST_TIMEOUT_MS for the whole exchange (request and
 * answer) and HTTP_MAX_REQUEST bytes of request head, then it is closed.
 * One request per connection.  GET /metrics: the Prometheus text; GET
 * /health: kafka_health()'s JSON, status 200, or 503 when unhealthy.
 * SIGTERM and the postmaster's death end the loop at once: connections are
 * closed, the refresh thread is stopped after its librdkafka call in progress.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <errno.h>
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
#include "kafkaconf.h"
#include "lag.h"
#include "metrics.h"
#include "prometheus.h"
#include "ratelimit.h"
#include "settings.h"

#define MONITOR_IDLE_MS			1000
#define MONITOR_ADMIN_TIMEOUT_MS 10000	/* one librdkafka call of a refresh */
#define MONITOR_REFRESH_BUDGET_MS 60000 /* a whole refresh */
#define MONITOR_LOG_GAP_MS		10000	/* between two failure lines */
#define MONITOR_LOG_REPEAT_MS	60000	/* between two lines of the same failure */
#define HTTP_REQUEST_TIMEOUT_MS	5000
#define HTTP_MAX_REQUEST		8192
#define HTTP_MAX_CLIENTS		8
#define MONITOR_GROUP_ID		"streamkafka-monitor"	/* see monitor_client */

typedef enum HttpPhase
{
	HTTP_FREE,					/* the slot is unused */
	HTTP_READING,				/* reading the request head */
	HTTP_WRITING				/* sending the answer */
} HttpPhase;

/* one HTTP connection */
typedef struct HttpClient
{
	HttpPhase	phase;
	pgsocket	sock;
	TimestampTz deadline;		/* closed then, whatever its phase */
	char		request[HTTP_MAX_REQUEST];
	size_t		received;
	char	   *answer;			/* in TopMemoryContext */
	size_t		answer_len;
	size_t		sent;
} HttpClient;

PGDLLEXPORT void streamkafka_monitor_main(Datum main_arg);

/* a failure that recurs at every pass, logged at a bounded rate */
typedef struct LogLimit
{
	char		last[512];		/* the failure last logged */
	TimestampTz logged_at;
	int			unlogged;		/* failures not logged since */
} LogLimit;

static LogLimit client_failures;
static LogLimit lag_failures;
static rd_kafka_t *client = NULL;
static char client_bootstrap[1024];
static pgsocket listener = PGINVALID_SOCKET;
static int	listen_port = 0;
static char listen_address[256];
static HttpClient clients[HTTP_MAX_CLIENTS];

/*
 * monitor_log_failure - log a failure of what: a new one at most once per
 * MONITOR_LOG_GAP_MS, the same one again once per MONITOR_LOG_REPEAT_MS
 */
static void
monitor_log_failure(LogLimit *limit, const char *what, const char *text)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		same = strcmp(limit->last, text) == 0;

	if (!log_interval_passed(&limit->logged_at, now,
							 same ? MONITOR_LOG_REPEAT_MS : MONITOR_LOG_GAP_MS))
	{
		limit->unlogged++;
		return;
	}
	if (limit->unlogged > 0)
		ereport(LOG, (errmsg("streamkafka monitor %s: %s", what, text),
					  errdetail("%d failures since the previous line were not logged.",
								limit->unlogged)));
	else
		ereport(LOG, (errmsg("streamkafka monitor %s: %s", what, text)));
	strlcpy(limit->last, text, sizeof(limit->last));
	limit->unlogged = 0;
}

/* monitor_destroy_client - destroy the client, without a consumer close (it never joins) */
static void
monitor_destroy_client(void)
{
	if (client != NULL)
		rd_kafka_destroy_flags(client, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	client = NULL;
}

/*
 * monitor_client - a client of the producer's cluster, rebuilt when its
 * address changes or rebuild asks (the settings changed); never while a lag
 * refresh uses it.
 *
 * A consumer with a group of its own (MONITOR_GROUP_ID), which it never
 * joins, subscribes or commits to: librdkafka handles a group's offsets
 * answer that says the coordinator moved (NOT_COORDINATOR,
 * COORDINATOR_NOT_AVAILABLE, as a broker shuts down) by asking the client's
 * own consumer group to look up its coordinator again, and a client without
 * one (a producer) dereferences a NULL group there: SIGSEGV in a librdkafka
 * thread, which kills the monitor and restarts the server.
 */
static rd_kafka_t *
monitor_client(bool rebuild)
{
	SkStatsSnapshot snap;
	char		errstr[512];
	rd_kafka_conf_t *conf;

	metrics_snapshot(&snap);
	if (client != NULL && !rebuild && strcmp(client_bootstrap, snap.bootstrap) == 0)
		return client;
	monitor_destroy_client();
	if (!snap.producer_ready || snap.bootstrap[0] == '\0')
		return NULL;
	conf = kafkaconf_client(snap.bootstrap, errstr, sizeof(errstr));
	if (conf != NULL)
	{
		rd_kafka_conf_set(conf, "log.queue", "false", NULL, 0);
		rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
		if (rd_kafka_conf_set(conf, "group.id", MONITOR_GROUP_ID, errstr,
							  sizeof(errstr)) != RD_KAFKA_CONF_OK ||
			rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
							  sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			rd_kafka_conf_destroy(conf);
			conf = NULL;
		}
	}
	if (conf != NULL)
		client = kafkaconf_new_handle(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (client == NULL)
		monitor_log_failure(&client_failures, "could not create a Kafka client", errstr);
	else
	{
		strlcpy(client_bootstrap, snap.bootstrap, sizeof(client_bootstrap));
		memset(&client_failures, 0, sizeof(client_failures));
	}
	return client;
}

/* monitor_close_listener - stop listening for HTTP */
static void
monitor_close_listener(void)
{
	if (listener != PGINVALID_SOCKET)
		closesocket(listener);
	listener = PGINVALID_SOCKET;
	listen_port = 0;
}

/* monitor_listen - (re)bind the HTTP listener to the settings, if they moved */
static void
monitor_listen(void)
{
	struct sockaddr_in addr = {0};
	int			one = 1;

	if (sk_http_port == listen_port && strcmp(sk_http_listen_address, listen_address) == 0)
		return;
	monitor_close_listener();
	strlcpy(listen_address, sk_http_listen_address, sizeof(listen_address));
	if (sk_http_port == 0)
		return;
	addr.sin_family = AF_INET;
	addr.sin_port = htons(sk_http_port);
	if (inet_pton(AF_INET, sk_http_listen_address, &addr.sin_addr) != 1)
	{
		ereport(LOG, (errmsg("streamkafka.http_listen_address \"%s\" is not an IPv4 address",
							 sk_http_listen_address)));
		return;
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
		return;
	}
	listen_port = sk_http_port;
	ereport(LOG, (errmsg("streamkafka serves /metrics and /health on http://%s:%d",
						 sk_http_listen_address, sk_http_port)));
}

/* http_close - end a connection and free its slot */
static void
http_close(HttpClient *conn)
{
	closesocket(conn->sock);
	if (conn->answer != NULL)
		pfree(conn->answer);
	memset(conn, 0, sizeof(HttpClient));
	conn->sock = PGINVALID_SOCKET;
}

/* http_answer - the response to a complete request head, kept in the connection */
static void
http_answer(HttpClient *conn, int status, const char *reason, const char *type, StringInfo body)
{
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfo(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
					 "Connection: close\r\n\r\n", status, reason, type, body->len);
	appendBinaryStringInfo(&out, body->data, body->len);
	conn->answer = MemoryContextAlloc(TopMemoryContext, out.len);
	memcpy(conn->answer, out.data, out.len);
	conn->answer_len = out.len;
	conn->sent = 0;
	conn->phase = HTTP_WRITING;
	pfree(out.data);
}

/* http_route - answer the request in the connection's buffer */
static void
http_route(HttpClient *conn)
{
	const char *request = conn->request;
	StringInfoData body;

	initStringInfo(&body);
	if (strncmp(request, "GET ", 4) != 0)
	{
		appendStringInfoString(&body, "only GET\n");
		http_answer(conn, 405, "Method Not Allowed", "text/plain", &body);
	}
	else if (strncmp(request + 4, "/metrics ", 9) == 0 || strncmp(request + 4, "/metrics?", 9) == 0)
	{
		prometheus_text(&body);
		http_answer(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body);
	}
	else if (strncmp(request + 4, "/health ", 8) == 0)
	{
		bool		unhealthy = health_report(&body) == SK_UNHEALTHY;

		http_answer(conn, unhealthy ? 503 : 200, unhealthy ? "Service Unavailable" : "OK",
					"application/json", &body);
	}
	else
	{
		appendStringInfoString(&body, "not found: try /metrics or /health\n");
		http_answer(conn, 404, "Not Found", "text/plain", &body);
	}
	pfree(body.data);
}

/* http_read - take what the client sent; answer once the head is complete */
static void
http_read(HttpClient *conn)
{
	ssize_t		n = recv(conn->sock, conn->request + conn->received,
						 HTTP_MAX_REQUEST - 1 - conn->received, 0);
	StringInfoData body;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
	{
		http_close(conn);
		return;
	}
	conn->received += n;
	conn->request[conn->received] = '\0';
	if (strstr(conn->request, "\r\n\r\n") != NULL || strstr(conn->request, "\n\n") != NULL)
		http_route(conn);
	else if (conn->received == HTTP_MAX_REQUEST - 1)
	{
		initStringInfo(&body);
		appendStringInfoString(&body, "request head too large\n");
		http_answer(conn, 431, "Request Header Fields Too Large", "text/plain", &body);
		pfree(body.data);
	}
}

/* http_write - send what the socket takes of the answer; close when all is sent */
static void
http_write(HttpClient *conn)
{
	while (conn->sent < conn->answer_len)
	{
		ssize_t		n = send(conn->sock, conn->answer + conn->sent,
							 conn->answer_len - conn->sent, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0)
			break;
		conn->sent += n;
	}
	http_close(conn);
}

/* http_free_slot - a free connection slot, or NULL when all are taken */
static HttpClient *
http_free_slot(void)
{
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++)
		if (clients[i].phase == HTTP_FREE)
			return &clients[i];
	return NULL;
}

/* monitor_accept - take the waiting connections while there are free slots */
static void
monitor_accept(void)
{
	HttpClient *conn;
	pgsocket	sock;

	while (listener != PGINVALID_SOCKET && (conn = http_free_slot()) != NULL &&
		   (sock = accept(listener, NULL, NULL)) != PGINVALID_SOCKET)
	{
		if (!pg_set_noblock(sock))
		{
			closesocket(sock);
			continue;
		}
		conn->sock = sock;
		conn->phase = HTTP_READING;
		conn->received = 0;
		conn->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 HTTP_REQUEST_TIMEOUT_MS);
	}
}

/*
 * monitor_expire_clients - close the connections whose time is up; returns
 * ms until the next deadline (at most MONITOR_IDLE_MS)
 */
static long
monitor_expire_clients(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = MONITOR_IDLE_MS;

	for (int i = 0; i < HTTP_MAX_CLIENTS; i++)
	{
		if (clients[i].phase == HTTP_FREE)
			continue;
		if (now >= clients[i].deadline)
			http_close(&clients[i]);
		else
			wait_ms = Min(wait_ms, TimestampDifferenceMilliseconds(now, clients[i].deadline));
	}
	return wait_ms;
}

/* monitor_close_clients - end every open connection */
static void
monitor_close_clients(void)
{
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++)
		if (clients[i].phase != HTTP_FREE)
			http_close(&clients[i]);
}

/*
 * monitor_wait_set - what the worker waits for in this loop pass: its latch,
 * the postmaster's death, a finished lag refresh, the listener (while a
 * connection slot is free) and every open connection.  Made in the loop's
 * memory context; the caller frees it before the context is reset.
 */
static WaitEventSet *
monitor_wait_set(void)
{
	WaitEventSet *events = SK_CreateWaitEventSet(4 + HTTP_MAX_CLIENTS);

	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (lag_refresh_running())
		AddWaitEventToSet(events, WL_SOCKET_READABLE, lag_refresh_fd(), NULL, NULL);
	if (listener != PGINVALID_SOCKET && http_free_slot() != NULL)
		AddWaitEventToSet(events, WL_SOCKET_READABLE, listener, NULL, NULL);
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++)
		if (clients[i].phase != HTTP_FREE)
			AddWaitEventToSet(events, clients[i].phase == HTTP_READING ?
							  WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
							  clients[i].sock, NULL, &clients[i]);
	return events;
}

/*
 * monitor_refresh - publish a finished lag refresh; start one when due (not
 * while one runs); returns ms until the next one is due
 */
static long
monitor_refresh(TimestampTz *next, bool *rebuild)
{
	rd_kafka_t *rk;
	char		error[256];

	if (lag_refresh_finish(error, sizeof(error)))
	{
		*next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), sk_lag_interval_ms);
		if (error[0] != '\0')
			monitor_log_failure(&lag_failures, "could not refresh consumer lag", error);
		else
			memset(&lag_failures, 0, sizeof(lag_failures));
	}
	if (sk_lag_interval_ms == 0 || lag_refresh_running())
		return MONITOR_IDLE_MS;
	if (GetCurrentTimestamp() >= *next)
	{
		rk = monitor_client(*rebuild);
		*rebuild = false;
		if (rk == NULL ||
			!lag_refresh_start(rk, Min(sk_lag_interval_ms, MONITOR_ADMIN_TIMEOUT_MS),
							   MONITOR_REFRESH_BUDGET_MS))
			/* without a producer yet, try again soon */
			*next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MONITOR_IDLE_MS);
		return MONITOR_IDLE_MS;
	}
	return Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), *next), MONITOR_IDLE_MS);
}

/* monitor_serve - handle what the wait reported */
static void
monitor_serve(WaitEvent *occurred, int count, bool *postmaster_died)
{
	for (int i = 0; i < count; i++)
	{
		HttpClient *conn = occurred[i].user_data;

		if (occurred[i].events & WL_POSTMASTER_DEATH)
			*postmaster_died = true;
		else if (occurred[i].fd == listener && listener != PGINVALID_SOCKET &&
				 (occurred[i].events & WL_SOCKET_READABLE))
			monitor_accept();
		else if (conn != NULL && conn->phase == HTTP_READING &&
				 (occurred[i].events & WL_SOCKET_READABLE))
			http_read(conn);
		if (conn != NULL && conn->phase == HTTP_WRITING)
			http_write(conn);
	}
}

/* monitor_reload - re-read the settings; rebind the listener if it moved */
static void
monitor_reload(TimestampTz *next_refresh, bool *rebuild)
{
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	monitor_listen();
	*rebuild = true;
	*next_refresh = 0;
}

/* monitor_stop - close every connection and the listener, stop the refresh */
static void
monitor_stop(void)
{
	monitor_close_clients();
	monitor_close_listener();
	lag_refresh_cancel();
	monitor_destroy_client();
}

/* monitor_on_exit - any exit (an ERROR included) stops the refresh thread first */
static void
monitor_on_exit(int code pg_attribute_unused(), Datum arg pg_attribute_unused())
{
	monitor_stop();
}

/*
 * streamkafka_monitor_main - the monitor worker's loop: one wait for
 * everything (latch, postmaster death, a finished refresh, HTTP), never a
 * blocking call of its own
 */
void
streamkafka_monitor_main(Datum main_arg pg_attribute_unused())
{
	MemoryContext loop_context;
	TimestampTz next_refresh = 0;
	bool		rebuild = false;
	bool		postmaster_died = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	loop_context = AllocSetContextCreate(TopMemoryContext, "streamkafka monitor loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++)
		clients[i].sock = PGINVALID_SOCKET;
	before_shmem_exit(monitor_on_exit, 0);
	monitor_listen();

	while (!ShutdownRequestPending && !postmaster_died)
	{
		MemoryContext old = MemoryContextSwitchTo(loop_context);
		WaitEvent	occurred[4 + HTTP_MAX_CLIENTS];
		WaitEventSet *events;
		long		timeout;
		int			count;

		if (ConfigReloadPending)
			monitor_reload(&next_refresh, &rebuild);
		timeout = Min(monitor_refresh(&next_refresh, &rebuild), monitor_expire_clients());
		events = monitor_wait_set();
		count = WaitEventSetWait(events, Max(timeout, 1), occurred, lengthof(occurred),
								 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		monitor_serve(occurred, count, &postmaster_died);
		FreeWaitEventSet(events);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
	}
	proc_exit(postmaster_died ? 1 : 0);
}
