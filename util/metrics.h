/* Process-wide counters, gauges and histograms, and their Prometheus text exposition
 * (format 0.0.4). The modules that do the work report into it (the HTTP listener, the MCP
 * call path, the sandbox manager); the /metrics route renders it. It depends on nothing
 * but libc and util, so every layer may report into it without reaching up.
 *
 * A family has at most two labels; a series is made the first time a pair of label values
 * is reported, up to WR_METRIC_MAX_SERIES per family (label values come from the server's
 * own names: tools, outcomes, backends, states, status codes). Values reported past the
 * cap are dropped. Safe from any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define WR_METRIC_MAX_SERIES 256u
#define WR_METRIC_MAX_LABEL_BYTES 128u
#define WR_METRIC_MAX_BUCKETS 16u

enum wr_metric_kind { WR_METRIC_COUNTER, WR_METRIC_GAUGE, WR_METRIC_HISTOGRAM };

struct wr_metric_series;

struct wr_metric_family {
    const char *name;
    const char *help;
    enum wr_metric_kind kind;
    const char *labels[2];  /* label names; NULL where unused */
    const double *buckets;  /* histograms: upper bounds, ascending, without +Inf */
    size_t n_buckets;       /* at most WR_METRIC_MAX_BUCKETS */
    /* Private to util/metrics.c. */
    struct wr_metric_series *series;
    size_t n_series;
};

/* warren's families (util/metrics.c lists their names, help and labels). */
extern struct wr_metric_family wr_metric_tool_calls;         /* {tool, outcome} */
extern struct wr_metric_family wr_metric_tool_call_seconds;  /* {tool} */
extern struct wr_metric_family wr_metric_execs;              /* {outcome} */
extern struct wr_metric_family wr_metric_exec_seconds;       /* {} */
extern struct wr_metric_family wr_metric_file_bytes;         /* {direction} */
extern struct wr_metric_family wr_metric_creates;            /* {backend} */
extern struct wr_metric_family wr_metric_create_failures;    /* {backend} */
extern struct wr_metric_family wr_metric_balloon_reclaimed;  /* {backend} */
extern struct wr_metric_family wr_metric_mcp_sessions;       /* {transport} */
extern struct wr_metric_family wr_metric_http_responses;     /* {code} */

/* Adds v to a counter or gauge series (label values NULL for a family without them). */
void wr_metric_add(struct wr_metric_family *f, const char *l1, const char *l2, double v);
/* Sets a gauge series. */
void wr_metric_set(struct wr_metric_family *f, const char *l1, const char *l2, double v);
/* Records one observation of a histogram series. */
void wr_metric_observe(struct wr_metric_family *f, const char *l1, const char *l2, double v);
/* The current value of a counter or gauge series (0 when it does not exist): for tests and
 * for the server's own decisions. */
double wr_metric_value(struct wr_metric_family *f, const char *l1, const char *l2);

/* Appends every family above that has a series, in the text exposition format. */
int wr_metrics_render(struct wr_buf *out);
/* Appends one family (nothing when it has no series yet). */
int wr_metrics_render_family(struct wr_buf *out, const struct wr_metric_family *f);
/* For values computed when scraped: the # HELP and # TYPE lines of a family... */
int wr_metrics_render_header(struct wr_buf *out, const char *name, const char *help,
                             enum wr_metric_kind kind);
/* ...and one sample line, `name{k1="v1",k2="v2"} value`; label names NULL where unused.
 * Label values are escaped (backslash, double quote, line feed). */
int wr_metrics_render_sample(struct wr_buf *out, const char *name, const char *k1, const char *v1,
                             const char *k2, const char *v2, double value);
