#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing need,
# only those that are missing (so a second run is quick and offline), and
# the browser test's npm packages (npm ci, only when missing or stale).
set -euo pipefail

packages=(
	build-essential
	postgresql-15 postgresql-server-dev-15 postgresql-contrib
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	postgresql-15-partman
	libpq-dev libjansson-dev libwebsockets-dev libwebsockets-evlib-ev libev-dev libjwt-dev libssl-dev
	python3 python3-psycopg2 python3-pytest python3-websockets python3-cryptography
	valgrind # the relay test that runs the plain build under it
	chromium
	jq bc # benchmark drivers
	# attachments: independent SigV4 implementation, HTTP client, and an
	# S3-compatible server that verifies signatures (Ceph RADOS Gateway on a
	# one-OSD in-memory cluster, test/s3/rgw.sh)
	python3-botocore curl uuid-runtime ceph-mon ceph-osd ceph-common radosgw
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Node.js for the client's unit tests and the browser test: Debian's nodejs
# and npm unless a node (with its npm, e.g. NodeSource's) is already there.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

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
browser=$(cd "$(dirname "$0")" && pwd)/browser
if [ ! -f "$browser/node_modules/playwright-core/package.json" ] ||
	[ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
	echo "npm ci in test/browser"
	(cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
