/* A sandbox ready for work: a paused sandbox is resumed and a balloon inflated while the
 * sandbox was idle is deflated before the agent connection is handed to the operation. */
#include <string.h>

#include "conn.h"
#include "lifecycle.h"
#include "ready.h"
#include "reclaim.h"

struct deferred_conn {
    struct vmm *vmm;
    char *id;
    uint32_t timeout_ms;
    vmm_conn_cb cb;
    void *data;
};

static void after_deflate(void *data)
{
    struct deferred_conn *d = data;
    vmm__conn_get(d->vmm, vmm__rt_get(d->vmm, d->id, true), d->timeout_ms, d->cb, d->data);
    free(d->id);
    free(d);
}

static void after_resume(void *data, struct wr_error *err)
{
    struct deferred_conn *d = data;
    if (err) {
        wr_error_wrap(&err, "the sandbox is paused and could not be resumed");
        d->cb(d->data, NULL, err);
        free(d->id);
        free(d);
        return;
    }
    struct store_sandbox row;
    if (store_sandbox_get(d->vmm->store, d->id, &row, NULL) < 0) {
        after_deflate(d); /* the connect that follows reports what is wrong */
        return;
    }
    vmm__deflate_then(d->vmm, vmm__rt_get(d->vmm, d->id, true), &row, after_deflate, d);
    store_sandbox_clear(&row);
}

void vmm__with_conn(struct vmm *vmm, const struct store_sandbox *row, uint32_t timeout_ms,
                    vmm_conn_cb cb, void *data)
{
    struct sandbox_rt *rt = vmm__rt_get(vmm, row->id, true);
    bool paused = !strcmp(row->state, "paused");
    if (rt->reclaiming)
        rt->touched = true;
    if (rt->balloon_bytes == 0 && !paused) {
        vmm__conn_get(vmm, rt, timeout_ms, cb, data);
        return;
    }
    struct deferred_conn *d = wr_calloc(1, sizeof(*d));
    *d = (struct deferred_conn){
        .vmm = vmm, .id = wr_strdup(row->id), .timeout_ms = timeout_ms, .cb = cb, .data = data};
    if (paused) /* calls to a paused sandbox resume it first */
        vmm__resume_then(vmm, row, after_resume, d);
    else /* an idle VM gave memory back: take it back before any work starts */
        vmm__deflate_then(vmm, rt, row, after_deflate, d);
}
