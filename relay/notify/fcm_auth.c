/*
 * fcm_auth.c: the OAuth2 access token FCM's HTTP v1 API wants, from the
 * service account's key (fcm_auth.h).
 *
 * The token is got with a JWT bearer assertion (RFC 7523, RS256, signed
 * with the account's private key) POSTed to the token endpoint, and kept
 * for its lifetime less 5 minutes. One fetch at a time: the pushes that
 * need a token meanwhile wait in a list and are all answered by it. A
 * failed fetch fails them all (status 0, its error); the next fetch waits
 * until FETCH_BACKOFF_S after it, with the pushes that come meanwhile,
 * rather than hammer the endpoint.
 *
 * Never logged: the key, the assertion, the token.
 */
#include "fcm_auth.h"

#include "alloc.h"
#include "config.h"
#include "http_client.h"
#include "jwt_sign.h"
#include "log.h"
#include "timer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_MARGIN_S 300
#define FETCH_BACKOFF_S 5
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"

struct waiter
{
	fcm_token_cb cb;
	void	   *arg;
};

static struct
{
	EVP_PKEY   *key;
	char	   *client_email;
	char	   *token_uri;
	char	   *project_id;
}			sa;

static struct
{
	char	   *token;
	time_t		good_until;		/* less the margin */
	bool		fetching;
	struct http_request req;
	struct curl_slist *headers;
	char	   *body;
	time_t		failed_at;
	char		error[160];		/* the last fetch's */
	struct waiter *waiters;
	int			n_waiters,
				cap_waiters;
	lws_sorted_usec_list_t kick_sul;	/* the next fetch */
	bool		kick_due;
}			tok;

/* A string member of the account's JSON, or NULL (logged). */
static const char *
member(json_t *doc, const char *name, const char *path)
{
	const char *v = json_string_value(json_object_get(doc, name));

	if (v == NULL || *v == '\0')
		log_error("fcm_service_account_file \"%s\": no \"%s\"", path, name);
	return v && *v ? v : NULL;
}

int
fcm_auth_load(const char *path)
{
	json_error_t jerr;
	json_t	   *doc = json_load_file(path, 0, &jerr);
	const char *email = NULL, *pem = NULL, *uri = NULL, *project = NULL;
	EVP_PKEY   *key = NULL;

	if (doc == NULL)
		log_error("fcm_service_account_file \"%s\": not readable JSON (line %d)", path, jerr.line);
	else if ((email = member(doc, "client_email", path)) && (pem = member(doc, "private_key", path))
			 && (uri = member(doc, "token_uri", path)) && (project = member(doc, "project_id", path))
			 && ((key = jwt_key_from_pem(pem, strlen(pem))) == NULL || !EVP_PKEY_is_a(key, "RSA")))
		log_error("fcm_service_account_file \"%s\": private_key is not an RSA key in PEM", path);
	if (key == NULL || !EVP_PKEY_is_a(key, "RSA") || project == NULL)
	{
		EVP_PKEY_free(key);
		json_decref(doc);
		return -1;
	}
	/* another account's token is no good: fetch anew (a fetch under way still answers its waiters) */
	if (sa.key == NULL || EVP_PKEY_eq(sa.key, key) != 1 || strcmp(sa.client_email, email) != 0)
		fcm_auth_invalidate(tok.token);
	EVP_PKEY_free(sa.key);
	free(sa.client_email);
	free(sa.token_uri);
	free(sa.project_id);
	sa.key = key;
	sa.client_email = xstrdup(email);
	sa.token_uri = xstrdup(uri);
	sa.project_id = xstrdup(project);
	json_decref(doc);
	return 0;
}

bool
fcm_auth_loaded(void)
{
	return sa.key != NULL;
}

const char *
fcm_auth_project(void)
{
	return sa.project_id;
}

static const char *
token_url(void)
{
	return cf_fcm_token_url && *cf_fcm_token_url ? cf_fcm_token_url : sa.token_uri;
}

/* The RS256 assertion for the token endpoint, or NULL. */
static char *
assertion(time_t now)
{
	json_t	   *h = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	json_t	   *c = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", sa.client_email, "scope", FCM_SCOPE,
							  "aud", token_url(), "iat", (json_int_t) now, "exp", (json_int_t) now + 3600);
	char	   *jwt = h && c ? jwt_sign(h, c, sa.key) : NULL;

	json_decref(h);
	json_decref(c);
	return jwt;
}

/* Answer every waiter (they may add new ones: those wait for the next fetch). */
static void
answer_waiters(const char *token, const char *error)
{
	struct waiter *w = tok.waiters;
	int			n = tok.n_waiters;

	tok.waiters = NULL;
	tok.n_waiters = tok.cap_waiters = 0;
	for (int i = 0; i < n; i++)
		w[i].cb(w[i].arg, token, error);
	free(w);
}

