/*
 * auth.c: access tokens. The algorithm and key come from the configuration
 * only: a token whose header names another algorithm (including "none") is
 * refused before any signature check, and the public key must be of the
 * configured type, so an RS256 key can never be used as an HS256 secret.
 * Claims: exp required; nbf, iss, aud checked; sub is the numeric user id.
 * Tokens are never logged.
 */
#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *auth_key;
static size_t auth_key_len;
static jwt_alg_t auth_alg = JWT_ALG_INVAL;

/* the latest exp kept: year 146 billion, and no overflow when added to */
#define EXP_MAX (INT64_C(1) << 62)

/* Read a whole (small) file; NULL on error. */
static unsigned char *
read_all(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	unsigned char *buf;
	long		n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > 65536 || fseek(f, 0, SEEK_SET))
	{
		fclose(f);
		return NULL;
	}
	buf = xmalloc((size_t) n + 1);
	if (fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t) n;
	return buf;
}

/* Does the PEM hold a public key of the type alg needs? */
static bool
key_matches(const unsigned char *pem, size_t len, jwt_alg_t alg)
{
	BIO		   *bio = BIO_new_mem_buf(pem, (int) len);
	EVP_PKEY   *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	bool		ok = false;

	if (pkey)
	{
		int			id = EVP_PKEY_base_id(pkey);

		if (alg == JWT_ALG_RS256)
			ok = id == EVP_PKEY_RSA && EVP_PKEY_bits(pkey) >= 2048;
		else if (alg == JWT_ALG_ES256)
			ok = id == EVP_PKEY_EC && EVP_PKEY_bits(pkey) == 256;
		EVP_PKEY_free(pkey);
	}
	BIO_free(bio);
	return ok;
}

/*
 * Load the key the configuration names. On a reload error the previous key
 * stays in force.
 */
int
auth_load_keys(void)
{
	jwt_alg_t	alg;
	unsigned char *key;
	size_t		len = 0;

	if (strcmp(cf_jwt_alg, "HS256") == 0)
		alg = JWT_ALG_HS256;
	else if (strcmp(cf_jwt_alg, "RS256") == 0)
		alg = JWT_ALG_RS256;
	else if (strcmp(cf_jwt_alg, "ES256") == 0)
		alg = JWT_ALG_ES256;
	else
	{
		log_error("jwt_alg must be HS256, RS256 or ES256, not \"%s\"", cf_jwt_alg);
		return -1;
	}
	if (alg == JWT_ALG_HS256)
	{
		if (!*cf_jwt_secret_file || *cf_jwt_public_key_file)
		{
			log_error("HS256 needs --jwt-secret-file (and no --jwt-public-key-file)");
			return -1;
		}
		key = read_all(cf_jwt_secret_file, &len);
		if (key == NULL)
		{
			log_error("cannot read jwt_secret_file %s", cf_jwt_secret_file);
			return -1;
		}
		while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r'))
			key[--len] = '\0';
		if (len < 32)
		{
			log_error("the HS256 secret must be at least 32 bytes, not %zu", len);
			free(key);
			return -1;
		}
	}
	else
	{
		if (!*cf_jwt_public_key_file || *cf_jwt_secret_file)
		{
			log_error("%s needs --jwt-public-key-file (and no --jwt-secret-file)", cf_jwt_alg);
			return -1;
		}
		key = read_all(cf_jwt_public_key_file, &len);
		if (key == NULL)
		{
			log_error("cannot read jwt_public_key_file %s", cf_jwt_public_key_file);
			return -1;
		}
		if (!key_matches(key, len, alg))
		{
			log_error("jwt_public_key_file %s is not a %s public key", cf_jwt_public_key_file,
					  alg == JWT_ALG_RS256 ? "RSA (2048 bits or more)" : "P-256 EC");
			free(key);
			return -1;
		}
	}
	free(auth_key);
	auth_key = key;
	auth_key_len = len;
	auth_alg = alg;
	return 0;
}

/* Free the key. */
void
auth_free(void)
{
	free(auth_key);
	auth_key = NULL;
	auth_key_len = 0;
}

