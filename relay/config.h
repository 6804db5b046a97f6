/*
 * config.h: every setting of chat-relay, from one table (config.c, read
 * by core/conf.c). Flags override the config file; SIGHUP re-reads both
 * and applies the settings marked reloadable.
 */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

extern char *cf_listen;
extern char *cf_metrics_listen;	/* admin.c */
extern char *cf_db;
extern char *cf_relay_id;
extern char *cf_jwt_alg;
extern char *cf_jwt_secret_file;
extern char *cf_jwt_public_key_file;
extern char *cf_jwt_issuer;
extern char *cf_jwt_audience;
extern int	cf_jwt_leeway;
extern int	cf_max_token;
extern struct cf_list cf_allow_origin;
extern bool cf_allow_no_origin;
extern double cf_rate;
extern int	cf_burst;
extern double cf_typing_rate;
extern int	cf_typing_burst;
extern int	cf_max_frame;
extern int	cf_max_conns_per_user;
extern int	cf_max_connections;
extern int	cf_max_inflight;
extern int	cf_ping_interval;
extern int	cf_ping_timeout;
extern int	cf_send_queue;
extern int	cf_send_queue_bytes;
extern int	cf_max_total_queue_bytes;
extern int	cf_max_answer_bytes;
extern int	cf_slow_close_timeout;
extern int	cf_coalesce_rate;
extern int	cf_coalesce_ms;
extern int	cf_rx_buffer;
extern int	cf_pool_size;
extern int	cf_pipeline_depth;
extern int	cf_statement_timeout;
extern int	cf_max_pending;
extern int	cf_backoff_min_ms;
extern int	cf_backoff_max_ms;
extern int	cf_key_refresh;
extern int	cf_handshake_timeout;
extern double cf_upgrade_rate;
extern int	cf_upgrade_burst;
extern int	cf_flood_close;
extern int	cf_max_presence_subscriptions;
extern int	cf_header_pool;
extern int	cf_max_handshakes_per_address;
extern int	cf_heartbeat_interval;
extern int	cf_presence_grace;
extern int	cf_shutdown_timeout;
extern char *cf_log_level;
extern char *cf_event_lib;
extern char *cf_www;			/* static.c */
extern char *cf_www_csp;
extern bool cf_dev_tokens;		/* devtoken.c */
extern int	cf_dev_token_ttl;
extern char *cf_vapid_public_key;	/* conn.c: welcome */

/*
 * 0: run; 1: --help was printed (exit 0); -1: a bad setting, already
 * logged (main exits 2).
 */
int			config_load(int argc, char **argv);

/* SIGHUP, all or nothing: see conf_reload (accept loads the keys). */
static inline int
config_reload(int (*accept) (void))
{
	return conf_reload(accept);
}

static inline void
config_free(void)
{
	conf_free();
}

#endif
