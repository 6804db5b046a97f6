/*
 * push_send_try.c: the FCM and APNs senders alone on a libev loop, against
 * the fake services of test/notify/push_services/ (test_push_send.py runs
 * it; no database, no chat-notify). One line per push on stdout:
 * "<device token> <status> gone=<0|1> retry_after=<s> <error>".
 *
 *   notify-push-try fcm SA_JSON FCM_URL CA ALERT|CLEAR DEVICE...
 *   notify-push-try apns P8 KID TEAM TOPIC URL CA ALERT|CLEAR DEVICE...
 *
 * All of a run's pushes start at once (FCM: they wait for one token), or
 * one after the other with ALERT-SEQ or CLEAR-SEQ.
 * The timers are ev_timers here, not core/timer.c's (no lws context).
 */
#include "apns_send.h"
#include "config.h"
#include "fcm_send.h"
#include "push.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* config.c's settings, set from the command line */
int			cf_max_response = 65536, cf_push_timeout = 3, cf_push_ttl = 60, cf_apns_token_refresh = 3000;
char	   *cf_push_ca_file, *cf_fcm_service_account_file, *cf_fcm_url = "", *cf_fcm_token_url = "";
char	   *cf_apns_key_file, *cf_apns_key_id, *cf_apns_team_id, *cf_apns_topic, *cf_apns_url, *cf_apns_sandbox_url;

static struct ev_loop *loop;
static int	pending;
static struct push **next_push; /* SEQ: the ones not started yet, NULL-ended */

struct tmr
{
	ev_timer	w;
	lws_sorted_usec_list_t *sul;
	sul_cb_t	cb;
};
static struct tmr timers[8];

static void
fired(struct ev_loop *l, ev_timer *w, int revents)
{
	struct tmr *t = (struct tmr *) w;

	t->sul = NULL;
	t->cb(NULL);
}

void
timer_schedule(lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
	for (int i = 0; i < 8; i++)
		if (timers[i].sul == NULL || timers[i].sul == sul)
		{
			ev_timer_stop(loop, &timers[i].w);
			timers[i].sul = sul;
			timers[i].cb = cb;
			ev_timer_init(&timers[i].w, fired, (double) us / 1e6, 0);
			ev_timer_start(loop, &timers[i].w);
			return;
		}
}

void
timer_cancel(lws_sorted_usec_list_t *sul)
{
	for (int i = 0; i < 8; i++)
		if (timers[i].sul == sul)
		{
			ev_timer_stop(loop, &timers[i].w);
			timers[i].sul = NULL;
		}
}

/* push.c's: the keys the apps read */
char *
push_payload(const struct push *p)
{
	char	   *s;

	if (asprintf(&s, "{\"type\":\"%s\",\"chat_id\":%lld,\"unread\":%d}", p->alert ? "message" : "clear",
				 (long long) p->chat_id, p->badge) < 0)
		abort();
	return s;
}

void
delivery_sent(struct delivery *d, int status, const char *error)
{
	struct push *p = (struct push *) d;

	printf("%s %d gone=%d retry_after=%ld %s\n", json_string_value(json_object_get(p->token, "token")), status,
		   p->gone, p->retry_after_s, error ? error : "");
	fflush(stdout);
	if (--pending == 0)
		ev_break(loop, EVBREAK_ALL);
	else if (next_push && *next_push)
	{
		p = *next_push++;
		p->kind == PUSH_FCM ? fcm_send(p) : apns_send(p);
	}
}

static struct push *
new_push(enum push_kind kind, bool alert, const char *device)
{
	struct push *p = calloc(1, sizeof(*p));

	p->kind = kind;
	p->alert = alert;
	p->token = json_pack("{s:s, s:s}", "token", device, "environment", "production");
	p->title = alert ? strdup("User 42") : NULL;
	p->body = alert ? strdup("hello") : NULL;
	p->badge = 3;
	p->chat_id = 7;
	p->device_id = 1;
	p->ttl_s = cf_push_ttl;
	snprintf(p->collapse, sizeof(p->collapse), "chat-%d", 7);
	return p;
}

int
main(int argc, char **argv)
{
	bool		fcm = argc > 1 && strcmp(argv[1], "fcm") == 0;
	int			first = fcm ? 6 : 9;
	struct push **ps;
	int			n;

	if (argc <= first)
	{
		fprintf(stderr, "usage: see push_send_try.c\n");
		return 2;
	}
	loop = ev_default_loop(0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || http_client_start(loop, "") != 0)
		return 1;
	if (fcm)
	{
		cf_fcm_service_account_file = argv[2];
		cf_fcm_url = argv[3];
		cf_push_ca_file = argv[4];
	}
	else
	{
		cf_apns_key_file = argv[2];
		cf_apns_key_id = argv[3];
		cf_apns_team_id = argv[4];
		cf_apns_topic = argv[5];
		cf_apns_url = cf_apns_sandbox_url = argv[6];
		cf_push_ca_file = argv[7];
	}
	if ((fcm ? fcm_configure() : apns_configure()) != 0)
		return 1;
	n = argc - first;
	ps = calloc((size_t) n + 1, sizeof(*ps));
	pending = n;
	for (int i = 0; i < n; i++)
		ps[i] = new_push(fcm ? PUSH_FCM : PUSH_APNS, strncmp(argv[fcm ? 5 : 8], "ALERT", 5) == 0, argv[first + i]);
	if (strstr(argv[fcm ? 5 : 8], "-SEQ"))
		next_push = ps + 1;
	for (int i = 0; i < (next_push ? 1 : n); i++)
		fcm ? fcm_send(ps[i]) : apns_send(ps[i]);
	ev_run(loop, 0);
	fcm ? fcm_free() : apns_free();
	http_client_stop();
	for (int i = 0; i < n; i++)
	{
		json_decref(ps[i]->token);
		free(ps[i]->title);
		free(ps[i]->body);
		free(ps[i]);
	}
	free(ps);
	curl_global_cleanup();
	return 0;
}
