#!/usr/bin/env bash
# Installs the Debian packages a profile needs, only those that are missing
# (so a second run is quick and offline), and for `test` the browser test's
# npm packages (npm ci, only when missing or stale).
#   install-deps.sh run     build the extension and the daemons, run the demo (make run)
#   install-deps.sh s3      the local object store of the tests and of make run S3=1
#   install-deps.sh test    run + s3 + what the test suites use (make test)
#   install-deps.sh ha      run + the PostgreSQL failover test's (make test-ha: pg_auto_failover, pytest)
#   install-deps.sh bench   test + ha + what the benchmarks use (make bench)
# Several profiles may be given; none means bench (everything).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

run=(
	build-essential
	postgresql-15 postgresql-server-dev-15
	libpq-dev libjansson-dev libwebsockets-dev libwebsockets-evlib-ev libev-dev libjwt-dev libssl-dev
	libcurl4-openssl-dev # chat-notify: webhooks, SMTP
	python3 curl # test/demo.sh: a free port, the relay's /healthz
	python3-aiosmtpd # test/notify-demo.sh: the SMTP sink mail lands in (.run/mail/)
)
# An S3-compatible server that verifies signatures: Ceph's RADOS Gateway on a
# one-OSD in-memory cluster (test/s3/rgw.sh), and botocore to make its bucket.
s3=(ceph-mon ceph-osd ceph-common radosgw uuid-runtime curl python3-botocore)
test=(
	postgresql-contrib postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	python3-psycopg2 python3-pytest python3-websockets python3-cryptography python3-aiosmtpd python3-h2
	openssl # test/notify/test_email.py: a throwaway certificate for STARTTLS
	pgbouncer # test/events/test_pgbouncer.py: API calls through transaction pooling
	valgrind # the relay test that runs the plain build under it
	chromium # the browser test (playwright-core drives Debian's chromium)
	clang libclang-rt-dev # the fuzz suite: libFuzzer and the sanitizers' runtimes of Debian's clang
	haproxy nginx-light # the ha suite: relays behind deploy/haproxy.cfg and deploy/nginx.conf (the tests start their own on test ports; Debian also starts the packaged services: `systemctl disable --now haproxy nginx` where unwanted)
)
# test/ha/test_failover.py: a pg_auto_failover monitor and pair (pg_autoctl)
ha=(postgresql-15-auto-failover pg-auto-failover-cli python3-psycopg2 python3-pytest python3-websockets)
bench=(postgresql-15-partman jq bc)

profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(bench)
packages=() node=0
for p in "${profiles[@]}"; do
	case $p in
	run) packages+=("${run[@]}") ;;
	s3) packages+=("${s3[@]}") ;;
	test) packages+=("${run[@]}" "${s3[@]}" "${test[@]}") node=1 ;;
	ha) packages+=("${run[@]}" "${ha[@]}") ;;
	bench) packages+=("${run[@]}" "${s3[@]}" "${test[@]}" "${ha[@]}" "${bench[@]}") node=1 ;;
	*)
		echo "usage: $0 [run|s3|test|ha|bench]..." >&2
		exit 2
		;;
	esac
done

missing=()
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Node.js for the client's unit tests and the browser test: Debian's nodejs
# unless a node is already there (e.g. NodeSource's); npm only when the
# browser test's packages must be installed.
browser=$here/browser
npm_ci=0
if [ $node = 1 ]; then
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	if [ ! -f "$browser/node_modules/playwright-core/package.json" ] ||
		[ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
		npm_ci=1
		command -v npm >/dev/null 2>&1 || missing+=(npm)
	fi
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]}; run as root or install them" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core for the browser test (test/browser/package-lock.json). It
# drives Debian's /usr/bin/chromium: no browser is ever downloaded.
if [ $npm_ci = 1 ]; then
	echo "npm ci in test/browser"
	(cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