/* Decode one base64url segment (no padding) into a new NUL-ended buffer. */
static char *
b64url_decode(const char *s, size_t len, size_t *outlen)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char	   *out = xmalloc(len * 3 / 4 + 4);
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		n = 0;

	if (len % 4 == 1)
	{
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
	{
		const char *p = memchr(alphabet, s[i], 64);

		if (p == NULL || s[i] == '\0')
		{
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t) (p - alphabet);
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[n++] = (char) ((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* Decode a segment as a JSON object (duplicate keys refused). */
static json_t *
segment_json(const char *s, size_t len)
{
	size_t		n;
	char	   *raw = b64url_decode(s, len, &n);
	json_t	   *j;

	if (raw == NULL)
		return NULL;
	j = json_loadb(raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j && !json_is_object(j))
	{
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A NumericDate claim as seconds; false when absent or not a number. */
static bool
claim_time(json_t *claims, const char *name, double *out)
{
	json_t	   *v = json_object_get(claims, name);

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

/* sub as a positive int64: a decimal string or a JSON integer. */
static bool
claim_sub(json_t *claims, int64_t *out)
{
	json_t	   *v = json_object_get(claims, "sub");

	if (json_is_integer(v))
	{
		*out = json_integer_value(v);
		return *out > 0;
	}
	if (json_is_string(v))
	{
		const char *s = json_string_value(v);
		size_t		n = strlen(s);
		int64_t		x = 0;

		if (n == 0 || n > 19)
			return false;
		for (size_t i = 0; i < n; i++)
		{
			if (s[i] < '0' || s[i] > '9')
				return false;
			if (x > (INT64_MAX - (s[i] - '0')) / 10)
				return false;
			x = x * 10 + (s[i] - '0');
		}
		*out = x;
		return x > 0;
	}
	return false;
}

/* Is aud the configured audience, or an array that contains it? */
static bool
claim_aud(json_t *claims)
{
	json_t	   *v = json_object_get(claims, "aud");
	size_t		i;
	json_t	   *e;

	if (json_is_string(v))
		return strcmp(json_string_value(v), cf_jwt_audience) == 0;
	if (json_is_array(v))
		json_array_foreach(v, i, e)
			if (json_is_string(e) && strcmp(json_string_value(e), cf_jwt_audience) == 0)
			return true;
	return false;
}

/* The claims of a token whose signature holds: NULL, or what is wrong. */
static const char *
check_claims(json_t *claims, struct auth_result *out)
{
	double		exp,
				nbf;
	double		now = (double) time(NULL);

	if (!claim_time(claims, "exp", &exp))
		return "exp missing";
	if (now >= exp + cf_jwt_leeway)
		return "token expired";
	if (json_object_get(claims, "nbf") &&
		(!claim_time(claims, "nbf", &nbf) || now + cf_jwt_leeway < nbf))
		return "token not yet valid";
	if (*cf_jwt_issuer)
	{
		json_t	   *iss = json_object_get(claims, "iss");

		if (!json_is_string(iss) || strcmp(json_string_value(iss), cf_jwt_issuer) != 0)
			return "wrong issuer";
	}
	if (*cf_jwt_audience && !claim_aud(claims))
		return "wrong audience";
	if (!claim_sub(claims, &out->user_id))
		return "sub is not a user id";
	/* far enough for any token, and exp + leeway cannot overflow */
	out->exp = exp >= (double) EXP_MAX ? EXP_MAX : (int64_t) exp;
	return NULL;
}

/*
 * Verify a token; on success fill *out and return 0. On failure return -1
 * and set *why to a short reason (never containing the token).
 */
int
auth_verify(const char *token, size_t len, struct auth_result *out, const char **why)
{
	const char *dot1,
			   *dot2;
	json_t	   *header = NULL,
			   *claims = NULL;
	jwt_t	   *jwt = NULL;
	char	   *copy = NULL;
	json_t	   *alg;
	int			rc = -1;

	*why = "malformed token";
	if (len == 0 || len > (size_t) cf_max_token)
	{
		*why = len ? "token too large" : "missing token";
		return -1;
	}
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - token)) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)) ||
		dot2 + 1 == token + len)
		return -1;
	header = segment_json(token, (size_t) (dot1 - token));
	claims = segment_json(dot1 + 1, (size_t) (dot2 - dot1 - 1));
	if (!header || !claims)
		goto done;
	alg = json_object_get(header, "alg");
	if (!json_is_string(alg) || strcmp(json_string_value(alg), jwt_alg_str(auth_alg)) != 0)
	{
		*why = "wrong algorithm";
		goto done;
	}
	if (json_object_get(header, "crit"))
	{
		*why = "unsupported critical header";
		goto done;
	}
	copy = xstrndup(token, len);
	if (jwt_decode(&jwt, copy, auth_key, (int) auth_key_len) != 0 || jwt == NULL ||
		jwt_get_alg(jwt) != auth_alg)
	{
		*why = "bad signature";
		goto done;
	}
	*why = check_claims(claims, out);
	rc = *why ? -1 : 0;
done:
	if (jwt)
		jwt_free(jwt);
	free(copy);
	json_decref(header);
	json_decref(claims);
	return rc;
}
