#!/usr/bin/env bash
# A throwaway S3-compatible server for the end-to-end attachment tests: Ceph's
# RADOS Gateway (Debian's radosgw, which verifies AWS Signature V4) on a
# one-monitor, one-OSD Ceph cluster kept in memory (memstore), no cephx,
# listening on 127.0.0.1 only.
#   rgw.sh start DIR PORT ACCESS_KEY SECRET_KEY   start; prints nothing, exits 0 when S3 answers
#   rgw.sh stop DIR                               stop every daemon started in DIR
# PORT is the S3 port; the monitor uses PORT+1.
set -euo pipefail
cmd=$1 dir=$2

stop() {
	local pids=() f pid
	for f in "$dir"/run/*.pid; do
		[ -f "$f" ] && pid=$(cat "$f" 2>/dev/null) && [ -n "$pid" ] && pids+=("$pid")
	done
	[ ${#pids[@]} -eq 0 ] && return 0
	kill "${pids[@]}" 2>/dev/null || true
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -f "$dir"/run/*.pid
}

# Run "$@" until it succeeds, for at most $1 seconds.
wait_for() {
	local limit=$1 start=$SECONDS
	shift
	until "$@" >/dev/null 2>&1; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			echo "rgw.sh: gave up waiting for: $* (logs in $dir/log)" >&2
			exit 1
		fi
		sleep 0.2
	done
}

new_osd() { ceph -c "$conf" --connect-timeout 3 osd new "$1" >"$dir/osd-id"; }
osd_up() { ceph -c "$conf" --connect-timeout 3 osd stat | grep -q "1 up"; }

case $cmd in
start)
	port=$3 access=$4 secret=$5
	monport=$((port + 1))
	stop
	rm -rf "$dir"
	mkdir -p "$dir"/{run,log,mon,osd}
	# a failed start says what failed and leaves nothing running
	trap 'echo "rgw.sh: failed ($?): $BASH_COMMAND" >&2' ERR
	trap 'status=$?; if [ $status -ne 0 ]; then stop; tail -n 8 "$dir"/log/*.log >&2 2>/dev/null; fi; exit $status' EXIT
	fsid=$(uuidgen)
	conf=$dir/ceph.conf
	cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$monport
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.e2e]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw dns name = localhost
CONF
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$monport]" "$dir/monmap" >/dev/null
	ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
	ceph-mon -c "$conf" -i a
	wait_for 30 ceph -c "$conf" --connect-timeout 3 health
	uuid=$(uuidgen)
	# the monitor may answer health before it takes OSD commands: retry
	wait_for 30 new_osd "$uuid"
	id=$(cat "$dir/osd-id")
	mkdir -p "$dir/osd/osd.$id"
	ceph-osd -c "$conf" -i "$id" --no-mon-config --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
	ceph-osd -c "$conf" -i "$id" --no-mon-config
	wait_for 60 osd_up
	# --no-mon-config: pacific radosgw can crash applying config from the monitor
	radosgw -c "$conf" -n client.rgw.e2e --no-mon-config
	wait_for 90 curl -s -o /dev/null "http://127.0.0.1:$port/"
	wait_for 60 radosgw-admin -c "$conf" -n client.rgw.e2e --no-mon-config user create \
		--uid=e2e --display-name=e2e --access-key="$access" --secret-key="$secret"
	;;
stop)
	stop
	;;
*)
	echo "usage: $0 start DIR PORT ACCESS_KEY SECRET_KEY | stop DIR" >&2
	exit 2
	;;
esac
