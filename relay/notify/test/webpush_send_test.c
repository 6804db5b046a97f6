/*
 * webpush_send_test.c: the Web Push sender (webpush_send.c) on stubs of
 * what it stands on (http_client.h, delivery_sent, push_payload, the
 * settings): the request it makes (headers, body, limits), each kind of
 * answer mapped to a status, gone and retry_after_s, and tokens that
 * cannot be used refused without a request. Part of notify-webpush-test
 * (webpush_test.c calls send_checks).
 */
#include "base64url.h"
#include "push.h"
#include "webpush_crypt.h"
#include "webpush_send.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void		send_checks(int *failures);

/* the settings webpush_send.c reads */
int			cf_push_timeout = 10;
int			cf_max_response = 65536;
char	   *cf_push_ca_file = "/etc/test-ca.pem";
char	   *cf_vapid_key_file = "";
char	   *cf_vapid_subject = "mailto:ops@example.org";

static struct http_request *sent;	/* what http_send was given */
static int	reported;				/* delivery_sent calls */
static int	got_status;
static char got_error[DELIVERY_ERROR_MAX + 1];
static bool big_payload;

int
http_send(struct http_request *r)
{
	sent = r;
	return 0;
}

void
http_abort(struct http_request *r)
{
	r->outcome = HTTP_ABORTED;
	r->done(r);
}

const char *
http_outcome_text(const struct http_request *r)
{
	return r->outcome == HTTP_TLS ? "SSL peer certificate was not OK" : r->outcome == HTTP_ABORTED ? "stopped" : "failed";
}

void
delivery_sent(struct delivery *d, int status, const char *error)
{
	reported++;
	got_status = status;
	snprintf(got_error, sizeof(got_error), "%s", error ? error : "");
}

char *
push_payload(const struct push *p)
{
	char	   *s;

	if (!big_payload)
		return strdup("{\"type\":\"alert\",\"chat_id\":123}");
	s = malloc(4001);
	memset(s, 'x', 4000);
	s[4000] = '\0';
	return s;
}

static int *fails;

static void
check(const char *what, int ok)
{
	printf("%s send: %s\n", ok ? "ok  " : "FAIL", what);
	*fails += !ok;
}

/* A subscription token for a fresh key; endpoint given. */
static json_t *
token(const char *endpoint)
{
	EVP_PKEY   *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char pub[WEBPUSH_KEY_LEN], auth[WEBPUSH_AUTH_LEN] = {1, 2, 3};
	char		p[BASE64URL_LEN(WEBPUSH_KEY_LEN) + 1], a[BASE64URL_LEN(WEBPUSH_AUTH_LEN) + 1];

	webpush_p256_public(k, pub);
	EVP_PKEY_free(k);
	base64url_encode(pub, sizeof(pub), p);
	base64url_encode(auth, sizeof(auth), a);
	return json_pack("{s:s, s:{s:s, s:s}}", "endpoint", endpoint, "keys", "p256dh", p, "auth", a);
}

/* The value of header name in the request sent, or NULL. */
static const char *
header(const char *name)
{
	size_t		n = strlen(name);

	for (struct curl_slist *h = sent ? sent->headers : NULL; h; h = h->next)
		if (strncmp(h->data, name, n) == 0 && h->data[n] == ':')
			return h->data + n + 2;
	return NULL;
}

/* Send p (a fresh push on tok); true when a request was started. */
static bool
start(struct push *p, json_t *tok, bool alert, const char *collapse)
{
	*p = (struct push) {.token = tok, .alert = alert, .ttl_s = 3600, .retry_after_s = 7};
	snprintf(p->collapse, sizeof(p->collapse), "%s", collapse);
	sent = NULL;
	reported = 0;
	webpush_send(p);
	return sent != NULL && reported == 0;
}

