/* Metrics of running sandboxes, sampled by this process every VMM_METRICS_INTERVAL_S on
 * its own timer: host memory, balloon, cumulative CPU and disk use, kept in memory in a
 * ring of VMM_METRICS_SAMPLES per sandbox (an hour) and lost when the server stops. A
 * sandbox that is not running gets no samples. The figures are sandbox_list's, plus CPU
 * (the backend's cpu_usage, else the VMM process's utime + stime) and, for a sandbox
 * without a disk, the size of its upper directories. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "spec.h"
#include "state.h"

struct metrics_ring {
    char id[32];
    struct vmm_metrics_sample samples[VMM_METRICS_SAMPLES];
    size_t next, n; /* next slot to write; samples held */
    bool seen;      /* still listed at the last tick */
    struct metrics_ring *next_ring;
};

static struct metrics_ring *ring_get(struct vmm *vmm, const char *id, bool create)
{
    for (struct metrics_ring *r = vmm->metrics; r; r = r->next_ring)
        if (!strcmp(r->id, id))
            return r;
    if (!create)
        return NULL;
    struct metrics_ring *r = wr_calloc(1, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->next_ring = vmm->metrics;
    vmm->metrics = r;
    return r;
}

static void ring_push(struct metrics_ring *r, const struct vmm_metrics_sample *s)
{
    r->samples[r->next] = *s;
    r->next = (r->next + 1) % VMM_METRICS_SAMPLES;
    if (r->n < VMM_METRICS_SAMPLES)
        r->n++;
}

/* CPU and, without a disk, the uppers' size: what sandbox_list does not show. */
static void sample_extra(struct vmm *vmm, const struct vmm_sandbox_info *info,
                         struct vmm_metrics_sample *s)
{
    struct spec_storage spec;
    if (vmm__spec_build(vmm, &info->row, &spec, NULL) < 0)
        return;
    uint64_t usec = 0;
    int r = spec.ops->cpu_usage ? spec.ops->cpu_usage(&spec.spec, info->row.pid, &usec)
                                : wr_process_cpu_usec(info->row.pid, &usec);
    if (r == 0)
        s->cpu_seconds = (double)usec / 1e6;
    if (!info->row.disk_mib)
        s->disk_used_bytes = wr_disk_usage(spec.root_upper) + wr_disk_usage(spec.ws_upper);
    vmm__spec_clear(&spec);
}

static void forget_gone(struct vmm *vmm)
{
    for (struct metrics_ring **p = &vmm->metrics; *p;) {
        struct metrics_ring *r = *p;
        if (r->seen) {
            r->seen = false;
            p = &r->next_ring;
        } else {
            *p = r->next_ring;
            free(r);
        }
    }
}

static void tick(uv_timer_t *t)
{
    struct vmm *vmm = t->data;
    struct vmm_sandbox_info *infos;
    size_t n;
    _cleanup_error_ struct wr_error *err = NULL;
    if (vmm_sandbox_list(vmm, &infos, &n, &err) < 0) {
        log_warning("metrics: %s", err->msg);
        return;
    }
    int64_t now = wr_unix_time();
    for (size_t i = 0; i < n; i++) {
        struct vmm_sandbox_info *info = &infos[i];
        struct metrics_ring *ring = ring_get(vmm, info->row.id, !strcmp(info->row.state, "running"));
        if (ring)
            ring->seen = true;
        if (ring && !strcmp(info->row.state, "running")) {
            struct vmm_metrics_sample s = {.at = now,
                                           .memory_usage_bytes = info->memory_usage_bytes,
                                           .balloon_bytes = info->balloon_bytes,
                                           .disk_used_bytes = info->disk_used_bytes};
            sample_extra(vmm, info, &s);
            ring_push(ring, &s);
        }
        store_sandbox_clear(&info->row); /* vmm_sandbox_info_clear, which lives above */
    }
    free(infos);
    forget_gone(vmm);
}

int vmm_sandbox_metrics(struct vmm *vmm, const char *id_or_name, int64_t since,
                        struct vmm_metrics_sample **ret, size_t *ret_n, struct wr_error **err)
{
    struct store_sandbox row;
    if (store_sandbox_get(vmm->store, id_or_name, &row, err) < 0)
        return -(*err)->status;
    struct metrics_ring *ring = ring_get(vmm, row.id, false);
    store_sandbox_clear(&row);
    size_t n = 0, held = ring ? ring->n : 0;
    *ret = held ? wr_calloc(held, sizeof(**ret)) : NULL;
    for (size_t i = 0; i < held; i++) {
        size_t slot = (ring->next + VMM_METRICS_SAMPLES - held + i) % VMM_METRICS_SAMPLES;
        if (ring->samples[slot].at >= since)
            (*ret)[n++] = ring->samples[slot];
    }
    *ret_n = n;
    return 0;
}

uint32_t vmm_metrics_interval_ms(const struct vmm *vmm)
{
    return vmm->metrics_interval_ms;
}

void vmm__metrics_start(struct vmm *vmm)
{
    /* Tests sample faster; nothing else should set it. */
    const char *test_interval = getenv("WARREN_METRICS_INTERVAL_MS");
    long ms = test_interval ? strtol(test_interval, NULL, 10) : 0;
    vmm->metrics_interval_ms = ms >= 100 && ms <= 60000 ? (uint32_t)ms : VMM_METRICS_INTERVAL_S * 1000;
    vmm->metrics_timer = wr_calloc(1, sizeof(*vmm->metrics_timer));
    uv_timer_init(vmm->loop, vmm->metrics_timer);
    vmm->metrics_timer->data = vmm;
    uv_timer_start(vmm->metrics_timer, tick, vmm->metrics_interval_ms, vmm->metrics_interval_ms);
    uv_unref((uv_handle_t *)vmm->metrics_timer); /* never the reason the loop stays alive */
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

void vmm__metrics_stop(struct vmm *vmm)
{
    if (vmm->metrics_timer) {
        uv_timer_stop(vmm->metrics_timer);
        uv_close((uv_handle_t *)TAKE_PTR(vmm->metrics_timer), timer_closed);
    }
    while (vmm->metrics) {
        struct metrics_ring *r = vmm->metrics;
        vmm->metrics = r->next_ring;
        free(r);
    }
}
