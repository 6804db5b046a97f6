/*
 * config.h: every setting of chat-notify, from one table (config.c, read
 * by core/conf.c). Flags override the config file; SIGHUP re-reads both
 * and applies the settings marked reloadable.
 */
#ifndef NOTIFY_CONFIG_H
#define NOTIFY_CONFIG_H

#include <stdbool.h>

#include "conf.h"

#define NOTIFY_VERSION "0.1"

extern char *cf_listen;
extern char *cf_db;
extern char *cf_worker_id;
extern int	cf_poll_interval;
extern int	cf_claim_delay_ms;
extern int	cf_lease;
extern int	cf_webhook_timeout;
extern int	cf_webhook_concurrency;
extern int	cf_webhook_per_endpoint;
extern int	cf_max_response;
extern char *cf_webhook_proxy;
extern int	cf_shutdown_timeout;
extern int	cf_pool_size;
extern int	cf_statement_timeout;
extern int	cf_max_pending;
extern int	cf_backoff_min_ms;
extern int	cf_backoff_max_ms;
extern int	cf_key_refresh;
extern char *cf_smtp_url;
extern char *cf_smtp_from;
extern char *cf_smtp_user;
extern char *cf_smtp_password_file;
extern char *cf_smtp_ca_file;
extern bool cf_smtp_require_tls;
extern int	cf_smtp_timeout;
extern int	cf_email_concurrency;
extern char *cf_unsubscribe_url;
extern char *cf_app_url;
extern char *cf_log_level;
extern int	cf_push_concurrency;
extern int	cf_push_poll_ms;
extern int	cf_push_timeout;
extern int	cf_push_ttl;
extern char *cf_push_ca_file;
extern char *cf_vapid_key_file;
extern char *cf_vapid_subject;
extern char *cf_fcm_service_account_file;
extern char *cf_fcm_url;
extern char *cf_fcm_token_url;
extern char *cf_apns_key_file;
extern char *cf_apns_key_id;
extern char *cf_apns_team_id;
extern char *cf_apns_topic;
extern char *cf_apns_url;
extern char *cf_apns_sandbox_url;
extern int	cf_apns_token_refresh;

/*
 * 0: run; 1: --help was printed (exit 0); -1: a bad setting, already
 * logged (main exits 2).
 */
int			config_load(int argc, char **argv);

/* SIGHUP, all or nothing (core/conf.c); 0 when applied. */
int			config_reload(void);

void		config_free(void);

#endif
