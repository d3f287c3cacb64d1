/* Counters, gauges and histograms, and their Prometheus text exposition (see metrics.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct wr_metric_series {
    char *values[2];
    double value; /* counters and gauges */
    uint64_t bucket_counts[WR_METRIC_MAX_BUCKETS];
    uint64_t count;
    double sum;
};

/* Seconds: tool calls and execs run from a millisecond (a stat) to an hour (a build). */
static const double seconds_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60,  300};

struct wr_metric_family wr_metric_tool_calls = {
    .name = "warren_tool_calls_total",
    .help = "MCP tool calls answered, by tool and outcome (ok, error, cancelled).",
    .kind = WR_METRIC_COUNTER,
    .labels = {"tool", "outcome"}};
struct wr_metric_family wr_metric_tool_call_seconds = {
    .name = "warren_tool_call_duration_seconds",
    .help = "Time from a tools/call request to its answer, by tool.",
    .kind = WR_METRIC_HISTOGRAM,
    .labels = {"tool"},
    .buckets = seconds_buckets,
    .n_buckets = WR_ARRAY_SIZE(seconds_buckets)};
struct wr_metric_family wr_metric_execs = {
    .name = "warren_execs_total",
    .help = "Processes run in sandboxes (from any front door), by outcome (exited, failed, "
            "cancelled).",
    .kind = WR_METRIC_COUNTER,
    .labels = {"outcome"}};
struct wr_metric_family wr_metric_exec_seconds = {
    .name = "warren_exec_duration_seconds",
    .help = "Time from starting a process in a sandbox to its exit.",
    .kind = WR_METRIC_HISTOGRAM,
    .buckets = seconds_buckets,
    .n_buckets = WR_ARRAY_SIZE(seconds_buckets)};
struct wr_metric_family wr_metric_file_bytes = {
    .name = "warren_file_bytes_total",
    .help = "File content moved by the file tools, by direction (read: out of a sandbox, "
            "write: into one).",
    .kind = WR_METRIC_COUNTER,
    .labels = {"direction"}};
struct wr_metric_family wr_metric_creates = {
    .name = "warren_sandbox_creates_total",
    .help = "Sandboxes created and started, by backend.",
    .kind = WR_METRIC_COUNTER,
    .labels = {"backend"}};
struct wr_metric_family wr_metric_create_failures = {
    .name = "warren_sandbox_create_failures_total",
    .help = "Sandbox creates that failed, by backend.",
    .kind = WR_METRIC_COUNTER,
    .labels = {"backend"}};
struct wr_metric_family wr_metric_balloon_reclaimed = {
    .name = "warren_balloon_reclaimed_bytes_total",
    .help = "Guest memory handed back to the host by balloon inflation of idle VMs.",
    .kind = WR_METRIC_COUNTER,
    .labels = {"backend"}};
struct wr_metric_family wr_metric_mcp_sessions = {
    .name = "warren_mcp_sessions",
    .help = "MCP sessions open, by transport.",
    .kind = WR_METRIC_GAUGE,
    .labels = {"transport"}};
struct wr_metric_family wr_metric_http_responses = {
    .name = "warren_http_responses_total",
    .help = "HTTP responses the listener started, by status code.",
    .kind = WR_METRIC_COUNTER,
    .labels = {"code"}};

static struct wr_metric_family *const families[] = {
    &wr_metric_tool_calls,        &wr_metric_tool_call_seconds, &wr_metric_execs,
    &wr_metric_exec_seconds,      &wr_metric_file_bytes,        &wr_metric_creates,
    &wr_metric_create_failures,   &wr_metric_balloon_reclaimed, &wr_metric_mcp_sessions,
    &wr_metric_http_responses,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool label_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strncmp(a, b, WR_METRIC_MAX_LABEL_BYTES) == 0 &&
                          strlen(a) == strnlen(b, WR_METRIC_MAX_LABEL_BYTES));
}

static char *label_copy(const char *v)
{
    return v ? strndup(v, WR_METRIC_MAX_LABEL_BYTES) : NULL;
}

/* The series of (l1, l2), made when new; NULL past the cap. Called with the lock held. */
static struct wr_metric_series *series_get(struct wr_metric_family *f, const char *l1,
                                           const char *l2)
{
    if (!f->labels[0])
        l1 = NULL;
    if (!f->labels[1])
        l2 = NULL;
    for (size_t i = 0; i < f->n_series; i++)
        if (label_equal(f->series[i].values[0], l1) && label_equal(f->series[i].values[1], l2))
            return &f->series[i];
    if (f->n_series >= WR_METRIC_MAX_SERIES)
        return NULL;
    if ((f->n_series & (f->n_series - 1)) == 0) {
        size_t cap = f->n_series ? f->n_series * 2 : 4;
        f->series = wr_realloc(f->series, cap * sizeof(*f->series));
    }
    struct wr_metric_series *s = &f->series[f->n_series++];
    *s = (struct wr_metric_series){.values = {label_copy(l1), label_copy(l2)}};
    return s;
}

void wr_metric_add(struct wr_metric_family *f, const char *l1, const char *l2, double v)
{
    pthread_mutex_lock(&lock);
    struct wr_metric_series *s = series_get(f, l1, l2);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&lock);
}

void wr_metric_set(struct wr_metric_family *f, const char *l1, const char *l2, double v)
{
    pthread_mutex_lock(&lock);
    struct wr_metric_series *s = series_get(f, l1, l2);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&lock);
}

