/* The /metrics route (see metrics.h). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"
#include "mcp/http/http.h"
#include "util/metrics.h"
#include "vmm/vmm.h"

/* The states a sandbox row can be in (vmm/store.h): each is reported, 0 when empty, so
 * that a dashboard sees a state empty out rather than vanish. */
static const char *const states[] = {"creating", "running", "paused", "stopped", "failed"};

#define MAX_BACKENDS 3u

struct sandbox_totals {
    const char *backends[MAX_BACKENDS];
    size_t n_backends;
    double count[MAX_BACKENDS][WR_ARRAY_SIZE(states)];
    double memory[MAX_BACKENDS], balloon[MAX_BACKENDS];
};

static size_t backend_index(struct sandbox_totals *t, const char *backend)
{
    for (size_t i = 0; i < t->n_backends; i++)
        if (!strcmp(t->backends[i], backend))
            return i;
    if (t->n_backends == MAX_BACKENDS)
        return MAX_BACKENDS;
    t->backends[t->n_backends] = backend;
    return t->n_backends++;
}

static void add_sandbox(struct sandbox_totals *t, const struct vmm_sandbox_info *info)
{
    size_t b = backend_index(t, info->row.backend ? info->row.backend : "");
    if (b == MAX_BACKENDS)
        return;
    for (size_t s = 0; s < WR_ARRAY_SIZE(states); s++)
        if (info->row.state && !strcmp(info->row.state, states[s]))
            t->count[b][s]++;
    t->memory[b] += (double)info->memory_usage_bytes;
    t->balloon[b] += (double)info->balloon_bytes;
}

static int render_sandboxes(struct vmm *vmm, struct wr_buf *out)
{
    struct vmm_sandbox_info *list = NULL;
    size_t n = 0;
    _cleanup_error_ struct wr_error *err = NULL;
    if (vmm_sandbox_list(vmm, &list, &n, &err) < 0)
        return -err->status;
    /* The server's own backend is always there (its sandboxes at 0 before the first). */
    struct sandbox_totals t = {.backends = {vmm_backend_name(vmm)}, .n_backends = 1};
    for (size_t i = 0; i < n; i++) {
        add_sandbox(&t, &list[i]);
        vmm_sandbox_info_clear(&list[i]);
    }
    free(list);
    int r = wr_metrics_render_header(out, "warren_sandboxes",
                                     "Sandboxes in the state directory, by state and backend.",
                                     WR_METRIC_GAUGE);
    for (size_t b = 0; b < t.n_backends && r >= 0; b++)
        for (size_t s = 0; s < WR_ARRAY_SIZE(states) && r >= 0; s++)
            r = wr_metrics_render_sample(out, "warren_sandboxes", "state", states[s], "backend",
                                         t.backends[b], t.count[b][s]);
    if (r >= 0)
        r = wr_metrics_render_header(out, "warren_sandbox_memory_bytes",
                                     "Host memory the running sandboxes hold, by backend.",
                                     WR_METRIC_GAUGE);
    for (size_t b = 0; b < t.n_backends && r >= 0; b++)
        r = wr_metrics_render_sample(out, "warren_sandbox_memory_bytes", "backend", t.backends[b],
                                     NULL, NULL, t.memory[b]);
    if (r >= 0)
        r = wr_metrics_render_header(out, "warren_balloon_bytes",
                                     "Guest memory held by balloons now (handed back to the "
                                     "host), by backend.",
                                     WR_METRIC_GAUGE);
    for (size_t b = 0; b < t.n_backends && r >= 0; b++)
        r = wr_metrics_render_sample(out, "warren_balloon_bytes", "backend", t.backends[b], NULL,
                                     NULL, t.balloon[b]);
    return r;
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    double n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* process_* as Prometheus' client libraries name them. */
static int render_process(struct wr_buf *out)
{
    _cleanup_free_ char *statm = NULL;
    size_t len;
    unsigned long long pages_virtual = 0, pages_resident = 0;
    if (wr_read_file("/proc/self/statm", 4096, &statm, &len) == 0)
        (void)sscanf(statm, "%llu %llu", &pages_virtual, &pages_resident);
    double page = (double)sysconf(_SC_PAGESIZE);
    struct rlimit rl = {0};
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    uint64_t cpu_usec = 0;
    (void)wr_process_cpu_usec(getpid(), &cpu_usec);
    struct {
        const char *name, *help;
        enum wr_metric_kind kind;
        double value;
    } const figures[] = {
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         WR_METRIC_COUNTER, (double)cpu_usec / 1e6},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", WR_METRIC_GAUGE,
         (double)pages_resident * page},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", WR_METRIC_GAUGE,
         (double)pages_virtual * page},
        {"process_open_fds", "Number of open file descriptors.", WR_METRIC_GAUGE, open_fds()},
        {"process_max_fds", "Maximum number of open file descriptors.", WR_METRIC_GAUGE,
         (double)rl.rlim_cur},
    };
    int r = 0;
    for (size_t i = 0; i < WR_ARRAY_SIZE(figures) && r >= 0; i++) {
        r = wr_metrics_render_header(out, figures[i].name, figures[i].help, figures[i].kind);
        if (r >= 0)
            r = wr_metrics_render_sample(out, figures[i].name, NULL, NULL, NULL, NULL,
                                         figures[i].value);
    }
    return r;
}

int mcp_metrics_render(struct vmm *vmm, struct wr_buf *out)
{
    int r = wr_metrics_render(out);
    if (r >= 0)
        r = render_sandboxes(vmm, out);
    if (r >= 0)
        r = render_process(out);
    return r;
}

static void handle(void *data, struct http_conn *c, struct http_request *req)
{
    struct wr_buf out;
    wr_buf_init(&out, 16u << 20);
    int r = mcp_metrics_render(data, &out);
    if (r < 0) {
        wr_buf_free(&out);
        http_respond_error(c, 500, "the metrics could not be gathered; see the server's log");
        return;
    }
    struct http_response resp = {.status = 200,
                                 .content_type = "text/plain; version=0.0.4; charset=utf-8",
                                 .body = out.data,
                                 .body_len = out.len,
                                 .extra_headers = "Cache-Control: no-store\r\n"};
    http_respond(c, &resp);
    wr_buf_free(&out);
}

void mcp_metrics_route(struct http_server *listener, struct vmm *vmm)
{
    struct http_route route = {
        .path = "/metrics",
        .methods = HTTP_METHOD_BIT(HTTP_GET),
        .body_max = 0,
        .handle = handle,
        .data = vmm,
    };
    http_server_route(listener, &route);
}
