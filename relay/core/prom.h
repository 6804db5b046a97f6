/*
 * prom.h: the Prometheus text format, written into a growing buffer, and
 * a latency histogram. A daemon lists its own metrics; the writing and
 * the process metrics every daemon has are here.
 */
#ifndef CORE_PROM_H
#define CORE_PROM_H

#include <stddef.h>
#include <stdint.h>

struct prom_out
{
	char	   *s;
	size_t		len,
				cap;
};

/* Seconds: 0.5 ms to 10 s, and +Inf. */
#define PROM_LATENCY_BOUNDS 14

struct prom_histogram
{
	uint64_t	buckets[PROM_LATENCY_BOUNDS + 1];
	uint64_t	count;
	double		sum;
};

/* A page whose text starts after headroom free bytes (for lws's LWS_PRE). */
void		prom_begin(struct prom_out *o, size_t headroom);
void		prom_put(struct prom_out *o, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* One metric with its HELP and TYPE lines; type is "counter" or "gauge". */
void		prom_metric(struct prom_out *o, const char *name, const char *type, const char *help, double v);
void		prom_observe(struct prom_histogram *h, double seconds);
void		prom_histogram(struct prom_out *o, const char *name, const char *help,
						   const struct prom_histogram *h);
/* process_cpu_seconds_total and process_resident_memory_bytes */
void		prom_process(struct prom_out *o);
/* The text (from buf + headroom) and its length; the caller frees buf. */
char	   *prom_end(struct prom_out *o, size_t headroom, size_t *len);

#endif
