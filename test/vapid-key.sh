#!/usr/bin/env bash
# The Web Push (VAPID) key of `make run`, made once in the run folder:
# DIR/vapid.pem, an EC P-256 private key (PKCS#8 PEM) that chat-notify signs
# pushes with (vapid_key_file), and DIR/vapid.pub, its public key as the
# relay sends it to browsers (vapid_public_key: base64url, no padding, of
# the uncompressed point). Prints the public key.
#   vapid-key.sh DIR
set -euo pipefail
dir=${1:?usage: vapid-key.sh DIR}
pem=$dir/vapid.pem
if [ ! -s "$pem" ]; then
	command -v openssl >/dev/null || { echo "vapid-key.sh: openssl is missing" >&2; exit 1; }
	(
		umask 077
		openssl ecparam -name prime256v1 -genkey -noout -out "$pem.tmp"
		openssl pkcs8 -topk8 -nocrypt -in "$pem.tmp" -out "$pem.new"
		rm -f "$pem.tmp"
		mv "$pem.new" "$pem"
	)
	rm -f "$dir/vapid.pub"
fi
if [ ! -s "$dir/vapid.pub" ]; then
	# the DER SubjectPublicKeyInfo ends with the 65-byte point 04 || x || y
	openssl ec -in "$pem" -pubout -outform DER 2>/dev/null | tail -c 65 | base64 | tr '+/' '-_' | tr -d '=\n' >"$dir/vapid.pub.new"
	[ "$(wc -c <"$dir/vapid.pub.new")" -eq 87 ] || { echo "vapid-key.sh: cannot derive the public key of $pem" >&2; exit 1; }
	mv "$dir/vapid.pub.new" "$dir/vapid.pub"
fi
cat "$dir/vapid.pub"
echo
