/* vmm_watch_dir: a directory of a running sandbox watched through its guest-init's WATCH
 * request (inotify inside the sandbox), for E2B's filesystem watchers. */
#include <errno.h>
#include <string.h>

#include "ready.h"
#include "state.h"

struct vmm_watch {
    char *path;
    bool recursive;
    bool stop;   /* vmm_watch_stop came before the agent's watch existed */
    struct agent_watch *agent; /* NULL until the connection is there */
    struct agent_watch_handlers handlers;
    void *data;
};

static void watch_free(struct vmm_watch *w)
{
    free(w->path);
    free(w);
}

static void on_started(void *data)
{
    struct vmm_watch *w = data;
    w->handlers.started(w->data);
}

static void on_event(void *data, const char *name, unsigned type)
{
    struct vmm_watch *w = data;
    w->handlers.event(w->data, name, type);
}

static void on_end(void *data, struct wr_error *err)
{
    struct vmm_watch *w = data;
    w->handlers.end(w->data, err);
    watch_free(w);
}

static void watch_on_conn(void *data, struct agent_conn *conn, struct wr_error *err)
{
    struct vmm_watch *w = data;
    if (conn && w->stop)
        wr_error_set(&err, ECANCELED, "the watch was stopped");
    if (conn && !err) {
        static const struct agent_watch_handlers handlers = {
            .started = on_started, .event = on_event, .end = on_end};
        if (agent_watch(conn, w->path, w->recursive, &handlers, w, &w->agent, &err) == 0)
            return;
    }
    on_end(w, err);
}

int vmm_watch_dir(struct vmm *vmm, const char *id_or_name, const char *path, bool recursive,
                  const struct agent_watch_handlers *handlers, void *data,
                  struct vmm_watch **ret_watch, struct wr_error **err)
{
    struct store_sandbox row;
    if (vmm_path_check(path, err) < 0 || vmm__sandbox_running(vmm, id_or_name, &row, err) < 0)
        return -(*err)->status;
    store_sandbox_touch(vmm->store, row.id, wr_unix_time(), NULL);
    struct vmm_watch *w = wr_calloc(1, sizeof *w);
    w->path = wr_strdup(path);
    w->recursive = recursive;
    w->handlers = *handlers;
    w->data = data;
    *ret_watch = w;
    vmm__with_conn(vmm, &row, 0, watch_on_conn, w);
    store_sandbox_clear(&row);
    return 0;
}

void vmm_watch_stop(struct vmm_watch *w)
{
    if (!w->agent) {
        w->stop = true;
        return;
    }
    struct wr_error *err = NULL;
    if (agent_unwatch(w->agent, &err) < 0)
        wr_error_free(err); /* the connection is going: end comes with its error */
}
