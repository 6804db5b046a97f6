#!/usr/bin/env bash
# The chat-notify of `make run`: one chat-notify next to the demo relay
# (test/demo.sh) on the cluster of test/cluster.sh, sending its email
# digests to a local SMTP sink (test/notify/smtp_sink.py) that keeps every
# message as a file in .run/mail/, and signing Web Push with the demo's
# VAPID key (.run/vapid.pem, made by test/vapid-key.sh: the relay gives its
# public half to browsers). State in .run/ as demo.sh keeps its:
# notify.conf, notify.log, notify.pid, smtp.pid, smtp.log, the ports.
#   notify-demo.sh start PGDIR PGPORT DB [ADMIN_PORT] [SMTP_PORT]   start unless running
#   notify-demo.sh stop                                             stop both (SIGTERM)
#   notify-demo.sh hello                                            say where the mail lands
# ADMIN_PORT (/healthz, /metrics) defaults to 8091, SMTP_PORT to 2525; a
# taken port moves to the next free one. RUN_STATE overrides .run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run=${RUN_STATE:-$root/.run}
notify_bin=${NOTIFY_BIN:-$root/relay/chat-notify}
cmd=${1:-}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# pid file $1 holds a live process whose command line has $2
alive() {
	[ -f "$run/$1" ] || return 1
	local pid
	pid=$(cat "$run/$1")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

port_free() {
	/usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# the first free port from $1 (at most 50 tried)
free_from() {
	local p=$1
	while ! port_free "$p"; do
		p=$((p + 1))
		if [ "$p" -gt $(($1 + 50)) ]; then
			echo "notify-demo.sh: no free port from $1 to $(($1 + 50))" >&2
			return 1
		fi
	done
	echo "$p"
}

start_sink() {
	local port
	port=$(free_from "$1")
	mkdir -p "$run/mail"
	nohup /usr/bin/python3 "$here/notify/smtp_sink.py" --listen "127.0.0.1:$port" --dir "$run/mail" \
		>>"$run/smtp.log" 2>&1 </dev/null &
	echo $! >"$run/smtp.pid"
	echo "$port" >"$run/smtp.port"
	for _ in $(seq 1 100); do
		port_free "$port" || return 0	# it listens
		if ! kill -0 "$(cat "$run/smtp.pid")" 2>/dev/null; then
			echo "notify-demo.sh: the SMTP sink exited; its log:" >&2
			tail -n 20 "$run/smtp.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "notify-demo.sh: the SMTP sink does not listen; see $run/smtp.log" >&2
	return 1
}

start_notify() {
	local pgdir=$1 pgport=$2 db=$3 port app="" vapid=""
	port=$(free_from "$4")
	[ -f "$run/port" ] && app="http://127.0.0.1:$(cat "$run/port")/"
	# the key of demo.sh's relay (made here if the relay has not run yet)
	if "$here/vapid-key.sh" "$run" >/dev/null; then
		vapid="vapid_key_file = \"$run/vapid.pem\"
vapid_subject = \"mailto:demo@localhost\""
	else
		echo "notify-demo.sh: no VAPID key: chat-notify runs without Web Push" >&2
	fi
	cat >"$run/notify.conf" <<CONF
# chat-notify of \`make run\` (written by test/notify-demo.sh): development only
listen = "127.0.0.1:$port"
db = "host=$pgdir port=$pgport dbname=$db user=chat_notify"
worker_id = "demo-notify"
smtp_url = "smtp://127.0.0.1:$(cat "$run/smtp.port")"
smtp_from = "chat@localhost"
app_url = "$app"
$vapid
CONF
	echo "$port" >"$run/notify.port"
	nohup "$notify_bin" --config "$run/notify.conf" >>"$run/notify.log" 2>&1 </dev/null &
	echo $! >"$run/notify.pid"
	for _ in $(seq 1 150); do
		curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz" && return 0
		if ! kill -0 "$(cat "$run/notify.pid")" 2>/dev/null; then
			echo "notify-demo.sh: chat-notify exited; its log:" >&2
			tail -n 20 "$run/notify.log" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "notify-demo.sh: chat-notify is not healthy after 30 s; see $run/notify.log" >&2
	return 1
}

stop_one() {
	local pidfile=$1 what=$2 pid
	if alive "$pidfile" "$3"; then
		pid=$(cat "$run/$pidfile")
		kill -TERM "$pid"
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "$what stopped"
	fi
	rm -f "$run/$pidfile"
}

case $cmd in
start)
	pgdir=$2 pgport=$3 db=$4
	if [ ! -x "$notify_bin" ]; then
		echo "notify-demo.sh: $notify_bin is missing: run make first" >&2
		exit 1
	fi
	mkdir -p "$run"
	chmod 700 "$run"
	# chat-notify logs in as chat_notify: the claim and result functions, chat_events
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$pgport" -U postgres -d "$db" -c \
		"ALTER ROLE chat_notify LOGIN"
	if alive smtp.pid smtp_sink.py; then
		echo "SMTP sink already running (pid $(cat "$run/smtp.pid"))"
	else
		start_sink "${6:-2525}"
	fi
	if alive notify.pid "chat-notify.*--config $run/notify.conf"; then
		echo "chat-notify already running (pid $(cat "$run/notify.pid"))"
	else
		start_notify "$pgdir" "$pgport" "$db" "${5:-8091}"
	fi
	;;
stop)
	stop_one notify.pid chat-notify "chat-notify.*--config $run/notify.conf"
	stop_one smtp.pid "SMTP sink" smtp_sink.py
	;;
hello)
	if alive notify.pid "chat-notify.*--config $run/notify.conf"; then
		cat <<MSG

chat-notify:   http://127.0.0.1:$(cat "$run/notify.port")/metrics (webhooks, email digests)
  mail from chat-notify lands in $run/mail/ (one .eml file per message;
  SMTP sink on 127.0.0.1:$(cat "$run/smtp.port"))
  a user gets digests once they have an address, e.g.
    SELECT chat.set_notify_prefs(2, '{"email": "immediately", "email_address": "boris@example.test"}');
  and are offline (30 s after leaving) with an unread message
  Web Push:    press Notifications in the demo app (a browser with a push
  service: Chrome or Firefox, not a private window); signed with
  $run/vapid.pem, subject mailto:demo@localhost
  log:         $run/notify.log
MSG
	fi
	;;
*)
	echo "usage: $0 start PGDIR PGPORT DB [ADMIN_PORT] [SMTP_PORT] | stop | hello" >&2
	exit 2
	;;
esac
