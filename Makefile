# chat: PostgreSQL extension (PGXS) plus the set-up, test and benchmark targets.
EXTENSION  = chat
EXTVERSION = 0.1.0

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

all: relay

MODULE_big = chat
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c)))
DATA_built = sql/chat--$(EXTVERSION).sql
DATA       = $(wildcard sql/chat--*--*.sql)
EXTRA_CLEAN = sql/chat--$(EXTVERSION).sql
# PostgreSQL's headers are system headers: -Werror applies to our code only.
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

# No LLVM bitcode: JIT inlining gains nothing for SPI-bound C functions, and
# it would need clang on every build machine.
override with_llvm = no
# Rebuild objects when a header they include changes (chat.h holds shared
# memory structs: a stale object would disagree on their layout).
override autodepend = yes

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
endif

sql/chat--$(EXTVERSION).sql: sql/chat.sql
	cp $< $@

# The relay (relay/Makefile): built by `make` / `make all`; not installed by
# `make install`, which stays the extension's.
.PHONY: relay relay-asan relay-clean
relay:
	$(MAKE) -C relay PG_CONFIG=$(PG_CONFIG)

relay-asan:
	$(MAKE) -C relay asan PG_CONFIG=$(PG_CONFIG)

relay-clean:
	$(MAKE) -C relay clean

clean: relay-clean

# Local cluster of `make run` lives under the project folder.
RUN_DIR  ?= $(CURDIR)/.pgdata
RUN_PORT ?= 5433
# The demo relay of `make run` (test/demo.sh): HTTP port, or the next free one.
RUN_HTTP_PORT ?= 8080

.PHONY: deps run stop test bench bench-relay bench-maintenance
deps:
	test/install-deps.sh

run: deps
	$(MAKE) all
	$(MAKE) install
	test/cluster.sh start $(RUN_DIR) $(RUN_PORT)
	test/cluster.sh createdb $(RUN_DIR) $(RUN_PORT) chat
	test/cluster.sh seed $(RUN_DIR) $(RUN_PORT) chat
	test/demo.sh start $(RUN_DIR) $(RUN_PORT) chat $(RUN_HTTP_PORT)
	@test/cluster.sh hello $(RUN_DIR) $(RUN_PORT) chat
	@test/demo.sh hello

stop:
	test/demo.sh stop
	test/cluster.sh stop $(RUN_DIR)

test: deps
	$(MAKE) all
	$(MAKE) relay-asan
	$(MAKE) install
	test/run-tests.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	bench/run.sh
	bench/events.sh
	bench/attachments.sh
	bench/maintenance.sh
	bench/relay.sh

# chat-relay against the Node peer (summary: bench/relay_report.py)
bench-relay: deps
	$(MAKE) all
	$(MAKE) install
	bench/relay.sh

# chat.maintain against pg_partman (SMALL=1 for a quick run)
bench-maintenance: deps
	$(MAKE) all
	$(MAKE) install
	bench/maintenance.sh
