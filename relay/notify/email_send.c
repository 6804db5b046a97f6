/*
 * email_send.c: one digest over SMTP (email_send.h).
 *
 * libcurl speaks SMTP: MAIL FROM, RCPT TO, DATA with the message read
 * through CURLOPT_READFUNCTION (curl dot-stuffs it), STARTTLS when the
 * server offers it (CURLUSESSL_TRY) or required (smtp_require_tls:
 * CURLUSESSL_ALL), AUTH with smtp_user and the password of
 * smtp_password_file when a user is set. CURLOPT_TIMEOUT_MS bounds the
 * whole exchange. Anything but a completed DATA is not sent: refused,
 * a 4xx or 5xx, a timeout, TLS; the error is short and holds neither the
 * password nor an address nor what the server said, only its code.
 */
#include "email_send.h"

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MAX 4096

static char *password;			/* of smtp_password_file; never logged */

/* CURLOPT_READFUNCTION: the next bytes of the message. */
static size_t
on_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct email *e = userdata;
	size_t		n = size * nmemb;

	if (n > e->msg_len - e->msg_off)
		n = e->msg_len - e->msg_off;
	memcpy(buf, e->msg + e->msg_off, n);
	e->msg_off += n;
	return n;
}

/* The short error of a transfer that did not end in a sent message. */
static void
classify(CURL *easy, CURLcode code, char *error, size_t cap)
{
	long		smtp = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &smtp);
	if (code == CURLE_OPERATION_TIMEDOUT)
		snprintf(error, cap, "no answer within %d s", cf_smtp_timeout);
	else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
		snprintf(error, cap, "cannot connect: %s", curl_easy_strerror(code));
	else if (code == CURLE_USE_SSL_FAILED)
		snprintf(error, cap, "the server offers no STARTTLS (smtp_require_tls)");
	else if (code == CURLE_LOGIN_DENIED)
		snprintf(error, cap, "SMTP AUTH refused (%ld)", smtp);
	else if (code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
			 code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CACERT_BADFILE)
		snprintf(error, cap, "TLS: %s", curl_easy_strerror(code));
	else if (smtp >= 400)
		snprintf(error, cap, "SMTP %ld: %s", smtp, curl_easy_strerror(code));
	else
		snprintf(error, cap, "%s", curl_easy_strerror(code));
}

/* The transfer has ended (curl_loop.h). */
static void
ended(struct curl_xfer *x, CURL *easy, CURLcode code)
{
	struct email *e = lws_container_of(x, struct email, xfer);
	char		error[DELIVERY_ERROR_MAX + 1] = "";

	if (code != CURLE_OK)
		classify(easy, code, error, sizeof(error));
	if (code == CURLE_OK)
		metrics.emails_sent++;
	else
		metrics.emails_failed++;
	if (code == CURLE_OK)
		prom_observe(&metrics.email_duration, (double) (lws_now_usecs() - e->started_us) / 1e6);
	curl_slist_free_all(e->rcpts);
	e->rcpts = NULL;
	delivery_sent(&e->d, code == CURLE_OK ? 250 : 0, error);
}

/* The options of one email; 0, or -1 when curl refuses one. */
static int
set_options(CURL *c, struct email *e)
{
	CURLcode	rc = CURLE_OK;
	char	   *from;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); } while (0)
	xasprintf(&from, "<%s>", cf_smtp_from);
	SET(CURLOPT_URL, cf_smtp_url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROXY, "");		/* no proxy from the environment */
	SET(CURLOPT_TIMEOUT_MS, (long) cf_smtp_timeout * 1000);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long) cf_smtp_timeout * 1000);
	SET(CURLOPT_MAIL_FROM, from);	/* curl copies strings */
	SET(CURLOPT_MAIL_RCPT, e->rcpts);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, on_read);
	SET(CURLOPT_READDATA, (void *) e);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t) e->msg_len);
	SET(CURLOPT_USE_SSL, cf_smtp_require_tls ? (long) CURLUSESSL_ALL : (long) CURLUSESSL_TRY);
	if (*cf_smtp_ca_file)
		SET(CURLOPT_CAINFO, cf_smtp_ca_file);
	if (*cf_smtp_user)
	{
		SET(CURLOPT_USERNAME, cf_smtp_user);
		SET(CURLOPT_PASSWORD, password ? password : "");
	}
#undef SET
	free(from);
	return rc == CURLE_OK ? 0 : -1;
}

void
email_send(struct delivery *d)
{
	struct email *e = (struct email *) d;
	char	   *rcpt;

	if (e->msg == NULL)
	{
		metrics.emails_failed++;
		delivery_sent(d, 0, e->msg_error);
		return;
	}
	xasprintf(&rcpt, "<%s>", e->rcpt);
	e->rcpts = curl_slist_append(NULL, rcpt);
	free(rcpt);
	e->msg_off = 0;
	e->started_us = lws_now_usecs();
	e->xfer = (struct curl_xfer) {.easy = curl_easy_init(), .ended = ended};
	if (e->xfer.easy == NULL || set_options(e->xfer.easy, e) != 0 || curl_loop_add(&e->xfer) != 0)
	{
		if (e->xfer.easy)
			curl_easy_cleanup(e->xfer.easy);
		e->xfer.easy = NULL;
		curl_slist_free_all(e->rcpts);
		e->rcpts = NULL;
		metrics.emails_failed++;
		delivery_sent(d, 0, "cannot start the SMTP transfer");
	}
}

void
email_abort(struct delivery *d)
{
	struct email *e = (struct email *) d;

	curl_loop_remove(&e->xfer);
	curl_slist_free_all(e->rcpts);
	e->rcpts = NULL;
	metrics.emails_failed++;
	delivery_sent(d, 0, "stopped by chat-notify's shutdown");
}

/* The password of path in a new string, one trailing newline dropped; NULL on error. */
static char *
read_password(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char	   *buf;
	size_t		n;

	if (f == NULL)
		return NULL;
	buf = xmalloc(PASSWORD_MAX + 1);
	n = fread(buf, 1, PASSWORD_MAX + 1, f);
	fclose(f);
	if (n > PASSWORD_MAX)
	{
		explicit_bzero(buf, PASSWORD_MAX + 1);
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return buf;
}

int
email_send_configure(void)
{
	char	   *p;

	if (!*cf_smtp_password_file)
	{
		email_send_free();
		return 0;
	}
	p = read_password(cf_smtp_password_file);
	if (p == NULL)
	{
		log_error("cannot read smtp_password_file %s: %s", cf_smtp_password_file, strerror(errno));
		return -1;
	}
	email_send_free();
	password = p;
	return 0;
}

void
email_send_free(void)
{
	if (password)
		explicit_bzero(password, strlen(password));
	free(password);
	password = NULL;
}
