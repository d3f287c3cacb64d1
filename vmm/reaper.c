/* The housekeeping timer: a sandbox created with ttl_seconds is destroyed once that much
 * time has passed since its creation, by whichever warren process notices first; an idle
 * VM sandbox hands memory back (vmm/reclaim.c). */
#include <string.h>

#include "conn.h"
#include "lifecycle.h"
#include "pool.h"
#include "reaper.h"
#include "reclaim.h"

#define REAPER_INTERVAL_MS 5000

static void reaped(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    char *name = data;
    if (err)
        log_warning("destroying expired sandbox '%s': %s", name, err->msg);
    else
        log_info("destroyed sandbox '%s': its ttl ran out", name);
    wr_error_free(err);
    free(name);
}

static void paused(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    char *name = data;
    if (err)
        log_warning("pausing idle sandbox '%s': %s", name, err->msg);
    else
        log_info("paused sandbox '%s': idle", name);
    wr_error_free(err);
    free(name);
}

int64_t vmm_idle_pause_at(const struct vmm *vmm, int64_t last_used)
{
    return vmm->idle_pause_s ? last_used + vmm->idle_pause_s : 0;
}

int64_t vmm_idle_stop_at(const struct vmm *vmm, int64_t last_used)
{
    return vmm->idle_stop_s ? last_used + vmm->idle_stop_s : 0;
}

/* Long idle: stopped (files kept); idle: paused; idle VMs: memory handed back first. A
 * sandbox with a terminal attached is in use: the idle clock starts when it is left. */
static void idle_policy(struct vmm *vmm, const struct store_sandbox *r, int64_t now)
{
    struct sandbox_rt *rt = vmm__rt_get(vmm, r->id, false);
    if (rt && rt->terminals > 0) {
        store_sandbox_touch(vmm->store, r->id, now, NULL);
        return;
    }
    bool running = !strcmp(r->state, "running"), is_paused = !strcmp(r->state, "paused");
    int64_t stop_at = vmm_idle_stop_at(vmm, r->last_used_at);
    int64_t pause_at = vmm_idle_pause_at(vmm, r->last_used_at);
    if ((running || is_paused) && stop_at && now >= stop_at) {
        vmm__stop_idle(vmm, r,
                       "stopped after being idle (sandbox_resume boots it again with its files)");
    } else if (running && pause_at && now >= pause_at) {
        char *name = wr_strdup(r->name);
        struct wr_error *e = NULL;
        if (vmm_sandbox_pause(vmm, r->id, paused, name, &e) < 0)
            paused(name, NULL, e);
    } else if (running) {
        vmm__reclaim_idle(vmm, r);
    }
}

static void reap(uv_timer_t *t)
{
    struct vmm *vmm = t->data;
    struct store_sandbox *rows;
    size_t n;
    _cleanup_error_ struct wr_error *err = NULL;
    if (store_sandbox_list(vmm->store, &rows, &n, &err) < 0) {
        log_warning("ttl reaper: %s", err->msg);
        return;
    }
    int64_t now = wr_unix_time();
    for (size_t i = 0; i < n; i++) {
        struct store_sandbox *r = &rows[i];
        if (r->ttl_seconds > 0 && r->created_at + r->ttl_seconds <= now &&
            strcmp(r->state, "creating") != 0) {
            char *name = wr_strdup(r->name);
            struct wr_error *e = NULL;
            if (vmm_sandbox_destroy(vmm, r->id, reaped, name, &e) < 0)
                reaped(name, NULL, e);
        } else {
            idle_policy(vmm, r, now);
        }
        store_sandbox_clear(r);
    }
    free(rows);
    vmm__pools_tick(vmm);
}

void vmm__reaper_start(struct vmm *vmm)
{
    vmm->reaper = wr_calloc(1, sizeof(*vmm->reaper));
    uv_timer_init(vmm->loop, vmm->reaper);
    vmm->reaper->data = vmm;
    uv_timer_start(vmm->reaper, reap, REAPER_INTERVAL_MS, REAPER_INTERVAL_MS);
    uv_unref((uv_handle_t *)vmm->reaper); /* never the reason the loop stays alive */
}

static void reaper_closed(uv_handle_t *h)
{
    free(h);
}

void vmm__reaper_stop(struct vmm *vmm)
{
    if (!vmm->reaper)
        return;
    uv_timer_stop(vmm->reaper);
    uv_close((uv_handle_t *)TAKE_PTR(vmm->reaper), reaper_closed);
}
