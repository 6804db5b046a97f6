/*
 * webpush_test.c: Web Push's encryption (webpush_crypt.c) against the
 * example of RFC 8291 section 5, byte for byte, and VAPID (vapid.c): a
 * header made, its JWT's claims read and its signature verified here with
 * OpenSSL. `make -C relay webpush-test` builds it
 * (relay/build/notify-webpush-test); test/notify/test_webpush_crypt.py
 * runs it. webpush_send_test.c, linked in, checks the sender on stubs.
 *
 *   notify-webpush-test                          the built-in checks; exit 0 when all pass
 *   notify-webpush-test encrypt P256DH AUTH      the aes128gcm body (base64url) of stdin
 *   notify-webpush-test vapid KEY SUBJECT URL    the Authorization header for URL
 */
#include "base64url.h"
#include "vapid.h"
#include "webpush_crypt.h"

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* RFC 8291 section 5 and appendix A */
#define RFC_PLAINTEXT "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24"
#define RFC_AS_PUBLIC "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
#define RFC_AS_PRIVATE "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_UA_PUBLIC "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_UA_PRIVATE "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_SALT "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_MESSAGE "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

static int	failures;

/* webpush_send_test.c */
void		send_checks(int *failures);

static void
check(const char *what, int ok)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	failures += !ok;
}

/* Decode s into out, which must take exactly len bytes. */
static int
b64(const char *s, unsigned char *out, size_t len)
{
	return base64url_decode(s, strlen(s), out, len) == (int) len ? 0 : -1;
}

static void
rfc_example(void)
{
	unsigned char ua_pub[65], as_pub[65], as_priv[32], auth[16], salt[16], plain[64];
	int			plain_len = base64url_decode(RFC_PLAINTEXT, strlen(RFC_PLAINTEXT), plain, sizeof(plain));
	unsigned char *body = NULL;
	size_t		len = 0;
	EVP_PKEY   *as_key;
	char	   *got;

	check("the example's values decode", plain_len == 41 && b64(RFC_UA_PUBLIC, ua_pub, 65) == 0 &&
		  b64(RFC_AS_PUBLIC, as_pub, 65) == 0 && b64(RFC_AS_PRIVATE, as_priv, 32) == 0 &&
		  b64(RFC_AUTH, auth, 16) == 0 && b64(RFC_SALT, salt, 16) == 0);
	check("plaintext is the watermelon", plain_len == 41 && memcmp(plain, "When I grow up, I want to be a watermelon", 41) == 0);
	as_key = webpush_p256_key(as_priv, as_pub);
	check("the example's sender key pair loads", as_key != NULL);
	if (as_key == NULL)
		return;
	check("encrypts", webpush_encrypt_with(ua_pub, auth, plain, (size_t) plain_len, as_key, salt, &body, &len) == 0);
	got = body ? base64url_encode_new(body, len) : NULL;
	check("RFC 8291 section 5 message, byte for byte", got && strcmp(got, RFC_MESSAGE) == 0);
	if (got && strcmp(got, RFC_MESSAGE) != 0)
		printf("     got      %s\n     expected %s\n", got, RFC_MESSAGE);
	free(got);
	free(body);
	EVP_PKEY_free(as_key);
}

static void
limits(void)
{
	unsigned char ua_pub[65], auth[16];
	static unsigned char plain[WEBPUSH_PLAINTEXT_MAX + 1];
	unsigned char *body = NULL;
	size_t		len = 0;

	b64(RFC_UA_PUBLIC, ua_pub, 65);
	b64(RFC_AUTH, auth, 16);
	memset(plain, 'x', sizeof(plain));
	check("3993 bytes fit one 4096-byte record",
		  webpush_encrypt(ua_pub, auth, plain, WEBPUSH_PLAINTEXT_MAX, &body, &len) == 0 && len == 4096);
	free(body);
	body = NULL;
	check("3994 bytes are refused", webpush_encrypt(ua_pub, auth, plain, WEBPUSH_PLAINTEXT_MAX + 1, &body, &len) == -1 && body == NULL);
	ua_pub[40] ^= 1;
	check("a p256dh off the curve is refused", webpush_encrypt(ua_pub, auth, plain, 10, &body, &len) == -1 && body == NULL);
	ua_pub[40] ^= 1;
	ua_pub[0] = 2;
	check("a p256dh not uncompressed is refused", webpush_encrypt(ua_pub, auth, plain, 10, &body, &len) == -1);
	check("base64url refuses '*' and a lone last character",
		  base64url_decode("ab*d", 4, plain, 10) == -1 && base64url_decode("abcde", 5, plain, 10) == -1);
	check("base64url refuses more than cap bytes", base64url_decode("AAAAAAAA", 8, plain, 5) == -1);
}

