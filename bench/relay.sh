#!/usr/bin/env bash
# bench/relay.sh: chat-relay and the Node.js peer (../shared/peers/node-relay)
# side by side: same PostgreSQL, same events, same machine, one after the
# other. Prints JSON lines (also appended to $DIR/results.jsonl), then the
# medians of every run in $DIR (bench/relay_report.py); docs/benchmarks-relay.md
# records RUNS=3. QUICK=1 shortens every phase. Bounded: each phase stops by itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${BENCH_PG_PORT:-54850}
DIR=${BENCH_DIR:-/tmp/chat-bench-relay}
OURS_PORT=${OURS_PORT:-18500}
NODE_PORT=${NODE_PORT:-18501}
PEER=${PEER:-$root/../shared/peers/node-relay}
RELAY_BIN=${RELAY_BIN:-$root/relay/chat-relay}  # another build, to compare two
DUR=${DUR:-10}
FANOUT_RATES=${FANOUT_RATES:-"200 400 600 800 1000 1200 1500 1750 2000 2500 3000"}
RELAYS=${RELAYS:-"ours node"}               # which relays, in this order
PHASES=${PHASES:-"rss latency fanout full"} # which measurements
RSS_CONNS=${RSS_CONNS:-"1000 10000"}
FULL_RATES=${FULL_RATES:-"500 2000"}          # send_message/s for the full path
[ "${QUICK:-0}" = 1 ] && DUR=5

# RUNS=3: three whole runs, then one summary of their medians
if [ "${RUNS:-1}" -gt 1 ]; then
	for i in $(seq "$RUNS"); do RUNS=1 NO_REPORT=1 "$0"; done
	/usr/bin/python3 "$here/relay_report.py" "$DIR/results.jsonl"
	exit 0
fi
mkdir -p "$DIR"
chmod 755 "$DIR"
export PGBIN
"$root/test/cluster.sh" start "$DIR/data" "$PG_PORT"
admin() { psql -X -qtA -U postgres -h "$DIR/data" -p "$PG_PORT" -d postgres -c "$1"; }
# commit timestamps, for the full path measured from the commit (commit_to_frame.py)
if [ "$(admin 'SHOW track_commit_timestamp')" != on ]; then
	admin 'ALTER SYSTEM SET track_commit_timestamp = on'
	"$root/test/cluster.sh" stop "$DIR/data"
	"$root/test/cluster.sh" start "$DIR/data" "$PG_PORT"
fi
# a new database each run: an extension left by an older checkout would not match this relay
admin 'DROP DATABASE IF EXISTS chat WITH (FORCE)'
"$root/test/cluster.sh" createdb "$DIR/data" "$PG_PORT" chat
export PGHOST="$DIR/data" PGPORT="$PG_PORT" PGUSER=postgres PGDATABASE=chat
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
ALTER ROLE chat_relay LOGIN;  -- CREATE EXTENSION made it NOLOGIN
-- chat k between users 2k-1 and 2k, for the full-path test
SELECT count(chat.open_chat(2 * k - 1, 'direct', NULL, 2 * k)) FROM generate_series(1, 500) k;
SQL

make -s -C "$root/relay" >/dev/null
cc -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -D_GNU_SOURCE \
	-o "$DIR/loadgen" "$here/loadgen.c" -lwebsockets -lcrypto -lev
if [ ! -d "$DIR/peer/node_modules" ]; then
	rm -rf "$DIR/peer" && cp -r "$PEER" "$DIR/peer" && (cd "$DIR/peer" && npm ci --silent)
fi
export NODE_PATH="$DIR/peer/node_modules"
head -c 48 /dev/urandom | base64 | tr -d '\n' > "$DIR/secret"

