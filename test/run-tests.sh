#!/usr/bin/env bash
# The test suites, one function each. `make test` runs them all, in order;
# each `make check-SUITE` (and `make installcheck` for pgtap) runs one.
#   run-tests.sh                    every suite, in the order below
#   run-tests.sh SUITE...           these: client pgtap tour dump events relay
#                                   ha notify maintenance browser attachments demo fuzz
#   run-tests.sh --existing pgtap   on the server of the PG* environment
# Every suite but client and fuzz needs a server: a throwaway cluster on TEST_PORT
# (54329) under /tmp, with the database chat_test (chat, pgtap, dblink),
# started here and removed at the end, failed or not. With --existing (what
# `make installcheck` passes when PGHOST or PGPORT is set, as PGXS's
# installcheck uses the libpq environment) the database chat_installcheck is
# (re)made on that server instead; it must have the extension installed and
# preloaded (shared_preload_libraries = 'chat'), pgtap and dblink available,
# and PGUSER a superuser. Only pgtap may run so.
# Ports beside TEST_PORT: +1 the worker and no-preload clusters of the
# maintenance and event tests, +2 the crash cluster, +40 and +41 radosgw of
# the attachment tests, +50, +51 and +60 the demo's store and relay, +70 on
# the ha suite's relays and balancers (or HA_TEST_PORT_BASE); the relay
# tests take theirs from RELAY_TEST_PORT_BASE, the notify tests (their
# daemons and webhook receivers) from NOTIFY_TEST_PORT_BASE.
# Exits non-zero on the first failing suite.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ALL=(client pgtap tour dump events relay ha notify maintenance browser attachments demo fuzz)
PYTEST=(/usr/bin/python3 -m pytest -q -p no:cacheprovider)
export PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

relay_build() { [ -x "$root/relay/chat-${1:-relay}-asan" ] && echo "ASan/UBSan build" || echo "plain build"; }

