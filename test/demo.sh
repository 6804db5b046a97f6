#!/usr/bin/env bash
# The demo relay of `make run`: a chat-relay in the background serving the
# demo app (relay/www) with development tokens, on the cluster of
# test/cluster.sh. Its state lives in .run/ (never committed): a generated
# HS256 secret, the Web Push key (test/vapid-key.sh: vapid.pem for
# chat-notify, its public half in the relay's welcome), the config file, the
# log, the pid and the port.
#   demo.sh start PGDIR PGPORT DB [HTTP_PORT]   start unless running; print the URL
#   demo.sh stop                                 stop the relay (SIGTERM)
#   demo.sh url                                  print the URL of the running relay
# HTTP_PORT defaults to 8080; when it is taken, the next free port is used.
# RUN_STATE overrides the state folder (default: .run at the project top).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run=${RUN_STATE:-$root/.run}
relay_bin=${RELAY_BIN:-$root/relay/chat-relay}
cmd=${1:-}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

running() {
	[ -f "$run/relay.pid" ] || return 1
	local pid
	pid=$(cat "$run/relay.pid")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "chat-relay.*--config $run/relay.conf"
}

port_free() {
	/usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the relay binds: TIME_WAIT is free
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

healthy() {
	curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"
}

url() {
	echo "http://127.0.0.1:$(cat "$run/port")/"
}

case $cmd in
start)
	pgdir=$2 pgport=$3 db=$4 want=${5:-8080}
	if [ ! -x "$relay_bin" ]; then
		echo "demo.sh: $relay_bin is missing: run make first" >&2
		exit 1
	fi
	mkdir -p "$run"
	chmod 700 "$run"
	if [ ! -s "$run/jwt.secret" ]; then
		(umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$run/jwt.secret")
	fi
	# browsers subscribe to Web Push with it; chat-notify signs with vapid.pem
	vapid=$("$here/vapid-key.sh" "$run") || { echo "demo.sh: no VAPID key: the demo runs without Web Push" >&2; vapid=""; }
	# the relay logs in as chat_relay: EXECUTE on the API through chat_app, nothing else
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$pgport" -U postgres -d "$db" -c \
		"ALTER ROLE chat_relay LOGIN"
	if running; then
		echo "demo relay already running (pid $(cat "$run/relay.pid"))"
	else
		port=$want
		while ! port_free "$port"; do
			port=$((port + 1))
			if [ "$port" -gt $((want + 50)) ]; then
				echo "demo.sh: no free port from $want to $((want + 50))" >&2
				exit 1
			fi
		done
		[ "$port" != "$want" ] && echo "port $want is taken: the demo relay uses $port"
		cat >"$run/relay.conf" <<CONF
# chat-relay of \`make run\` (written by test/demo.sh): development only
listen = "127.0.0.1:$port"
db = "host=$pgdir port=$pgport dbname=$db user=chat_relay"
relay_id = "demo-$port"
jwt_alg = "HS256"
jwt_secret_file = "$run/jwt.secret"
allow_origin = "http://127.0.0.1:$port"
allow_origin = "http://localhost:$port"
www = "$root/relay/www"
dev_tokens = true
vapid_public_key = "$vapid"
CONF
		echo "$port" >"$run/port"
		nohup "$relay_bin" --config "$run/relay.conf" >>"$run/relay.log" 2>&1 </dev/null &
		echo $! >"$run/relay.pid"
		for _ in $(seq 1 150); do
			healthy "$port" && break
			if ! kill -0 "$(cat "$run/relay.pid")" 2>/dev/null; then
				echo "demo.sh: the relay exited; its log:" >&2
				tail -n 20 "$run/relay.log" >&2
				exit 1
			fi
			sleep 0.2
		done
		if ! healthy "$port"; then
			echo "demo.sh: the relay is not healthy after 30 s; see $run/relay.log" >&2
			exit 1
		fi
	fi
	;;
stop)
	if running; then
		pid=$(cat "$run/relay.pid")
		kill -TERM "$pid"
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "demo relay stopped"
	fi
	rm -f "$run/relay.pid"
	;;
url)
	running && url
	;;
hello)
	if running; then
		cat <<MSG

The demo app:  $(url)
  (pick a seeded user: Ana, Boris, Vesna or Dragan; open the URL in two
  browsers or a private window to chat between two users)
  relay log:   $run/relay.log
MSG
	fi
	;;
*)
	echo "usage: $0 start PGDIR PGPORT DB [HTTP_PORT] | stop | url | hello" >&2
	exit 2
	;;
esac