/* Answer the request started with outcome and status; what was reported. */
static void
answer(struct push *p, enum http_outcome outcome, long status, long retry_after)
{
	sent->outcome = outcome;
	sent->status = status;
	sent->retry_after_s = retry_after;
	sent->done(sent);
}

static void
request_checks(json_t *tok)
{
	struct push p;

	check("an alert starts a request", start(&p, tok, true, "chat-123"));
	check("to the endpoint, direct, with the CA, timeout and max_response",
		  sent && strcmp(sent->url, "https://push.example.net/wpush/abc") == 0 && sent->direct &&
		  sent->ca_file && strcmp(sent->ca_file, "/etc/test-ca.pem") == 0 &&
		  sent->timeout_ms == 10000 && sent->max_response == 65536);
	check("the body is the encrypted payload",
		  sent && sent->body_len == WEBPUSH_HEADER_LEN + strlen("{\"type\":\"alert\",\"chat_id\":123}") + 17);
	check("TTL 3600, Urgency high, Topic chat-123",
		  header("TTL") && strcmp(header("TTL"), "3600") == 0 && strcmp(header("Urgency") ?: "", "high") == 0 &&
		  strcmp(header("Topic") ?: "", "chat-123") == 0);
	check("Content-Encoding aes128gcm, Content-Type octet-stream, Authorization vapid",
		  strcmp(header("Content-Encoding") ?: "", "aes128gcm") == 0 &&
		  strcmp(header("Content-Type") ?: "", "application/octet-stream") == 0 &&
		  strncmp(header("Authorization") ?: "", "vapid t=", 8) == 0 && strstr(header("Authorization"), ", k="));
	answer(&p, HTTP_ANSWERED, 201, -1);
	check("201: sent, no error", reported == 1 && got_status == 201 && *got_error == '\0' && !p.gone);
	check("the request's parts are freed", p.headers == NULL && p.req_body == NULL && p.url == NULL);

	check("a clear starts a request", start(&p, tok, false, "chat-1.5"));
	check("TTL 3600 (a clear must outlive a phone offline), Urgency normal, no Topic for a collapse key that is not base64url",
		  strcmp(header("TTL") ?: "", "3600") == 0 && strcmp(header("Urgency") ?: "", "normal") == 0 && header("Topic") == NULL);
	webpush_abort(&p);
	check("abort reports at once", reported == 1 && got_status == 0 && *got_error);
}

static void
answer_checks(json_t *tok)
{
	static const struct
	{
		enum http_outcome outcome;
		long		status, retry_after;
		int			want_status;
		bool		gone;
		long		want_retry;
		const char *want_error;
	}			cases[] = {
		{HTTP_ANSWERED, 200, -1, 200, false, -1, ""},
		{HTTP_ANSWERED, 202, -1, 202, false, -1, ""},
		{HTTP_ANSWERED, 410, -1, 410, true, -1, "subscription gone (410)"},
		{HTTP_ANSWERED, 404, -1, 404, true, -1, "subscription gone (404)"},
		{HTTP_ANSWERED, 429, 30, 429, false, 30, "HTTP 429: too many requests"},
		{HTTP_ANSWERED, 503, 120, 503, false, 120, "HTTP 503: push service error"},
		{HTTP_ANSWERED, 500, -1, 500, false, -1, "HTTP 500: push service error"},
		{HTTP_ANSWERED, 400, -1, 400, false, -1, "HTTP 400: bad request"},
		{HTTP_ANSWERED, 403, -1, 403, false, -1, "HTTP 403: VAPID refused"},
		{HTTP_ANSWERED, 413, -1, 413, false, -1, "HTTP 413: payload too large"},
		{HTTP_TIMEOUT, 0, -1, 0, false, -1, "no answer within 10 s"},
		{HTTP_TLS, 0, -1, 0, false, -1, "SSL peer certificate was not OK"},
	};
	struct push p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		what[80];

		snprintf(what, sizeof(what), "answer %ld (outcome %d)", cases[i].status, (int) cases[i].outcome);
		if (!start(&p, tok, true, "chat-9"))
		{
			check(what, 0);
			continue;
		}
		answer(&p, cases[i].outcome, cases[i].status, cases[i].retry_after);
		check(what, reported == 1 && got_status == cases[i].want_status && p.gone == cases[i].gone &&
			  p.retry_after_s == cases[i].want_retry && strcmp(got_error, cases[i].want_error) == 0);
		if (strcmp(got_error, cases[i].want_error) != 0)
			printf("     error %s\n", got_error);
	}
}