void wr_metric_observe(struct wr_metric_family *f, const char *l1, const char *l2, double v)
{
    pthread_mutex_lock(&lock);
    struct wr_metric_series *s = series_get(f, l1, l2);
    if (s) {
        for (size_t i = 0; i < f->n_buckets; i++)
            if (v <= f->buckets[i])
                s->bucket_counts[i]++;
        s->count++;
        s->sum += v;
    }
    pthread_mutex_unlock(&lock);
}

double wr_metric_value(struct wr_metric_family *f, const char *l1, const char *l2)
{
    double v = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < f->n_series; i++)
        if (label_equal(f->series[i].values[0], f->labels[0] ? l1 : NULL) &&
            label_equal(f->series[i].values[1], f->labels[1] ? l2 : NULL))
            v = f->series[i].value;
    pthread_mutex_unlock(&lock);
    return v;
}

/* ---- exposition ------------------------------------------------------------------------ */

static int put_value(struct wr_buf *out, double v)
{
    if (isinf(v))
        return wr_buf_printf(out, v > 0 ? "+Inf" : "-Inf");
    if (isnan(v))
        return wr_buf_printf(out, "NaN");
    if (v == floor(v) && fabs(v) < 1e15)
        return wr_buf_printf(out, "%.0f", v);
    /* The shortest of 15 or 17 digits that reads back as the same double. */
    char text[40];
    snprintf(text, sizeof(text), "%.15g", v);
    if (strtod(text, NULL) != v)
        snprintf(text, sizeof(text), "%.17g", v);
    return wr_buf_printf(out, "%s", text);
}

/* A label value between double quotes: \ " and line feed escaped, as the format says. */
static int put_label_value(struct wr_buf *out, const char *v)
{
    int r = wr_buf_append(out, "\"", 1);
    for (const char *p = v; r >= 0 && *p; p++) {
        if (*p == '\\')
            r = wr_buf_append(out, "\\\\", 2);
        else if (*p == '"')
            r = wr_buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            r = wr_buf_append(out, "\\n", 2);
        else
            r = wr_buf_append(out, p, 1);
    }
    return r < 0 ? r : wr_buf_append(out, "\"", 1);
}

/* {k1="v1",k2="v2",k3="v3"}: pairs whose name is NULL are left out; nothing when none. */
static int put_labels(struct wr_buf *out, const char *const names[3], const char *const values[3])
{
    int r = 0, n = 0;
    for (int i = 0; i < 3 && r >= 0; i++) {
        if (!names[i] || !values[i])
            continue;
        r = wr_buf_printf(out, "%s%s=", n++ ? "," : "{", names[i]);
        if (r >= 0)
            r = put_label_value(out, values[i]);
    }
    return r < 0 || !n ? r : wr_buf_append(out, "}", 1);
}

int wr_metrics_render_header(struct wr_buf *out, const char *name, const char *help,
                             enum wr_metric_kind kind)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    return wr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, types[kind]);
}

int wr_metrics_render_sample(struct wr_buf *out, const char *name, const char *k1, const char *v1,
                             const char *k2, const char *v2, double value)
{
    const char *names[3] = {k1, k2, NULL}, *values[3] = {v1, v2, NULL};
    int r = wr_buf_printf(out, "%s", name);
    if (r >= 0)
        r = put_labels(out, names, values);
    if (r >= 0)
        r = wr_buf_append(out, " ", 1);
    if (r >= 0)
        r = put_value(out, value);
    return r < 0 ? r : wr_buf_append(out, "\n", 1);
}

static int render_histogram(struct wr_buf *out, const struct wr_metric_family *f,
                            const struct wr_metric_series *s)
{
    const char *names[3] = {f->labels[0], f->labels[1], "le"};
    const char *values[3] = {s->values[0], s->values[1], NULL};
    int r = 0;
    for (size_t b = 0; b <= f->n_buckets && r >= 0; b++) {
        char le[32];
        if (b < f->n_buckets)
            snprintf(le, sizeof(le), "%g", f->buckets[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        values[2] = le;
        r = wr_buf_printf(out, "%s_bucket", f->name);
        if (r >= 0)
            r = put_labels(out, names, values);
        if (r >= 0)
            r = wr_buf_printf(out, " %llu\n",
                              (unsigned long long)(b < f->n_buckets ? s->bucket_counts[b]
                                                                     : s->count));
    }
    names[2] = NULL;
    for (int k = 0; k < 2 && r >= 0; k++) {
        r = wr_buf_printf(out, "%s_%s", f->name, k ? "count" : "sum");
        if (r >= 0)
            r = put_labels(out, names, values);
        if (r >= 0)
            r = wr_buf_append(out, " ", 1);
        if (r >= 0)
            r = put_value(out, k ? (double)s->count : s->sum);
        if (r >= 0)
            r = wr_buf_append(out, "\n", 1);
    }
    return r;
}

int wr_metrics_render_family(struct wr_buf *out, const struct wr_metric_family *f)
{
    if (!f->n_series)
        return 0;
    int r = wr_metrics_render_header(out, f->name, f->help, f->kind);
    for (size_t i = 0; i < f->n_series && r >= 0; i++) {
        const struct wr_metric_series *s = &f->series[i];
        if (f->kind == WR_METRIC_HISTOGRAM)
            r = render_histogram(out, f, s);
        else
            r = wr_metrics_render_sample(out, f->name, f->labels[0], s->values[0], f->labels[1],
                                         s->values[1], s->value);
    }
    return r;
}

int wr_metrics_render(struct wr_buf *out)
{
    int r = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < WR_ARRAY_SIZE(families) && r >= 0; i++)
        r = wr_metrics_render_family(out, families[i]);
    pthread_mutex_unlock(&lock);
    return r;
}
