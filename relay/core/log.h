/*
 * log.h: leveled log lines on stderr; levels are checked before formatting.
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

enum log_level
{
	LOGL_ERROR,
	LOGL_WARN,
	LOGL_INFO,
	LOGL_DEBUG
};

extern int	log_level;

void		log_write(int level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
int			log_parse_level(const char *name);
void		log_lws_emit(int level, const char *line);

#define log_error(...) log_write(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_level >= LOGL_WARN) log_write(LOGL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_level >= LOGL_INFO) log_write(LOGL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOGL_DEBUG) log_write(LOGL_DEBUG, __VA_ARGS__); } while (0)

#endif
