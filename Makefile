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
# AES-256-GCM for sealed events (extension/seal.c)
SHLIB_LINK  = -lcrypto

# No LLVM bitcode: JIT inlining gains nothing for SPI-bound C functions, and
# it would need clang on every build machine.
override with_llvm = no
# Rebuild objects when a header they include changes (chat.h holds shared
# memory structs: a stale object would disagree on their layout).
override autodepend = yes

# PGXS's installcheck is pg_regress's; ours (below) is pg_prove's.
NO_INSTALLCHECK = 1

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
endif

# sql/chat.sql is the core; sql/notify.sql (devices, preferences, webhooks)
# sql/notify_email.sql (email digests) and sql/notify_push.sql (push) come
# after it, in this order:
# each uses the tables, roles and the REVOKE of PUBLIC of those before it.
sql/chat--$(EXTVERSION).sql: sql/chat.sql sql/notify.sql sql/notify_email.sql sql/notify_push.sql
	cat $^ > $@

# The daemons (relay/Makefile: chat-relay and chat-notify): built by `make` /
# `make all`; not installed by `make install`, which stays the extension's.
.PHONY: relay relay-asan relay-clean
relay:
	$(MAKE) -C relay PG_CONFIG=$(PG_CONFIG)

relay-asan:
	$(MAKE) -C relay asan PG_CONFIG=$(PG_CONFIG)

relay-clean:
	$(MAKE) -C relay clean

# The daemons on a host of their own (docs/deploying.md): the binaries, the
# systemd units (their paths follow PREFIX) and the sample configs;
# DESTDIR for a staging tree (a package). Never overwrites a config.
PREFIX ?= /usr/local
.PHONY: install-daemons
install-daemons: relay
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/chat $(DESTDIR)/etc/systemd/system $(DESTDIR)$(PREFIX)/share/doc/chat
	install -m 755 relay/chat-relay relay/chat-notify $(DESTDIR)$(PREFIX)/bin/
	install -m 644 deploy/relay.conf.sample deploy/notify.conf.sample $(DESTDIR)/etc/chat/
	for u in chat-relay chat-notify; do \
		sed 's|/usr/local|$(PREFIX)|g' deploy/$$u.service > $(DESTDIR)/etc/systemd/system/$$u.service; done
	install -m 644 docs/deploying.md docs/notifications.md docs/operations.md $(DESTDIR)$(PREFIX)/share/doc/chat/

clean: relay-clean

# Local cluster of `make run` lives under the project folder.
RUN_DIR  ?= $(CURDIR)/.pgdata
RUN_PORT ?= 5433
# The demo relay of `make run` (test/demo.sh): HTTP port, or the next free one.
RUN_HTTP_PORT ?= 8080
# The chat-notify of `make run` (test/notify-demo.sh): its /metrics port and
# the local SMTP sink's (mail lands in .run/mail/), or the next free ones.
RUN_NOTIFY_PORT ?= 8091
RUN_SMTP_PORT ?= 2525
# `make run S3=1`: also a local S3 (Ceph radosgw, test/s3/demo-store.sh) on
# RUN_S3_PORT or the next free port, configured as the demo's object store.
S3 ?= 0
RUN_S3_PORT ?= 7480
export RUN_S3_PORT

.PHONY: deps deps-run deps-test run stop test bench bench-relay bench-maintenance bench-presence bench-notify bench-push
# Packages (test/install-deps.sh): `deps` everything, `deps-run` what
# `make run` needs, `deps-test` what `make test` needs.
deps:
	test/install-deps.sh bench

deps-run:
	test/install-deps.sh run $(if $(filter 1,$(S3)),s3)

deps-test:
	test/install-deps.sh test

run: deps-run
	$(MAKE) all
	$(MAKE) install
	test/cluster.sh start $(RUN_DIR) $(RUN_PORT)
	test/cluster.sh createdb $(RUN_DIR) $(RUN_PORT) chat
	test/cluster.sh seed $(RUN_DIR) $(RUN_PORT) chat
	test/demo.sh start $(RUN_DIR) $(RUN_PORT) chat $(RUN_HTTP_PORT)
	test/notify-demo.sh start $(RUN_DIR) $(RUN_PORT) chat $(RUN_NOTIFY_PORT) $(RUN_SMTP_PORT)
	test/s3/demo-store.sh $(if $(filter 1,$(S3)),start,off) $(RUN_DIR) $(RUN_PORT) chat
	@test/cluster.sh hello $(RUN_DIR) $(RUN_PORT) chat
	@test/demo.sh hello
	@test/notify-demo.sh hello
	@test/s3/demo-store.sh hello

stop:
	test/s3/demo-store.sh stop
	test/notify-demo.sh stop
	test/demo.sh stop
	test/cluster.sh stop $(RUN_DIR)

test: deps-test
	$(MAKE) all
	$(MAKE) relay-asan
	$(MAKE) install
	test/run-tests.sh

# The PostgreSQL failover test (test/ha/test_failover.py; docs/deploying.md,
# "Failover"): a pg_auto_failover monitor and pair on loopback (ports from
# HA_PORT_BASE, within 25000-25999), two relays (the ASan build when there
# is one), 200 clients; the primary is killed under load. Not in `make
# test` (it wants pg_auto_failover and a minute): .ci/run runs it after.
# HA_CLIENTS, HA_RATE: the load; HA_KEEP=1 keeps the logs.
.PHONY: test-ha
# its own pg_auto_failover pair; --noconftest: test/ha/conftest.py is the
# balancer suite's, which wants make test's database
test-ha:
	test/install-deps.sh ha
	$(MAKE) relay-current
	$(MAKE) install
	/usr/bin/python3 -m pytest -q -p no:cacheprovider --noconftest -s test/ha/test_failover.py

