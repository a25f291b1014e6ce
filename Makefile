# streamkafka - PGXS build
PG_CONFIG ?= pg_config
EXTENSION = streamkafka
MODULE_big = streamkafka
OBJS = \
	src/streamkafka.o \
	src/settings.o \
	src/kafkaconf.o \
	src/ring.o \
	src/shmem.o \
	src/event.o \
	src/enqueue.o \
	src/pending.o \
	src/savepoints.o \
	src/publish.o \
	src/flush.o \
	src/trigger.o \
	src/txmeta.o \
	src/snapshot.o \
	src/rowjson.o \
	src/rowfilter.o \
	src/spill.o \
	src/staging.o \
	src/parse.o \
	src/metrics.o \
	src/rdstats.o \
	src/producer.o \
	src/sender.o \
	src/breaker.o \
	src/deadletter.o \
	src/decoder.o \
	src/durable.o \
	src/mockfault.o \
	src/testconsume.o \
	src/topicstats.o \
	src/brokers.o \
	src/health.o \
	src/lag.o \
	src/prometheus.o \
	src/monitor.o \
	src/worker.o
DATA = $(wildcard streamkafka--*.sql)
PGFILEDESC = "streamkafka - publish to Apache Kafka from SQL"

# -Wextra for our code; the server headers are read as system headers, so
# their unused-parameter noise is silenced for them only
PG_CPPFLAGS = -I$(srcdir)/src -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CFLAGS = -Wextra
SHLIB_LINK = -lrdkafka -lpthread

# RDKAFKA_PREFIX=DIR: build against the librdkafka installed under DIR
# (scripts/install-deps --librdkafka source prints it) and load that one at
# run time through a run path, not the system's
ifdef RDKAFKA_PREFIX
# a system header: its own -Wextra findings are not ours
PG_CPPFLAGS := -isystem $(RDKAFKA_PREFIX)/include $(PG_CPPFLAGS)
SHLIB_LINK = -L$(RDKAFKA_PREFIX)/lib -Wl,-rpath,$(RDKAFKA_PREFIX)/lib -lrdkafka -lpthread
endif

# pg_regress: a temporary instance with the preload and the mock cluster
REGRESS = setup publish transactions errors settings triggers stats observability upgrade \
	security streaming snapshot txmeta deadletters queue_share queue accounting monitor_settings
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check_regress

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# TAP suite against a real Apache Kafka broker (started once for the run)
.PHONY: tapcheck
tapcheck:
	test/run-tap

# the worker and backends under valgrind memcheck (minutes); run as non-root
.PHONY: valgrind-check
valgrind-check:
	test/valgrind/run

# PGXS here does not track header dependencies: rebuild every object when any
# header changes (shared-memory layouts live in headers)
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# fuzz the input parsers (src/parse.c) with libFuzzer for FUZZ_SECONDS (60)
.PHONY: fuzz
fuzz:
	fuzz/run

# header JSON and envelopes with random inputs against oracles, FUZZ_SECONDS (60)
.PHONY: fuzz-sql
fuzz-sql:
	fuzz/run-sql

# TAP tests with every PostgreSQL process under valgrind (minutes): the
# files that reach every worker and monitor path (listed in test/valgrind/tap),
# or all of them
.PHONY: valgrind-tap valgrind-tap-all
valgrind-tap:
	test/valgrind/tap
valgrind-tap-all:
	test/valgrind/tap --all
