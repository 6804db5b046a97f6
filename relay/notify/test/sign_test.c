/*
 * sign_test.c: the signer (sign.c) against the Standard Webhooks
 * specification's published test vector, and refusals of bad secrets.
 * `make -C relay sign-test` builds it (relay/build/notify-sign-test);
 * test/notify/test_sign.py runs it.
 *
 *   notify-sign-test                      the built-in checks; exit 0 when all pass
 *   notify-sign-test SECRETS ID TIMESTAMP the header value for the body on stdin
 *                                         (for the test's own HMAC to compare)
 */
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	failures;

/* One expected signature (NULL: the secrets must be refused). */
static void
expect(const char *what, const char *secrets, const char *id, int64_t ts, const char *body, const char *want)
{
	char	   *got = sign_webhook(secrets, id, ts, body, strlen(body));
	int			ok = want ? got && strcmp(got, want) == 0 : got == NULL;

	printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, got ? got : "(refused)");
	if (!ok)
	{
		printf("     expected %s\n", want ? want : "(refused)");
		failures++;
	}
	free(got);
}

/* The published vector, a rotation, and secrets that must be refused. */
static int
checks(void)
{
	const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	const char *id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
	const char *body = "{\"test\": 2432232314}";
	const char *sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
	char		both[256];

	expect("published vector", secret, id, 1614265330, body, sig);
	snprintf(both, sizeof(both), "%s %s", sig, sig);
	expect("the same secret twice signs twice", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		   id, 1614265330, body, both);
	expect("another timestamp (computed by Python hmac)", secret, id, 1614265331, body,
		   "v1,l6C9/1+N/lSU6+gfh+YEGqTK2aQ+k8nMEWDvvCgHh7U=");
	expect("no whsec_ prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, 1614265330, body, NULL);
	expect("not base64", "whsec_not*base64", id, 1614265330, body, NULL);
	expect("empty key", "whsec_", id, 1614265330, body, NULL);
	expect("no secret", "", id, 1614265330, body, NULL);
	sign_free();
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}

int
main(int argc, char **argv)
{
	static char body[1 << 20];
	size_t		len;
	char	   *sig;

	if (argc == 1)
		return checks();
	if (argc != 4)
	{
		fprintf(stderr, "usage: %s [SECRETS ID TIMESTAMP < BODY]\n", argv[0]);
		return 2;
	}
	len = fread(body, 1, sizeof(body), stdin);
	sig = sign_webhook(argv[1], argv[2], strtoll(argv[3], NULL, 10), body, len);
	if (sig == NULL)
	{
		fprintf(stderr, "refused\n");
		return 1;
	}
	puts(sig);
	free(sig);
	sign_free();
	return 0;
}
