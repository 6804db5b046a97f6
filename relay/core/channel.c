/*
 * channel.c: the sealed channel (channel.h).
 *
 * States of the keys: loaded at set-up; RELOADING while a payload under an
 * unknown key waits for them (every later payload waits behind it, so the
 * order of payloads holds). The periodic refresh replaces the keys without
 * holding anything.
 */
#include "channel.h"

#include "alloc.h"
#include "db.h"
#include "log.h"
#include "timer.h"

#include <stdlib.h>
#include <string.h>

#define HELD_MAX 10000
#define REFUSED_LOG_INTERVAL_US (10 * LWS_US_PER_SEC)
/* an unknown key id costs a reload at most this often (anyone may write one) */
#define UNKNOWN_RELOAD_INTERVAL_US LWS_US_PER_SEC

const char	channel_setup_sql[] =
	"SELECT last_seq, key_id, key FROM chat.event_keyring()";

struct held
{
	struct held *next;
	size_t		len;
	char		payload[];
};

struct channel_stats channel_stats;

static struct channel_hooks on;
static struct seal_ring ring;
static int	keyring_stmt = -1;
static int	refresh_us;
static lws_sorted_usec_list_t refresh_sul;
static bool reloading;			/* payloads wait for the keys */
static bool refreshing;
static int64_t unknown_reload_at = -UNKNOWN_RELOAD_INTERVAL_US;
static struct held *held_head,
		   *held_tail;
static int	nheld;
static int64_t refused_logged_at = -REFUSED_LOG_INTERVAL_US;
static uint64_t refused_unlogged;

static void refresh(lws_sorted_usec_list_t *sul);

static int
hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The keys of a keyring result; -1 when a key is not 32 bytes of bytea hex. */
static int
read_keys(PGresult *res, struct seal_key *keys)
{
	int			n = 0;

	for (int row = 0; row < PQntuples(res) && n < SEAL_MAX_KEYS; row++)
	{
		const char *hex = PQgetvalue(res, row, 2);

		if (PQgetisnull(res, row, 1))
			continue;
		if (strlen(hex) != 2 + 2 * SEAL_KEY_LEN || hex[0] != '\\' || hex[1] != 'x')
			return -1;
		keys[n].id = atoi(PQgetvalue(res, row, 1));
		for (int i = 0; i < SEAL_KEY_LEN; i++)
		{
			int			hi = hex_digit(hex[2 + 2 * i]),
						lo = hex_digit(hex[3 + 2 * i]);

			if (hi < 0 || lo < 0)
				return -1;
			keys[n].key[i] = (unsigned char) (hi << 4 | lo);
		}
		n++;
	}
	return n;
}

/* Take the keys of res; false when res is not a keyring. */
static bool
take_keys(PGresult *res)
{
	struct seal_key keys[SEAL_MAX_KEYS];
	int			n;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3 ||
		PQntuples(res) < 1 || (n = read_keys(res, keys)) < 0)
		return false;
	seal_ring_set_keys(&ring, keys, n);
	memset(keys, 0, sizeof(keys));
	channel_stats.keys = n;
	channel_stats.key_loads++;
	return true;
}

/* Count a refused payload; warn at most every interval. */
static void
refused(enum seal_result why, int key_id, size_t len)
{
	int64_t		now = lws_now_usecs();

	channel_stats.refused[why]++;
	if (now - refused_logged_at < REFUSED_LOG_INTERVAL_US)
	{
		refused_unlogged++;
		return;
	}
	log_warn("event payload refused: %s (key %d, %zu bytes); %llu more refused since the last warning",
			 seal_result_names[why], key_id, len, (unsigned long long) refused_unlogged);
	refused_logged_at = now;
	refused_unlogged = 0;
}

/* Open one payload and hand it on; under an unknown key while may_wait, say so. */
static bool
open_one(const char *payload, size_t len, bool may_wait)
{
	const char *plain;
	size_t		plain_len;
	int			key_id = 0;
	enum seal_result r = seal_open(&ring, payload, len, &plain, &plain_len, &key_id);

	if (r == SEAL_UNKNOWN_KEY && may_wait)
		return false;
	if (r != SEAL_OK)
	{
		refused(r, key_id, len);
		return true;
	}
	channel_stats.opened++;
	on.deliver(plain, plain_len);
	return true;
}

static void
hold(const char *payload, size_t len)
{
	struct held *h = xmalloc(sizeof(*h) + len);

	h->next = NULL;
	h->len = len;
	memcpy(h->payload, payload, len);
	if (held_tail)
		held_tail->next = h;
	else
		held_head = h;
	held_tail = h;
	nheld++;
}

/* Open what waited (keys loaded, or not to be had: then it is refused). */
static void
release_held(void)
{
	reloading = false;
	while (held_head)
	{
		struct held *h = held_head;

		held_head = h->next;
		if (!held_head)
			held_tail = NULL;
		nheld--;
		open_one(h->payload, h->len, false);
		free(h);
	}
}

static void
reload_done(struct db_query *q, PGresult *res)
{
	bool		ok = take_keys(res);

	db_query_free(q);
	if (!ok)
		log_warn("could not load the event keys; payloads under an unknown key are refused");
	refreshing = false;
	if (reloading)
		release_held();
}

/* Load the keys on the pool; false when the database cannot take it now. */
static bool
reload(void)
{
	struct db_query *q;

	if (refreshing)
		return true;
	q = db_query_new(keyring_stmt, 0, reload_done, NULL);
	if (db_submit(q) != 0)
	{
		db_query_free(q);
		return false;
	}
	refreshing = true;
	return true;
}

void
channel_notify(const char *payload, size_t len)
{
	if (reloading)
	{
		if (nheld < HELD_MAX)
		{
			hold(payload, len);
			return;
		}
		release_held();			/* the keys are not coming: refuse what waited */
		on.lost("relay_keys_unavailable");
	}
	if (open_one(payload, len, true))
		return;
	if (lws_now_usecs() - unknown_reload_at < UNKNOWN_RELOAD_INTERVAL_US || !reload())
	{
		open_one(payload, len, false);
		return;
	}
	unknown_reload_at = lws_now_usecs();
	reloading = true;
	hold(payload, len);
}

bool
channel_setup(PGresult *res)
{
	if (!take_keys(res))
	{
		log_error("could not read the event keys (chat.event_keyring(): the role needs chat_event_reader)");
		return false;
	}
	/* a new LISTEN: nothing sealed before now is taken, whatever it carries */
	seal_ring_reset(&ring, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
	if (held_head)
		release_held();
	timer_schedule(&refresh_sul, refresh, refresh_us);
	return true;
}

static void
refresh(lws_sorted_usec_list_t *sul)
{
	(void) reload();
	timer_schedule(&refresh_sul, refresh, refresh_us);
}

void
channel_init(const struct channel_hooks *hooks, int refresh_s)
{
	on = *hooks;
	refresh_us = refresh_s * LWS_US_PER_SEC;
	keyring_stmt = db_statement(channel_setup_sql, 0);
}

void
channel_shutdown(void)
{
	timer_cancel(&refresh_sul);
	while (held_head)
	{
		struct held *h = held_head;

		held_head = h->next;
		free(h);
	}
	held_tail = NULL;
	nheld = 0;
	seal_ring_free(&ring);
}