suite_client() {
	echo "== chat-client.js (node --test)"
	node --test "$here"/client/*.test.mjs
}

suite_pgtap() {
	echo "== pgTAP suites (pg_prove)"
	pg_prove --failures "$here"/pgtap/*.sql
}

suite_tour() {
	echo "== README tour"
	"$here/readme_tour.sh" >/dev/null
	echo "README tour: ok"
}

suite_dump() {
	echo "== pg_dump and restore"
	"$here/dump_restore.sh"
}

suite_events() {
	echo "== event publication (pytest)"
	"${PYTEST[@]}" "$here/events"
}

suite_relay() {
	echo "== chat-relay (pytest, $(relay_build))"
	"${PYTEST[@]}" "$here/relay"
}

# Relays behind the shipped load-balancer configs (deploy/haproxy.cfg,
# deploy/nginx.conf): real haproxy and nginx, chat-client.js in Node.
suite_ha() {
	echo "== relays behind haproxy and nginx (pytest, $(relay_build))"
	"${PYTEST[@]}" "$here/ha/test_balancer.py"	# test_failover.py: make test-ha
}

suite_notify() {
	echo "== chat-notify (pytest, $(relay_build notify))"
	"${PYTEST[@]}" "$here/notify"
}

suite_maintenance() {
	echo "== partition maintenance (pytest)"
	"${PYTEST[@]}" "$here/maintenance"
}

browser_packages() {
	if [ ! -f "$here/browser/node_modules/playwright-core/package.json" ]; then
		(cd "$here/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
	fi
}

suite_browser() {
	echo "== browser: the demo in chromium (playwright-core, $(relay_build) of the relays)"
	browser_packages
	node "$here/browser/run.mjs"
	echo "browser screenshots: $here/browser/artifacts/"
}

suite_attachments() {
	echo "== attachments (botocore comparison, end to end against radosgw)"
	"${PYTEST[@]}" "$here/attachments"
}

# `make run S3=1` on the test cluster: test/demo.sh's relay and
# test/s3/demo-store.sh's object store, state in a folder of its own; files
# sent through the demo in chromium (test/browser/demo-s3.mjs).
suite_demo() {
	echo "== the demo with its object store (make run S3=1's scripts, chromium)"
	local run="$dir/demo" status=0
	"$here/cluster.sh" createdb "$PGDATA_DIR" "$PGPORT" chat_demo
	"$here/cluster.sh" seed "$PGDATA_DIR" "$PGPORT" chat_demo
	# make run's database: only the chat roles may connect
	[ "$(psql -X -tA -d chat_demo -c "SELECT status FROM chat.security_report() WHERE item = 'public_connect'")" = ok ] ||
		{ echo "the demo database lets PUBLIC connect" >&2; return 1; }
	browser_packages
	export RUN_STATE=$run RUN_S3_PORT=$((PGPORT + 50))
	"$here/demo.sh" start "$PGDATA_DIR" "$PGPORT" chat_demo $((PGPORT + 60)) &&
		"$here/s3/demo-store.sh" start "$PGDATA_DIR" "$PGPORT" chat_demo &&
		node "$here/browser/demo-s3.mjs" "$("$here/demo.sh" url)" || status=$?
	"$here/s3/demo-store.sh" stop >/dev/null || true
	"$here/demo.sh" stop >/dev/null || true
	[ $status = 0 ] || tail -n 20 "$run/relay.log" "$run/s3/start.log" 2>/dev/null
	unset RUN_STATE RUN_S3_PORT
	return $status
}

# The libFuzzer harnesses (test/fuzz/run.sh), FUZZ_TEST_SECONDS (10) each,
# from their seed corpora: any crash, leak or sanitizer report fails.
suite_fuzz() {
	echo "== fuzzing (libFuzzer, ASan/UBSan, ${FUZZ_TEST_SECONDS:-10} s per harness)"
	FUZZ_CORPUS=fresh "$here/fuzz/run.sh" "${FUZZ_TEST_SECONDS:-10}"
}

# What each suite runs with, so that a machine set up for `make run` only
# hears what to install instead of a traceback.
needs() {
	case $1 in
	client) echo node ;;
	pgtap) echo pg_prove ;;
	events | maintenance) echo pytest psycopg2 ;;
	relay) echo pytest psycopg2 websockets cryptography valgrind ;;
	ha) echo pytest psycopg2 websockets node haproxy nginx ;;
	notify) echo pytest psycopg2 aiosmtpd openssl ;;
	browser) echo node chromium ;;
	attachments) echo pytest psycopg2 botocore radosgw ;;
	demo) echo node chromium botocore radosgw curl ;;
	fuzz) echo clang ;;
	esac
}

check_tools() {
	local s t missing=()
	for s in "$@"; do
		for t in $(needs "$s"); do
			case $t in
			pytest | psycopg2 | websockets | cryptography | botocore | aiosmtpd)
				/usr/bin/python3 -c "import $t" 2>/dev/null || missing+=("python3 $t ($s)") ;;
			haproxy | nginx) # in /usr/sbin, which a user's PATH may lack
				command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t ($s)") ;;
			*) command -v "$t" >/dev/null 2>&1 || missing+=("$t ($s)") ;;
			esac
		done
	done
	if [ ${#missing[@]} -gt 0 ]; then
		printf 'run-tests.sh: missing %s\n' "${missing[@]}" >&2
		echo "run-tests.sh: install them with: make deps (as root)" >&2
		exit 1
	fi
}

# The throwaway cluster tests this build: the extension it loads must be the
# one `make` built (a forgotten `make install` tests the previous one).
check_installed() {
	local lib share script src
	lib=$("$PGBIN/pg_config" --pkglibdir)/chat.so
	share=$("$PGBIN/pg_config" --sharedir)/extension
	# the install script the Makefile makes from sql/chat.sql and the files after it
	script=chat--$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$root/chat.control").sql
	[ -f "$root/chat.so" ] || { echo "run-tests.sh: chat.so is not built: run make" >&2; exit 1; }
	for src in "$root"/sql/*.sql; do
		if [ "$src" -nt "$root/sql/$script" ]; then
			echo "run-tests.sh: sql/$script is older than $src: run make install (as root)" >&2
			exit 1
		fi
	done
	if ! cmp -s "$root/chat.so" "$lib" || ! cmp -s "$root/chat.control" "$share/chat.control" ||
		! cmp -s "$root/sql/$script" "$share/$script"; then
		echo "run-tests.sh: the installed extension is not this build: run make install (as root)" >&2
		exit 1
	fi
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A throwaway cluster and its database chat_test; removed by cleanup().
start_cluster() {
	local port=${TEST_PORT:-54329}
	dir=$(mktemp -d /tmp/chat-test.XXXXXX)
	chmod 755 "$dir"
	export PGDATA_DIR="$dir/data"
	"$here/cluster.sh" start "$PGDATA_DIR" "$port"
	"$here/cluster.sh" createdb "$PGDATA_DIR" "$port" chat_test
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$PGDATA_DIR" -p "$port" -U postgres -d chat_test \
		-c "CREATE EXTENSION IF NOT EXISTS pgtap; CREATE EXTENSION IF NOT EXISTS dblink;"
	export PGHOST="$PGDATA_DIR" PGPORT="$port" PGUSER=postgres PGDATABASE=chat_test
}

# The server of the PG* environment: chat_installcheck made afresh there.
use_existing() {
	local db=chat_installcheck
	if [ "$(id -u)" -eq 0 ] && [ -z "${PGUSER:-}" ]; then export PGUSER=postgres; fi
	local preload
	preload=$(PGDATABASE=postgres psql -X -tA -c "SHOW shared_preload_libraries")
	if [[ ",${preload// /}," != *,chat,* ]]; then
		echo "run-tests.sh: ${PGHOST:-local socket}:${PGPORT:-5432} does not preload chat (shared_preload_libraries = '$preload')" >&2
		exit 1
	fi
	PGDATABASE=postgres psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
	PGDATABASE=$db psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION chat; CREATE EXTENSION pgtap; CREATE EXTENSION dblink;"
	export PGDATABASE=$db
	echo "== on ${PGHOST:-local socket}:${PGPORT:-5432}, database $db (dropped and made again)"
}

cleanup() {
	local status=$?
	if [ -n "${dir:-}" ]; then
		if [ $status -ne 0 ] && [ -f "$PGDATA_DIR/server.log" ]; then
			echo "--- last lines of the server log ---"
			tail -n 40 "$PGDATA_DIR/server.log"
		fi
		"$here/cluster.sh" stop "$PGDATA_DIR" || true
		rm -rf "$dir"
	fi
	exit $status
}

main() {
	local existing=0 s
	if [ "${1:-}" = --existing ]; then existing=1; shift; fi
	local suites=("$@")
	[ ${#suites[@]} -gt 0 ] || suites=("${ALL[@]}")
	for s in "${suites[@]}"; do
		if ! declare -F "suite_$s" >/dev/null; then
			echo "run-tests.sh: no suite '$s' (suites: ${ALL[*]})" >&2
			exit 2
		fi
	done
	if [ $existing = 1 ] && [ "${suites[*]}" != pgtap ]; then
		echo "run-tests.sh: --existing runs pgtap only (the other suites kill backends and start clusters)" >&2
		exit 2
	fi
	check_tools "${suites[@]}"
	trap cleanup EXIT
	if [ $existing = 1 ]; then
		use_existing
	elif [ -n "$(printf '%s\n' "${suites[@]}" | grep -v -x -E 'client|fuzz')" ]; then
		check_installed
		start_cluster
	fi
	local times="" t0
	for s in "${suites[@]}"; do
		t0=$SECONDS
		"suite_$s"
		times+="${times:+, }$s $((SECONDS - t0)) s"
	done
	echo "== passed: $times"
}

main "$@"
