#!/usr/bin/env bash
# The object store of `make run S3=1`: the tests' RADOS Gateway (rgw.sh, in
# memory) with a bucket for the demo, CORS for the demo relay's origins (the
# browser PUTs and GETs the files itself), and chat.storage_config pointing
# at it. State in .run/s3/ (never committed): keys made once, port, logs.
#   demo-store.sh start PGDIR PGPORT DB   start unless running; bucket, CORS, storage settings
#   demo-store.sh off PGDIR PGPORT DB     clear the storage settings if they are this store's
#   demo-store.sh stop                    stop the gateway (its objects are gone)
#   demo-store.sh hello                   print the endpoint when running
# The S3 port is RUN_S3_PORT (7480) or the next free one; its monitor takes
# the port after it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${RUN_STATE:-$root/.run}/s3
bucket=chat-demo
cmd=${1:-}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_db() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U postgres -d "$3" "${@:4}"; }

port_free() {
	/usr/bin/python3 - "$1" <<'PY'
import socket, sys
for port in (int(sys.argv[1]), int(sys.argv[1]) + 1):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons bind: TIME_WAIT is free
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PY
}

endpoint() { echo "http://127.0.0.1:$(cat "$state/port")"; }

running() {
	[ -f "$state/port" ] && [ -f "$state/rgw/run/client.rgw.e2e.pid" ] &&
		kill -0 "$(cat "$state/rgw/run/client.rgw.e2e.pid")" 2>/dev/null &&
		curl -s -o /dev/null --max-time 2 "$(endpoint)/"
}

# The demo relay's origins (test/demo.sh writes its port to .run/port).
origins() {
	local p
	p=$(cat "$state/../port" 2>/dev/null || echo "${RUN_HTTP_PORT:-8080}")
	echo "http://127.0.0.1:$p http://localhost:$p"
}

# The bucket (once) and its CORS rules (each start: the relay's port may change).
bucket_and_cors() {
	/usr/bin/python3 - "$(endpoint)" "$(cat "$state/access")" "$(cat "$state/secret")" "$bucket" $(origins) <<'PY'
import sys
import botocore.session
from botocore.config import Config
endpoint, access, secret, bucket, *origins = sys.argv[1:]
s3 = botocore.session.get_session().create_client(
    "s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=access,
    aws_secret_access_key=secret, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
    "AllowedOrigins": origins, "AllowedMethods": ["PUT", "GET", "HEAD"],
    "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]})
PY
}

configure() {
	local settings
	settings=$(printf '{"endpoint": "%s", "public_endpoint": null, "bucket": "%s", "region": "us-east-1", "access_key": "%s", "secret_key": "%s", "virtual_host": false}' \
		"$(endpoint)" "$bucket" "$(cat "$state/access")" "$(cat "$state/secret")")
	psql_db "$1" "$2" "$3" -v "settings=$settings" >/dev/null <<'SQL'
SELECT chat.configure_storage(:'settings');
SQL
}

start() {
	local pgdir=$1 pgport=$2 db=$3 port
	mkdir -p "$state"
	chmod 700 "$state"
	if [ ! -s "$state/secret" ]; then
		(umask 077 && echo "DEMO$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)" >"$state/access" &&
			head -c 30 /dev/urandom | base64 -w0 | tr '+/' '-_' >"$state/secret")
	fi
	if running; then
		echo "demo object store already running at $(endpoint)/"
	else
		"$here/rgw.sh" stop "$state/rgw" 2>/dev/null || true
		port=${RUN_S3_PORT:-7480}
		while ! port_free "$port"; do
			port=$((port + 1))
			if [ "$port" -gt $((${RUN_S3_PORT:-7480} + 50)) ]; then
				echo "demo-store.sh: no two free ports from ${RUN_S3_PORT:-7480}" >&2
				exit 1
			fi
		done
		echo "$port" >"$state/port"
		echo "starting the demo object store (Ceph radosgw, in memory) on $(endpoint)/"
		# a one-node Ceph start is occasionally refused by a daemon: try twice
		if ! "$here/rgw.sh" start "$state/rgw" "$port" "$(cat "$state/access")" "$(cat "$state/secret")" 2>"$state/start.log"; then
			"$here/rgw.sh" start "$state/rgw" "$port" "$(cat "$state/access")" "$(cat "$state/secret")" 2>"$state/start.log" || {
				echo "demo-store.sh: radosgw did not start:" >&2
				cat "$state/start.log" >&2
				exit 1
			}
		fi
	fi
	bucket_and_cors
	configure "$pgdir" "$pgport" "$db"
}

case $cmd in
start)
	start "$2" "$3" "$4"
	;;
off)
	# settings this script wrote, with the store stopped: back to none, so
	# that uploads answer "not configured" instead of failing at the PUT
	if [ -f "$state/port" ] && ! running; then
		psql_db "$2" "$3" "$4" -v "endpoint=$(endpoint)" >/dev/null <<'SQL'
SELECT chat.configure_storage('{"endpoint": null, "public_endpoint": null, "bucket": null, "access_key": null, "secret_key": null}')
WHERE chat.storage_settings() ->> 'endpoint' = :'endpoint';
SQL
	fi
	;;
stop)
	if [ -d "$state/rgw" ]; then
		running && echo "demo object store stopped"
		"$here/rgw.sh" stop "$state/rgw"
	fi
	;;
hello)
	if running; then
		cat <<MSG
  object store: $(endpoint)/$bucket (Ceph radosgw in memory: make stop forgets the files)
MSG
	else
		echo "  attachments:  off (make run S3=1 starts a local object store for them)"
	fi
	;;
*)
	echo "usage: $0 start PGDIR PGPORT DB | off PGDIR PGPORT DB | stop | hello" >&2
	exit 2
	;;
esac