relay_pid=
start_relay() {   # ours | node
	if [ "$1" = ours ]; then
		"$RELAY_BIN" --listen 127.0.0.1:$OURS_PORT \
			--db "host=$DIR/data port=$PG_PORT dbname=chat user=chat_relay" \
			--jwt-secret-file "$DIR/secret" --allow-origin http://bench.local --relay-id bench \
			--rate 1000 --burst 1000 --log-level warn --event-lib "${EVENT_LIB:-libev}" ${RELAY_FLAGS:-} \
			>"$DIR/ours.log" 2>&1 &
		relay_pid=$!
		port=$OURS_PORT
		for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
	else
		PORT=$NODE_PORT USERS_FIELD=recipients node "$DIR/peer/relay.js" >"$DIR/node.log" 2>&1 &
		relay_pid=$!
		port=$NODE_PORT
		for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/stats" >/dev/null && break; sleep 0.1; done
	fi
}
stop_relay() { kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$relay_pid/status; }
anon_kb() { awk '/^RssAnon/ {print $2}' /proc/$relay_pid/status; }
loadgen() {   # which n hold measure [more options] -> runs in background, sets lg_pid
	local auth=()
	# lws 4.1 clients prefix the Origin with http://
	[ "$1" = ours ] && auth=(--secret "$DIR/secret" --origin bench.local)
	rm -f "$DIR/ready"
	"$DIR/loadgen" --port "$port" --n "$2" --hold "$3" --measure "$4" --ready-file "$DIR/ready" "${auth[@]}" "${@:5}" \
		>"$DIR/loadgen.out" 2>"$DIR/loadgen.err" &
	lg_pid=$!
	for _ in $(seq 1200); do [ -f "$DIR/ready" ] && break; sleep 0.1; done
}
publish() {   # mode rate fanout
	# send_message is a round trip with a commit: more connections to reach the rate
	local conns=4
	[ "$1" = send ] && conns=${SEND_CONNS:-8}
	# the Node peer routes plain events with their recipients inside; ours
	# reads sealed envelopes (OURS_FORMAT=envelope for a build from before
	# sealed events, flat from before the envelope, as RELAY_BIN)
	local format=${OURS_FORMAT:-sealed}
	[ "${which:-}" = node ] && format=flat
	FORMAT=$format MODE=$1 RATE=$2 FANOUT=$3 DURATION=$DUR USERS=1000 CONNS=$conns node "$here/publisher.js" >"$DIR/pub.out"
}
emit() { echo "$1" | tee -a "$DIR/results.jsonl"; }
commit_to_frame() { /usr/bin/python3 "$here/commit_to_frame.py" "$DIR/arrivals"; }
# CPU seconds so far of a process, and of the whole PostgreSQL cluster
pid_cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# the postmaster, its live children, and (cutime, cstime) the ones that ended:
# the publisher's backends are gone when a phase is read
pg_cpu() {
	local pm total
	pm=$(head -1 "$DIR/data/postmaster.pid")
	total=$(awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / t}' "/proc/$pm/stat")
	for p in $(ps -o pid= --ppid "$pm"); do total=$(awk -v a="$total" -v b="$(pid_cpu "$p")" 'BEGIN { print a + b }'); done
	echo "$total"
}
machine_busy() { awk -v t="$(getconf CLK_TCK)" '/^cpu / {print ($2 + $3 + $4 + $7 + $8) / t}' /proc/stat; }
# the relay's kernel-mode CPU seconds and its context switches (voluntary:
# it went to sleep; involuntary: preempted): where its CPU per frame goes
pid_sys() { awk -v t="$(getconf CLK_TCK)" '{print $15 / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pid_switches() { awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n + 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_start() { cpu0=("$(pid_cpu "$relay_pid")" "$(pg_cpu)" "$(pid_cpu "$lg_pid")" "$(machine_busy)" "$(pid_sys "$relay_pid")" "$(pid_switches "$relay_pid")"); }
# {"relay":…,"postgres":…,"loadgen":…,"publisher":…,"machine":…}: CPU seconds over the phase
cpu_json() {
	local now=("$(pid_cpu "$relay_pid")" "$(pg_cpu)" "$(pid_cpu "$lg_pid")" "$(machine_busy)" "$(pid_sys "$relay_pid")" "$(pid_switches "$relay_pid")")
	awk -v r0="${cpu0[0]}" -v r1="${now[0]}" -v p0="${cpu0[1]}" -v p1="${now[1]}" \
		-v l0="${cpu0[2]}" -v l1="${now[2]}" -v m0="${cpu0[3]}" -v m1="${now[3]}" \
		-v s0="${cpu0[4]}" -v s1="${now[4]}" -v c0="${cpu0[5]}" -v c1="${now[5]}" \
		-v pub="$(jq .cpu_s "$DIR/pub.out")" \
		'BEGIN { printf "{\"relay\":%.2f,\"relay_sys\":%.2f,\"relay_switches\":%d,\"postgres\":%.2f,\"loadgen\":%.2f,\"publisher\":%.2f,\"machine\":%.2f}", r1 - r0, s1 - s0, c1 - c0, p1 - p0, l1 - l0, pub, m1 - m0 }'
}

has() { [[ " $PHASES " == *" $1 "* ]]; }
# One measured phase: 1000 clients, the publisher at rate, a JSON line.
phase() {   # test mode rate fanout [extra measuring seconds]
	local more=() commit=
	# send_message: every frame's arrival, to be set against its commit
	[ "$2" = send ] && more=(--arrivals "$DIR/arrivals")
	loadgen $which 1000 1 $((DUR + ${5:-2})) "${more[@]}"
	cpu_start
	publish "$2" "$3" "$4"
	cpu=$(cpu_json)
	wait "$lg_pid" || true
	[ "$2" = send ] && commit=",\"commit_to_frame\":$(commit_to_frame)"
	emit "{\"relay\":\"$which\",\"test\":\"$1\",\"rate\":$3,\"cpu\":$cpu,\"loadgen\":$(cat "$DIR/loadgen.out"),\"publisher\":$(cat "$DIR/pub.out")$commit}"
}
# the full path's floor: commit -> a plain LISTEN client of PostgreSQL, no relay
has full && for rate in $FULL_RATES; do
	/usr/bin/python3 "$here/listen_arrivals.py" "$DIR/arrivals" $((DUR + 8)) &
	la_pid=$!
	sleep 1
	publish send "$rate" 2
	wait "$la_pid"
	emit "{\"relay\":\"none\",\"test\":\"full_path\",\"rate\":$rate,\"publisher\":$(cat "$DIR/pub.out"),\"commit_to_frame\":$(commit_to_frame)}"
done
for which in $RELAYS; do
	# memory per idle connection
	has rss && for n in $RSS_CONNS; do
		start_relay $which
		# warm-up: 200 connections come and go, so the baseline already has
		# the code of handshakes, token checks and JSON paged in (a cold
		# baseline charges megabytes of shared library pages to the first
		# connections)
		loadgen $which 200 0 0
		wait "$lg_pid" || true
		sleep 3
		base=$(rss_kb)
		base_anon=$(anon_kb)
		loadgen $which $n 6 0
		sleep 4
		rss=$(rss_kb)
		anon=$(anon_kb)
		wait "$lg_pid" || true
		emit "{\"relay\":\"$which\",\"test\":\"rss\",\"conns\":$n,\"connected\":$(jq .connected "$DIR/loadgen.out"),\"base_kb\":$base,\"rss_kb\":$rss,\"per_conn_kb\":$(awk -v a="$base" -v b="$rss" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n }'),\"anon_per_conn_kb\":$(awk -v a="$base_anon" -v b="$anon" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n }')}"
		stop_relay
	done
	# latency at 500 and 2000 events/s to 1000 clients, CPU per frame
	start_relay $which
	has latency && for rate in 500 2000; do phase latency notify $rate 2; done
	# fan-out: each event to 100 of 1000 connections
	# (a relay whose p99 passed 1 s at two rates in a row is saturated: the
	# higher rates are skipped, its queues would only grow)
	over=0
	has fanout && for rate in $FANOUT_RATES; do
		if [ "$over" -ge 2 ]; then
			echo "fan-out: $which saturated, $rate events/s and above skipped" >&2
			break
		fi
		phase fanout notify $rate 100
		if awk -v p="$(jq .p99_ms "$DIR/loadgen.out")" 'BEGIN { exit !(p > 1000) }'; then over=$((over + 1)); else over=0; fi
	done
	# full path: send_message commit -> frame (the calls may outlast DUR)
	has full && for rate in $FULL_RATES; do phase full_path send $rate 2 6; done
	stop_relay
done
"$root/test/cluster.sh" stop "$DIR/data"
# results.jsonl keeps every run made in $DIR: the summary is their medians
[ -n "${NO_REPORT:-}" ] || /usr/bin/python3 "$here/relay_report.py" "$DIR/results.jsonl"