# One suite each (test/run-tests.sh), on a machine `make test` (or `make
# deps`, `make`, `make install`) has set up; each starts a throwaway cluster
# on TEST_PORT (54329) and removes it. `make installcheck` runs the pgTAP
# suites like PGXS's (which, with REGRESS unset, would run nothing): on the
# server of PGHOST / PGPORT when either is set (it must preload chat), else
# on a throwaway cluster. (NO_INSTALLCHECK above keeps PGXS's out.)
CHECKS = client pgtap tour dump events relay ha notify maintenance browser attachments demo fuzz
.PHONY: installcheck relay-current $(CHECKS:%=check-%)
installcheck:
	test/run-tests.sh $(if $(PGHOST)$(PGPORT),--existing) pgtap

check-client check-pgtap check-tour check-dump check-events check-maintenance check-attachments check-fuzz:
	test/run-tests.sh $(@:check-%=%)

# the relay, ha and notify tests run the ASan builds when there are: keep
# them current too (check-demo: `make run S3=1`'s scripts and the plain
# build, in chromium; check-ha: relays behind the haproxy and nginx of
# deploy/)
check-relay check-ha check-notify check-browser check-demo: relay-current
	test/run-tests.sh $(@:check-%=%)

relay-current: relay
	@if [ -e relay/chat-relay-asan ]; then $(MAKE) relay-asan; fi

bench: deps
	$(MAKE) all
	$(MAKE) install
	bench/run.sh
	bench/events.sh
	bench/attachments.sh
	bench/maintenance.sh
	bench/presence_sync.sh
	bench/presence_reconnect.py $(PRESENCE_BENCH_ARGS)
	bench/notify_webhooks.py $(NOTIFY_BENCH_ARGS)
	bench/notify_email.py
	$(MAKE) -C relay chat-notify
	bench/notify_push.py $(PUSH_BENCH_ARGS)
	bench/relay.sh

# libFuzzer harnesses (test/fuzz: request parsing, tokens, event payloads;
# clang with ASan + UBSan): `make fuzz` runs each for FUZZ_SECONDS, `make
# fuzz-NAME` one (request, auth, envelope, seal); `make test` runs them for
# FUZZ_TEST_SECONDS each (suite fuzz). Crashing inputs: relay/build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZERS = request auth envelope seal
.PHONY: fuzz $(FUZZERS:%=fuzz-%)
fuzz:
	test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZERS)

$(FUZZERS:%=fuzz-%):
	test/fuzz/run.sh $(FUZZ_SECONDS) $(@:fuzz-%=%)

# chat-relay against the Node peer (summary: bench/relay_report.py)
bench-relay: deps
	$(MAKE) all
	$(MAKE) install
	bench/relay.sh

# One reconnect of a user with 20,000 chats: the presence work it costs the
# database and the relay (bench/presence_reconnect.py), this build's (the
# extension installed for PG_CONFIG, relay/chat-relay) against a baseline
# when BASELINE_PGBIN (a PostgreSQL bin folder with the baseline's extension
# installed) and BASELINE_RELAY (its chat-relay) are given, else alone.
PRESENCE_BENCH_ARGS = --pgbin $(shell $(PG_CONFIG) --bindir) --relay relay/chat-relay \
	$(if $(BASELINE_PGBIN),--baseline-pgbin $(BASELINE_PGBIN) --baseline-relay $(BASELINE_RELAY))
bench-presence: deps
	$(MAKE) all
	$(MAKE) install
	bench/presence_reconnect.py $(PRESENCE_BENCH_ARGS)

# chat-notify's webhooks (bench/notify_webhooks.py): deliveries per second,
# send's commit -> receiver latency, chat-notify's CPU and RSS, and
# send_message with webhooks off and on; this build's (the extension
# installed for PG_CONFIG, relay/chat-notify), and against a build from
# before webhooks when NOTIFY_BASELINE_PGBIN (a PostgreSQL bin folder with
# that extension installed) is given.
NOTIFY_BENCH_ARGS = --pgbin $(shell $(PG_CONFIG) --bindir) --notify relay/chat-notify \
	$(if $(NOTIFY_BASELINE_PGBIN),--baseline-pgbin $(NOTIFY_BASELINE_PGBIN))
bench-notify: deps
	$(MAKE) all
	$(MAKE) install
	bench/notify_webhooks.py $(NOTIFY_BENCH_ARGS)
	bench/notify_email.py
	$(MAKE) -C relay chat-notify
	bench/notify_push.py $(PUSH_BENCH_ARGS)

# chat-notify's push (bench/notify_push.py): Web Push, FCM and APNs to the
# local services of test/notify/push_services/, each in its own process:
# pushes per second of a preloaded backlog, due -> service latency, and
# chat-notify's memory with 100,000 devices registered. PUSH_BENCH_EXTRA:
# more options (--runs, --only throughput,latency,memory, ...).
PUSH_BENCH_ARGS = --pgbin $(shell $(PG_CONFIG) --bindir) --notify relay/chat-notify $(PUSH_BENCH_EXTRA)
bench-push: deps
	$(MAKE) all
	$(MAKE) install
	$(MAKE) -C relay chat-notify
	bench/notify_push.py $(PUSH_BENCH_ARGS)

# chat.maintain against pg_partman (SMALL=1 for a quick run)
bench-maintenance: deps
	$(MAKE) all
	$(MAKE) install
	bench/maintenance.sh
