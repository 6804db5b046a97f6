/*
 * devtoken.c: GET /dev/token?user=N, development tokens for the demo app.
 *
 * Off unless `dev_tokens` is set (403 otherwise). It signs an HS256 token
 * with the relay's own secret (jwt_secret_file), for any positive user id,
 * with `exp` dev_token_ttl seconds ahead and the configured `iss` / `aud`:
 * whoever can reach the relay can then act as any user, so this is for
 * `make run` and tests only. A request that carries an Origin must come
 * from an allowed origin, and its Host must be loopback or an allowed
 * origin's host.
 */
#include "alloc.h"
#include "config.h"
#include "log.h"
#include "relay.h"
#include "static.h"
#include "upgrade.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* base64url without padding of len bytes; returns a malloc'd string. */
static char *
b64url(const unsigned char *in, size_t len)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char	   *out = xmalloc(len * 4 / 3 + 4);
	char	   *p = out;
	size_t		i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];

		*p++ = a[v >> 18 & 63];
		*p++ = a[v >> 12 & 63];
		*p++ = a[v >> 6 & 63];
		*p++ = a[v & 63];
	}
	if (len - i == 1)
	{
		uint32_t	v = (uint32_t) in[i] << 16;

		*p++ = a[v >> 18 & 63];
		*p++ = a[v >> 12 & 63];
	}
	else if (len - i == 2)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;

		*p++ = a[v >> 18 & 63];
		*p++ = a[v >> 12 & 63];
		*p++ = a[v >> 6 & 63];
	}
	*p = '\0';
	return out;
}

/* The HS256 secret, as auth.c reads it (trailing newlines dropped); NULL on error. */
static unsigned char *
read_secret(size_t *len)
{
	FILE	   *f = fopen(cf_jwt_secret_file, "rb");
	unsigned char *buf;
	size_t		n;

	if (f == NULL)
		return NULL;
	buf = xmalloc(65537);
	n = fread(buf, 1, 65537, f);
	fclose(f);
	if (n > 65536)
	{
		free(buf);
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	*len = n;
	return buf;
}

/* A JSON error answer. */
static int
refuse(struct lws *wsi, struct conn *c, unsigned int status, const char *why)
{
	json_t	   *o = json_pack("{s:s}", "error", why);
	char	   *s = json_dumps(o, JSON_COMPACT);
	size_t		len;
	unsigned char *b = www_body(s, &len);

	free(s);
	json_decref(o);
	log_info("dev token refused (%u): %s", status, why);
	return www_reply(wsi, c, status, "application/json", b, len, "no-store", true);
}

/* Sign claims (a JSON object) with HS256; a malloc'd token or NULL. */
static char *
sign(json_t *claims)
{
	const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char	   *payload = json_dumps(claims, JSON_COMPACT);
	char	   *h64 = b64url((const unsigned char *) header, strlen(header));
	char	   *p64 = b64url((const unsigned char *) payload, strlen(payload));
	char	   *signing = NULL,
			   *s64 = NULL,
			   *token = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned char *key;
	size_t		keylen = 0;

	key = read_secret(&keylen);
	if (key && keylen >= 32 && asprintf(&signing, "%s.%s", h64, p64) > 0 &&
		HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) signing, strlen(signing),
			 mac, &maclen) != NULL)
	{
		s64 = b64url(mac, maclen);
		if (asprintf(&token, "%s.%s", signing, s64) < 0)
			token = NULL;
	}
	if (key)
	{
		memset(key, 0, keylen);
		free(key);
	}
	free(payload);
	free(h64);
	free(p64);
	free(signing);
	free(s64);
	return token;
}

/*
 * Is the Host header loopback, or the host of an allowed origin? A page of
 * a name that resolves to the relay's address (DNS rebinding) fetches
 * same-origin, without an Origin header, but with its own name as Host.
 */
static bool
host_allowed(struct lws *wsi)
{
	static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]", NULL};
	char		host[256];
	size_t		n;

	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	n = strcspn(host, host[0] == '[' ? "]" : ":");
	if (host[0] == '[' && host[n] == ']')
		n++;
	for (int i = 0; loopback[i]; i++)
		if (strlen(loopback[i]) == n && strncasecmp(host, loopback[i], n) == 0)
			return true;
	for (int i = 0; i < cf_allow_origin.n; i++)
	{
		const char *o = strstr(cf_allow_origin.v[i], "://");

		if (o && strncasecmp(o + 3, host, strlen(host)) == 0 && o[3 + strlen(host)] == '\0')
			return true;		/* host:port exactly as in the origin */
		if (o && strncasecmp(o + 3, host, n) == 0 && (o[3 + n] == '\0' || o[3 + n] == ':') &&
			host[n] == '\0')
			return true;		/* no port in Host */
	}
	return false;
}

/* GET /dev/token?user=N */
int
devtoken_http(struct lws *wsi, struct conn *c)
{
	char		arg[64];
	char		sub[32];
	const char *v;
	char	   *end;
	long long	user;
	int64_t		now = (int64_t) time(NULL);
	int64_t		exp;
	json_t	   *claims,
			   *answer;
	char	   *token,
			   *s;
	unsigned char *b;
	size_t		len;
	int			rc;

	if (!cf_dev_tokens)
		return refuse(wsi, c, 403, "development tokens are disabled (dev_tokens = false)");
	if (strcmp(cf_jwt_alg, "HS256") != 0)
		return refuse(wsi, c, 501, "development tokens need jwt_alg HS256");
	/* a request without Origin is not a browser's: the token cannot leak to a page */
	if (!origin_allowed(wsi, true))
		return refuse(wsi, c, 403, "origin not allowed");
	if (!host_allowed(wsi))
		return refuse(wsi, c, 403, "Host must be loopback or the host of an allowed origin (DNS rebinding)");
	v = lws_get_urlarg_by_name(wsi, "user=", arg, (int) sizeof(arg));
	errno = 0;
	user = v ? strtoll(v, &end, 10) : 0;
	if (v == NULL || *v == '\0' || *end != '\0' || errno || user <= 0 || user > 9007199254740991LL)
		return refuse(wsi, c, 400, "user must be a positive integer user id");
	exp = now + cf_dev_token_ttl;
	snprintf(sub, sizeof(sub), "%lld", user);
	claims = json_pack("{s:s,s:I,s:I}", "sub", sub, "iat", (json_int_t) now, "exp", (json_int_t) exp);
	if (*cf_jwt_issuer)
		json_object_set_new(claims, "iss", json_string(cf_jwt_issuer));
	if (*cf_jwt_audience)
		json_object_set_new(claims, "aud", json_string(cf_jwt_audience));
	token = sign(claims);
	json_decref(claims);
	if (token == NULL)
		return refuse(wsi, c, 500, "cannot read the HS256 secret (jwt_secret_file)");
	answer = json_pack("{s:s,s:I,s:I}", "token", token, "user_id", (json_int_t) user,
					   "expires_at", (json_int_t) exp);
	s = json_dumps(answer, JSON_COMPACT);
	b = www_body(s, &len);
	memset(token, 0, strlen(token));
	memset(s, 0, strlen(s));
	free(token);
	free(s);
	json_decref(answer);
	log_info("issued a development token for user %lld", user);
	rc = www_reply(wsi, c, 200, "application/json", b, len, "no-store", true);
	return rc;
}