/* The token endpoint's answer: the token, or an error in tok.error. */
static bool
take_token(const struct http_request *r)
{
	json_t	   *doc;
	const char *t;
	json_int_t	ttl;

	if (r->outcome != HTTP_ANSWERED)
	{
		snprintf(tok.error, sizeof(tok.error), "FCM token endpoint: %s", http_outcome_text(r));
		return false;
	}
	if (r->status != 200)
	{
		snprintf(tok.error, sizeof(tok.error), "FCM token endpoint: HTTP %ld", r->status);
		return false;
	}
	doc = json_loadb(r->answer, r->answer_len, 0, NULL);
	t = json_string_value(json_object_get(doc, "access_token"));
	ttl = json_integer_value(json_object_get(doc, "expires_in"));
	if (t == NULL || *t == '\0' || ttl <= 0)
	{
		snprintf(tok.error, sizeof(tok.error), "FCM token endpoint: no access_token and expires_in in its answer");
		json_decref(doc);
		return false;
	}
	free(tok.token);
	tok.token = xstrdup(t);
	/* a short-lived token is used for half its life rather than not at all */
	tok.good_until = time(NULL) + (ttl > 2 * TOKEN_MARGIN_S ? ttl - TOKEN_MARGIN_S : ttl / 2);
	json_decref(doc);
	return true;
}

static void
fetched(struct http_request *r)
{
	bool		ok = take_token(r);

	tok.fetching = false;
	curl_slist_free_all(tok.headers);
	tok.headers = NULL;
	free(tok.body);
	tok.body = NULL;
	tok.failed_at = ok ? 0 : time(NULL);
	if (!ok)
		log_warn("%s", tok.error);
	answer_waiters(ok ? tok.token : NULL, ok ? NULL : tok.error);
}

/* Start the fetch: 0, or -1 with tok.error set. */
static int
fetch(void)
{
	char	   *jwt = assertion(time(NULL));

	if (jwt == NULL)
	{
		snprintf(tok.error, sizeof(tok.error), "FCM: cannot sign the token request with the service account's key");
		return -1;
	}
	xasprintf(&tok.body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
	free(jwt);
	tok.headers = curl_slist_append(NULL, "content-type: application/x-www-form-urlencoded");
	tok.headers = curl_slist_append(tok.headers, "Expect:");
	tok.req = (struct http_request) {
		.url = token_url(), .headers = tok.headers, .body = tok.body, .body_len = strlen(tok.body),
		.timeout_ms = (long) cf_push_timeout * 1000, .max_response = (size_t) cf_max_response,
		.ca_file = cf_push_ca_file && *cf_push_ca_file ? cf_push_ca_file : NULL,
		.direct = true, .keep_answer = true, .done = fetched,
	};
	if (http_send(&tok.req) != 0)
	{
		curl_slist_free_all(tok.headers);
		tok.headers = NULL;
		free(tok.body);
		tok.body = NULL;
		snprintf(tok.error, sizeof(tok.error), "FCM: cannot start the token request");
		return -1;
	}
	tok.fetching = true;
	return 0;
}

/* Queue a waiter. */
static void
add_waiter(fcm_token_cb cb, void *arg)
{
	if (tok.n_waiters == tok.cap_waiters)
	{
		tok.cap_waiters = tok.cap_waiters ? tok.cap_waiters * 2 : 16;
		tok.waiters = xrealloc(tok.waiters, sizeof(*tok.waiters) * (size_t) tok.cap_waiters);
	}
	tok.waiters[tok.n_waiters++] = (struct waiter) {cb, arg};
}

/* The fetch's turn (a timer: waiters are never answered from inside fcm_auth_token). */
static void
kick(lws_sorted_usec_list_t *sul)
{
	tok.kick_due = false;
	if (tok.fetching || tok.n_waiters == 0)
		return;
	if (fetch() != 0)
	{
		tok.failed_at = time(NULL);
		log_warn("%s", tok.error);
		answer_waiters(NULL, tok.error);
	}
}

const char *
fcm_auth_token(fcm_token_cb cb, void *arg)
{
	time_t		now = time(NULL);
	time_t		wait_s;

	if (tok.token && now < tok.good_until)
		return tok.token;
	add_waiter(cb, arg);
	if (tok.fetching || tok.kick_due)
		return NULL;
	/* after a failed fetch, the next one waits out the backoff (the pushes with it) */
	wait_s = tok.failed_at ? FETCH_BACKOFF_S - (now - tok.failed_at) : 0;
	tok.kick_due = true;
	timer_schedule(&tok.kick_sul, kick, wait_s > 0 ? (lws_usec_t) wait_s * LWS_US_PER_SEC : 1);
	return NULL;
}

void
fcm_auth_cancel(void *arg)
{
	for (int i = 0; i < tok.n_waiters; i++)
		if (tok.waiters[i].arg == arg)
		{
			memmove(&tok.waiters[i], &tok.waiters[i + 1], sizeof(*tok.waiters) * (size_t) (tok.n_waiters - i - 1));
			tok.n_waiters--;
			return;
		}
}

void
fcm_auth_invalidate(const char *token)
{
	if (token && tok.token && strcmp(token, tok.token) == 0)
		tok.good_until = 0;
}

void
fcm_auth_free(void)
{
	if (tok.kick_due)
		timer_cancel(&tok.kick_sul);
	tok.kick_due = false;
	if (tok.fetching)
		http_abort(&tok.req);
	answer_waiters(NULL, "FCM is stopped");
	free(tok.token);
	tok.token = NULL;
	EVP_PKEY_free(sa.key);
	free(sa.client_email);
	free(sa.token_uri);
	free(sa.project_id);
	memset(&sa, 0, sizeof(sa));
}