/* A fresh P-256 key written as PEM into a temporary file; its path (static). */
static const char *
key_file(void)
{
	static char path[] = "/tmp/webpush-test-XXXXXX";
	int			fd = mkstemp(path);
	FILE	   *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	EVP_PKEY   *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (f == NULL || k == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
		return NULL;
	fclose(f);
	EVP_PKEY_free(k);
	return path;
}

/* The ES256 signature sig64 (r || s) of input verifies with the public key pub. */
static int
verify_es256(const char *input, size_t input_len, const unsigned char *sig64, const unsigned char pub[65])
{
	EVP_PKEY   *k = webpush_p256_key(NULL, pub);
	ECDSA_SIG  *sig = ECDSA_SIG_new();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int			der_len,
				ok;

	ok = k && sig && md && ECDSA_SIG_set0(sig, BN_bin2bn(sig64, 32, NULL), BN_bin2bn(sig64 + 32, 32, NULL));
	der_len = ok ? i2d_ECDSA_SIG(sig, &der) : -1;
	ok = ok && der_len > 0 && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) > 0 &&
		EVP_DigestVerify(md, der, (size_t) der_len, (const unsigned char *) input, input_len) == 1;
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(sig);
	EVP_PKEY_free(k);
	return ok;
}

/* Check one "vapid t=…, k=…" header for aud and sub. */
static void
check_header(const char *h, const char *aud, const char *sub)
{
	unsigned char pub[65], sig[64], text[512];
	const char *t = strncmp(h, "vapid t=", 8) == 0 ? h + 8 : NULL;
	const char *k = strstr(h, ", k=");
	const char *dot1 = t ? strchr(t, '.') : NULL;
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	int			n;
	json_t	   *claims;
	int64_t		now = (int64_t) time(NULL), exp;

	check("header is vapid t=<jwt>, k=<key>", t && k && dot2 && dot2 < k);
	if (!(t && k && dot2 && dot2 < k))
		return;
	check("k is the loaded public key", strcmp(k + 4, vapid_public_key()) == 0 && b64(k + 4, pub, 65) == 0);
	n = base64url_decode(t, (size_t) (dot1 - t), text, sizeof(text) - 1);
	check("JWT header is {typ: JWT, alg: ES256}", n > 0 && (size_t) n == strlen("{\"typ\":\"JWT\",\"alg\":\"ES256\"}") &&
		  memcmp(text, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}", (size_t) n) == 0);
	n = base64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), text, sizeof(text) - 1);
	claims = n > 0 ? json_loadb((const char *) text, (size_t) n, 0, NULL) : NULL;
	exp = json_integer_value(json_object_get(claims, "exp"));
	check("aud is the endpoint's origin", claims && strcmp(json_string_value(json_object_get(claims, "aud")) ?: "", aud) == 0);
	check("sub is the subject", claims && strcmp(json_string_value(json_object_get(claims, "sub")) ?: "", sub) == 0);
	check("exp is 12 h away (at most 24 h)", exp >= now + 12 * 3600 - 60 && exp <= now + 12 * 3600 + 5);
	json_decref(claims);
	check("signature is 64 bytes r || s",
		  base64url_decode(dot2 + 1, (size_t) (k - dot2 - 1), sig, sizeof(sig)) == 64);
	check("signature verifies with k", verify_es256(t, (size_t) (dot2 - t), sig, pub));
}