/* A token that cannot be used: reported at once with status 0, no request. */
static void
refused(const char *what, json_t *tok)
{
	struct push p;

	start(&p, tok, true, "chat-1");
	check(what, sent == NULL && reported == 1 && got_status == 0 && *got_error);
	json_decref(tok);
}

static void
token_checks(void)
{
	const char *key = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

	refused("no token", NULL);
	refused("no endpoint", json_pack("{s:{s:s, s:s}}", "keys", "p256dh", key, "auth", "BTBZMqHH6r4Tts7J_aSIgg"));
	refused("an endpoint not http(s)", json_pack("{s:s, s:{s:s, s:s}}", "endpoint", "ftp://x/y", "keys", "p256dh", key, "auth", "BTBZMqHH6r4Tts7J_aSIgg"));
	refused("no keys", json_pack("{s:s}", "endpoint", "https://x/y"));
	refused("p256dh not base64url", json_pack("{s:s, s:{s:s, s:s}}", "endpoint", "https://x/y", "keys", "p256dh", "***", "auth", "BTBZMqHH6r4Tts7J_aSIgg"));
	refused("p256dh of 64 bytes", json_pack("{s:s, s:{s:s, s:s}}", "endpoint", "https://x/y", "keys", "p256dh", key + 2, "auth", "BTBZMqHH6r4Tts7J_aSIgg"));
	refused("p256dh off the curve", json_pack("{s:s, s:{s:s, s:s}}", "endpoint", "https://x/y", "keys", "p256dh",
											  "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "auth", "BTBZMqHH6r4Tts7J_aSIgg"));
	refused("auth of 15 bytes", json_pack("{s:s, s:{s:s, s:s}}", "endpoint", "https://x/y", "keys", "p256dh", key, "auth", "BTBZMqHH6r4Tts7J_aSI"));
	refused("auth a number", json_pack("{s:s, s:{s:s, s:i}}", "endpoint", "https://x/y", "keys", "p256dh", key, "auth", 5));
	big_payload = true;
	refused("a payload over 3993 bytes", json_pack("{s:s, s:{s:s, s:s}}", "endpoint", "https://x/y", "keys", "p256dh", key, "auth", "BTBZMqHH6r4Tts7J_aSIgg"));
	big_payload = false;
}

void
send_checks(int *failures)
{
	static char path[] = "/tmp/webpush-send-test-XXXXXX";
	int			fd = mkstemp(path);
	FILE	   *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	EVP_PKEY   *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t	   *tok = token("https://push.example.net/wpush/abc");
	struct push p;

	fails = failures;
	check("no vapid_key_file: Web Push off", webpush_configure() == 0 && !webpush_on());
	check("off: a push fails at once", !start(&p, tok, true, "chat-1") && reported == 1 && got_status == 0);
	if (f == NULL || k == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
		check("a key file", 0);
	if (f)
		fclose(f);
	EVP_PKEY_free(k);
	cf_vapid_key_file = path;
	check("the key loads: Web Push on", webpush_configure() == 0 && webpush_on());
	request_checks(tok);
	answer_checks(tok);
	token_checks();
	cf_vapid_key_file = "/nonexistent.pem";
	check("a bad key file on reload: -1 and still on", webpush_configure() == -1 && webpush_on());
	json_decref(tok);
	unlink(path);
	webpush_free();
}
