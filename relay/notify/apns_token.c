/*
 * apns_token.c: the APNs provider token, signed as seldom as APNs wants
 * (apns_token.h).
 *
 * APNs refuses a token older than an hour (ExpiredProviderToken) and a key
 * whose tokens change more often than every 20 minutes
 * (TooManyProviderTokenUpdates, which blocks the key for a while): so one
 * token is reused for refresh_s (1200..3500 s), and an ExpiredProviderToken
 * only brings the next one forward to 20 minutes after the current one was
 * signed, never sooner. Until then (a clock off by minutes, or APNs'
 * mistake) pushes keep the current token and fail with 403, and dispatch
 * retries them later; the first one past the 20 minutes gets a new token.
 */
#include "apns_token.h"

#include "alloc.h"
#include "jwt_sign.h"
#include "log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct
{
	EVP_PKEY   *key;
	char	   *key_id;
	char	   *team_id;
	int			refresh_s;
	char	   *token;			/* the current one, NULL: none yet */
	time_t		signed_at;
	bool		expired;		/* APNs refused it: replace when allowed */
}			tk;

int
apns_token_load(const char *p8_file, const char *key_id, const char *team_id, int refresh_s)
{
	EVP_PKEY   *key = jwt_key_from_file(p8_file);

	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
	{
		log_error("apns_key_file \"%s\": not readable, or not an EC private key in PEM (the .p8 from Apple)", p8_file);
		EVP_PKEY_free(key);
		return -1;
	}
	if (tk.key && EVP_PKEY_eq(tk.key, key) == 1 && strcmp(tk.key_id, key_id) == 0 && strcmp(tk.team_id, team_id) == 0)
	{
		/* a SIGHUP with the same key: keep its token (a new one would count against the 20 min) */
		EVP_PKEY_free(key);
		tk.refresh_s = refresh_s < APNS_TOKEN_MIN_AGE ? APNS_TOKEN_MIN_AGE : refresh_s > 3500 ? 3500 : refresh_s;
		return 0;
	}
	apns_token_free();
	tk.key = key;
	tk.key_id = xstrdup(key_id);
	tk.team_id = xstrdup(team_id);
	tk.refresh_s = refresh_s < APNS_TOKEN_MIN_AGE ? APNS_TOKEN_MIN_AGE : refresh_s > 3500 ? 3500 : refresh_s;
	return 0;
}

bool
apns_token_loaded(void)
{
	return tk.key != NULL;
}

/* A new token signed at now, or NULL (logged). */
static char *
make_token(time_t now)
{
	json_t	   *header = json_pack("{s:s, s:s}", "alg", "ES256", "kid", tk.key_id);
	json_t	   *claims = json_pack("{s:s, s:I}", "iss", tk.team_id, "iat", (json_int_t) now);
	char	   *jwt = header && claims ? jwt_sign(header, claims, tk.key) : NULL;

	json_decref(header);
	json_decref(claims);
	if (jwt == NULL)
		log_error("APNs: cannot sign a provider token with apns_key_file (not a P-256 key?)");
	return jwt;
}

const char *
apns_token_get(time_t now)
{
	time_t		age = now - tk.signed_at;
	bool		due;
	char	   *jwt;

	if (tk.key == NULL)
		return NULL;
	due = tk.token == NULL || age >= tk.refresh_s || age < 0 || (tk.expired && age >= APNS_TOKEN_MIN_AGE);
	if (!due)
		return tk.token;
	jwt = make_token(now);
	if (jwt == NULL)
		return tk.token;
	free(tk.token);
	tk.token = jwt;
	tk.signed_at = now;
	tk.expired = false;
	return tk.token;
}

void
apns_token_expired(const char *token, time_t now)
{
	/* a push sent with the one before, answered after the new one was made */
	if (tk.token == NULL || token == NULL || strcmp(token, tk.token) != 0)
		return;
	if (!tk.expired)
		log_warn("APNs: ExpiredProviderToken for a token signed %ld s ago; a new one %s",
				 (long) (now - tk.signed_at),
				 now - tk.signed_at >= APNS_TOKEN_MIN_AGE ? "now" : "20 min after the last (APNs' limit)");
	tk.expired = true;
}

void
apns_token_free(void)
{
	EVP_PKEY_free(tk.key);
	free(tk.key_id);
	free(tk.team_id);
	free(tk.token);
	memset(&tk, 0, sizeof(tk));
}