static void
vapid_checks(void)
{
	const char *path = key_file();
	const char *sub = "mailto:ops@example.org";
	char		origin[64], *h1, *h2, *h3, *old;

	check("a fresh key file", path != NULL);
	check("no key: no header", vapid_authorization("https://push.example.net/x") == NULL);
	check("key loads", path && vapid_load(path, sub) == 0 && vapid_loaded());
	check("public key is 87 characters", vapid_public_key() && strlen(vapid_public_key()) == 87);
	check("origin with port", vapid_origin("https://push.example.net:8443/wpush/v2/abc?x#y", origin, sizeof(origin)) == 0 &&
		  strcmp(origin, "https://push.example.net:8443") == 0);
	check("origin without path", vapid_origin("https://h.example", origin, sizeof(origin)) == 0 && strcmp(origin, "https://h.example") == 0);
	check("no origin for ftp:// or an empty host", vapid_origin("ftp://x/y", origin, sizeof(origin)) == -1 &&
		  vapid_origin("https:///y", origin, sizeof(origin)) == -1);
	h1 = vapid_authorization("https://push.example.net:8443/wpush/v2/abc");
	check("a header", h1 != NULL);
	if (h1)
		check_header(h1, "https://push.example.net:8443", sub);
	h2 = vapid_authorization("https://push.example.net:8443/wpush/v2/other");
	h3 = vapid_authorization("https://fcm.example.com/fcm/send/abc");
	check("the same origin reuses its header", h1 && h2 && strcmp(h1, h2) == 0);
	check("another origin has its own", h1 && h3 && strcmp(h1, h3) != 0);
	if (h3)
		check_header(h3, "https://fcm.example.com", sub);
	old = strdup(vapid_public_key());
	check("a bad key file is refused", vapid_load("/nonexistent/vapid.pem", sub) == -1 && vapid_load("/etc/hostname", sub) == -1);
	check("and the key in use is kept", vapid_loaded() && strcmp(old, vapid_public_key()) == 0);
	free(old);
	free(h1);
	free(h2);
	free(h3);
	/* many origins: the cache stays bounded, every header still right */
	for (int i = 0; i < 3 * VAPID_CACHE; i++)
	{
		char		url[64];

		snprintf(url, sizeof(url), "https://p%d.example/x", i);
		free(vapid_authorization(url));
	}
	h1 = vapid_authorization("https://p0.example/y");
	if (h1)
		check_header(h1, "https://p0.example", sub);
	free(h1);
	if (path)
		unlink(path);
	vapid_free();
}

/* encrypt P256DH AUTH < plaintext: the body as base64url on stdout. */
static int
cli_encrypt(const char *p256dh, const char *auth_b64)
{
	static unsigned char plain[8192];
	unsigned char ua_pub[65], auth[16], *body;
	size_t		n = fread(plain, 1, sizeof(plain), stdin), len;
	char	   *out;

	if (b64(p256dh, ua_pub, 65) != 0 || b64(auth_b64, auth, 16) != 0 ||
		webpush_encrypt(ua_pub, auth, plain, n, &body, &len) != 0)
	{
		fprintf(stderr, "refused\n");
		return 1;
	}
	out = base64url_encode_new(body, len);
	puts(out);
	free(out);
	free(body);
	return 0;
}

int
main(int argc, char **argv)
{
	char	   *h;

	if (argc == 4 && strcmp(argv[1], "encrypt") == 0)
		return cli_encrypt(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "vapid") == 0)
	{
		if (vapid_load(argv[2], argv[3]) != 0 || (h = vapid_authorization(argv[4])) == NULL)
			return 1;
		puts(h);
		free(h);
		vapid_free();
		return 0;
	}
	if (argc != 1)
	{
		fprintf(stderr, "usage: %s [encrypt P256DH AUTH < PLAINTEXT | vapid KEY SUBJECT URL]\n", argv[0]);
		return 2;
	}
	rfc_example();
	limits();
	vapid_checks();
	send_checks(&failures);
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
