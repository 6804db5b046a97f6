/*
 * push_jwt_test.c: jwt_sign.c's RS256 and ES256 tokens checked with
 * OpenSSL's verify, and apns_token.c's reuse and refresh on a moved clock.
 * `make -C relay push-jwt-test` builds and runs nothing: run
 * relay/build/notify-push-jwt-test; exit 0 when all pass.
 */
#include "apns_token.h"
#include "jwt_sign.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int	failures;

static void
check(const char *what, bool ok)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	failures += !ok;
}

/* got equals want (want's reference taken). */
static bool
same(const json_t *got, json_t *want)
{
	bool		eq = json_equal(got, want);

	json_decref(want);
	return eq;
}

/* base64url (no padding) -> bytes in out; the length, or -1. */
static int
unb64url(const char *in, size_t n, unsigned char *out)
{
	char	   *s = calloc(1, n + 4);
	int			len, pad = (4 - n % 4) % 4;

	for (size_t i = 0; i < n; i++)
		s[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(s + n, '=', pad);
	len = EVP_DecodeBlock(out, (unsigned char *) s, (int) (n + pad));
	free(s);
	return len < 0 ? -1 : len - pad;
}

/* Does jwt's signature hold under key (es: r||s)? */
static bool
verifies(const char *jwt, EVP_PKEY *key, bool es)
{
	const char *dot = strrchr(jwt, '.');
	unsigned char sig[600], der[80], *p = der;
	int			n = dot ? unb64url(dot + 1, strlen(dot + 1), sig) : -1;
	size_t		len = (size_t) n;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool		ok;

	if (n < 0)
		return false;
	if (es)
	{
		ECDSA_SIG  *e = ECDSA_SIG_new();

		if (n != 64)
			return false;
		ECDSA_SIG_set0(e, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
		len = (size_t) i2d_ECDSA_SIG(e, &p);
		memcpy(sig, der, len);
		ECDSA_SIG_free(e);
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1
		&& EVP_DigestVerify(ctx, sig, len, (const unsigned char *) jwt, (size_t) (dot - jwt)) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* The JSON of jwt's part i (0 header, 1 claims). */
static json_t *
part(const char *jwt, int i)
{
	const char *s = jwt, *e;
	unsigned char buf[1024];
	int			n;

	if (i == 1)
		s = strchr(jwt, '.') + 1;
	e = strchr(s, '.');
	n = unb64url(s, (size_t) (e - s), buf);
	return n < 0 ? NULL : json_loadb((char *) buf, (size_t) n, 0, NULL);
}

static void
test_rs256(void)
{
	EVP_PKEY   *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
	EVP_PKEY   *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t	   *h = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	json_t	   *c = json_pack("{s:s, s:i}", "iss", "a@b.iam.gserviceaccount.com", "iat", 1700000000);
	char	   *jwt = jwt_sign(h, c, rsa);
	json_t	   *got = jwt ? part(jwt, 1) : NULL;

	check("RS256 signed", jwt != NULL);
	check("RS256 verifies with the public key", jwt && verifies(jwt, rsa, false));
	check("RS256 claims as given", got && json_equal(got, c));
	check("RS256 no padding, url alphabet", jwt && strpbrk(jwt, "=+/") == NULL);
	check("RS256 with an EC key refused", jwt_sign(h, c, ec) == NULL);
	free(jwt);
	json_decref(got);
	json_decref(h);
	json_decref(c);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

static void
test_es256(void)
{
	EVP_PKEY   *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY   *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t	   *h = json_pack("{s:s, s:s}", "alg", "ES256", "kid", "ABC123DEFG");
	json_t	   *c = json_pack("{s:s, s:i}", "iss", "TEAM123456", "iat", 1700000000);

	/* several: r or s with a leading zero byte must still give 64 bytes */
	for (int i = 0; i < 20; i++)
	{
		char	   *jwt = jwt_sign(h, c, ec);
		bool		ok = jwt && verifies(jwt, ec, true) && !verifies(jwt, other, true);

		if (!ok || i == 19)
			check("ES256 (20 tokens) verify, raw r||s, not under another key", ok);
		free(jwt);
		if (!ok)
			break;
	}
	json_object_set_new(h, "alg", json_string("none"));
	check("alg none refused", jwt_sign(h, c, ec) == NULL);
	json_decref(h);
	json_decref(c);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}

/* A .p8 (PKCS#8 PEM) of a fresh P-256 key at path; the key. */
static EVP_PKEY *
write_p8(const char *path)
{
	EVP_PKEY   *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE	   *f = fopen(path, "w");

	PEM_write_PKCS8PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return ec;
}

static void
test_apns_token(void)
{
	char		path[] = "/tmp/push-jwt-test-XXXXXX";
	int			fd = mkstemp(path);
	EVP_PKEY   *ec = write_p8(path);
	time_t		t0 = 1700000000;
	char	   *a, *b;
	json_t	   *hd, *cl;

	close(fd);
	check("the .p8 loads", apns_token_load(path, "KEYID12345", "TEAMID1234", 3000) == 0);
	a = strdup(apns_token_get(t0));
	hd = part(a, 0);
	cl = part(a, 1);
	check("APNs token verifies", verifies(a, ec, true));
	check("APNs header {alg ES256, kid}", same(hd, json_pack("{s:s, s:s}", "alg", "ES256", "kid", "KEYID12345")));
	check("APNs claims {iss, iat}", same(cl, json_pack("{s:s, s:i}", "iss", "TEAMID1234", "iat", (int) t0)));
	check("the same within the refresh window", strcmp(apns_token_get(t0 + 2999), a) == 0);
	apns_token_expired("an older token", t0 + 600);
	check("another token's expiry: ignored", strcmp(apns_token_get(t0 + 1200), a) == 0);
	apns_token_expired(a, t0 + 600);
	check("expired before 20 min: still the same", strcmp(apns_token_get(t0 + 600), a) == 0);
	b = strdup(apns_token_get(t0 + 1200));
	check("expired, 20 min on: a new one", strcmp(b, a) != 0);
	check("then reused", strcmp(apns_token_get(t0 + 1200 + 2999), b) == 0);
	check("a new one after the refresh window", strcmp(apns_token_get(t0 + 1200 + 3000), b) != 0);
	b = (free(b), strdup(apns_token_get(t0 + 4300)));
	check("reloaded with the same key and ids: the token kept",
		  apns_token_load(path, "KEYID12345", "TEAMID1234", 3000) == 0 && strcmp(apns_token_get(t0 + 4301), b) == 0);
	check("a missing file refused, the key kept", apns_token_load("/nonexistent.p8", "K", "T", 3000) == -1 && apns_token_get(t0 + 9000));
	apns_token_free();
	unlink(path);
	free(a);
	free(b);
	json_decref(hd);
	json_decref(cl);
	EVP_PKEY_free(ec);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_rs256();
	test_es256();
	test_apns_token();
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
