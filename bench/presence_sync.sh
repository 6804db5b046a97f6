#!/usr/bin/env bash
# presence_sync of many users (bench/presence_sync.sh alone; after make install).
# A private cluster, one relay id: each run times, with psql's \timing,
#   on:  chat.presence_sync('bench', users 1..N) from nobody online
#        (N rows made, N last_seen rows, N/10 presence events)
#   off: chat.presence_sync('bench', '{}') right after (the N rows go)
# after emptying chat.presence and chat.last_seen (untimed). Both include
# the commit, which copies the events into the queue; not their publication.
# Prints the median of each over PRESENCE_RUNS runs.
#
# Knobs: PRESENCE_USERS (100000), PRESENCE_RUNS (5), PRESENCE_PORT (55460), PGBIN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
users=${PRESENCE_USERS:-100000}
runs=${PRESENCE_RUNS:-5}
port=${PRESENCE_PORT:-55460}
work=$(mktemp -d /tmp/chat-bench-presence.XXXXXX)
chmod 755 "$work"
data=$work/data
cleanup() {
	status=$?
	[ $status -ne 0 ] && [ -f "$data/server.log" ] && tail -n 20 "$data/server.log" >&2
	"$top/test/cluster.sh" stop "$data" || true
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT

"$top/test/cluster.sh" start "$data" "$port"
"$top/test/cluster.sh" createdb "$data" "$port" bench
psql_b() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U postgres -d bench "$@"; }
psql_b -v users="$users" -f "$here/presence_sync.sql"

# Milliseconds of the one timed statement of a psql run.
timed() { psql_b -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/on"
: >"$work/off"
for r in $(seq "$runs"); do
	psql_b -c 'TRUNCATE chat.presence, chat.last_seen' -c 'CHECKPOINT'
	timed "SELECT chat.presence_sync('bench', ARRAY(SELECT generate_series(1, $users))::bigint[])" >>"$work/on"
	timed "SELECT chat.presence_sync('bench', '{}')" >>"$work/off"
	echo "run $r: on $(tail -1 "$work/on") ms, off $(tail -1 "$work/off") ms"
done
printf "presence_sync of %d users, median of %d runs: on %s ms, off %s ms\n" "$users" "$runs" \
	"$(median <"$work/on")" "$(median <"$work/off")"
