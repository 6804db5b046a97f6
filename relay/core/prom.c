/*
 * prom.c: the Prometheus text format (prom.h).
 */
#include "prom.h"

#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static const double bounds[PROM_LATENCY_BOUNDS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

void
prom_begin(struct prom_out *o, size_t headroom)
{
	o->cap = 8192 + headroom;
	o->s = xmalloc(o->cap);
	o->len = headroom;
}

void
prom_put(struct prom_out *o, const char *fmt,...)
{
	va_list		ap;
	int			n;

	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < o->cap - o->len)
			break;
		o->cap *= 2;
		o->s = xrealloc(o->s, o->cap);
	}
	o->len += (size_t) n;
}

void
prom_metric(struct prom_out *o, const char *name, const char *type, const char *help, double v)
{
	prom_put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

void
prom_observe(struct prom_histogram *h, double seconds)
{
	int			i;

	for (i = 0; i < PROM_LATENCY_BOUNDS && seconds > bounds[i]; i++)
		;
	h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}

void
prom_histogram(struct prom_out *o, const char *name, const char *help, const struct prom_histogram *h)
{
	uint64_t	cum = 0;

	prom_put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < PROM_LATENCY_BOUNDS; i++)
	{
		cum += h->buckets[i];
		prom_put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long) cum);
	}
	prom_put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) h->count);
	prom_put(o, "%s_sum %.9f\n", name, h->sum);
	prom_put(o, "%s_count %llu\n", name, (unsigned long long) h->count);
}

/* Resident memory of this process, bytes. */
static double
rss_bytes(void)
{
	FILE	   *f = fopen("/proc/self/statm", "r");
	long		pages = 0,
				rss = 0;

	if (f)
	{
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (double) rss * (double) sysconf(_SC_PAGESIZE);
}

void
prom_process(struct prom_out *o)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	prom_metric(o, "process_cpu_seconds_total", "counter", "User and system CPU time of the process.",
				(double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
				ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	prom_metric(o, "process_resident_memory_bytes", "gauge", "Resident memory of the process.", rss_bytes());
}

char *
prom_end(struct prom_out *o, size_t headroom, size_t *len)
{
	*len = o->len - headroom;
	return o->s;
}
