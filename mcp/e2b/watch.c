/* filesystem.Filesystem's watchers: WatchDir (a server stream of events) and the polling
 * watcher (CreateWatcher, GetWatcherEvents, RemoveWatcher), both on vmm_watch_dir, which
 * runs inotify inside the sandbox. A stream's watch ends when its client goes; a polling
 * watcher's when it is removed, when it is not polled for WATCHER_IDLE_MS, or when its
 * sandbox stops. Both end, with an error, when the sandbox goes. */
#include <errno.h>
#include <string.h>

#include "e2b-internal.h"
#include "guest-init/proto.h"

/* A stream's client may fall this far behind before the watch is ended. */
#define STREAM_QUEUE_MAX (4u << 20)
/* Keepalives on a silent stream when the client asks for none (Keepalive-Ping-Interval). */
#define KEEPALIVE_DEFAULT_S 50
/* Polling watchers: at most this many in the server, each keeping at most this many
 * events between polls, forgotten after this long without a poll. */
#define WATCHERS_MAX 256u
#define WATCHER_EVENTS_MAX 10000u
#define WATCHER_IDLE_MS (10u * 60u * 1000u)

static const char *event_type_name(unsigned type)
{
    switch (type) {
    case GI_WATCH_CREATE:
        return "EVENT_TYPE_CREATE";
    case GI_WATCH_WRITE:
        return "EVENT_TYPE_WRITE";
    case GI_WATCH_REMOVE:
        return "EVENT_TYPE_REMOVE";
    case GI_WATCH_RENAME:
        return "EVENT_TYPE_RENAME";
    case GI_WATCH_CHMOD:
        return "EVENT_TYPE_CHMOD";
    default:
        return "EVENT_TYPE_UNSPECIFIED";
    }
}

static cJSON *event_json(const char *name, unsigned type)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "name", name);
    cJSON_AddStringToObject(ev, "type", event_type_name(type));
    return ev;
}

static bool msg_bool(const struct e2b_call *call, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->msg, name));
}

static const char *msg_string(const struct e2b_call *call, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(call->msg, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum connect_code resolve_code(const struct wr_error *err)
{
    return err->status == EACCES ? CONNECT_UNAUTHENTICATED : connect_code_from_errno(err->status);
}

/* ---- WatchDir -------------------------------------------------------------------------- */

struct stream_watch {
    struct e2b_call *call;
    struct vmm_watch *watch; /* NULL until the path is resolved */
    uv_timer_t keepalive;
    uint64_t events;
    bool stopping;
    enum connect_code end_code; /* why warren stopped it (CONNECT_OK: the client went) */
    const char *end_message;
};

static void stream_closed(uv_handle_t *h)
{
    free(h->data);
}

static void stream_stop(struct stream_watch *s, enum connect_code code, const char *message)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->end_code = code;
    s->end_message = message;
    vmm_watch_stop(s->watch);
}

static void stream_started(void *data)
{
    struct stream_watch *s = data;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddObjectToObject(m, "start");
    e2b_call_send(s->call, m);
}

static void stream_event(void *data, const char *name, unsigned type)
{
    struct stream_watch *s = data;
    if (s->stopping || !s->call->conn)
        return;
    if (http_conn_write_queue(s->call->conn) > STREAM_QUEUE_MAX)
        return stream_stop(s, CONNECT_RESOURCE_EXHAUSTED,
                           "the client is not reading the events: the watch was stopped");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToObject(m, "filesystem", event_json(name, type));
    e2b_call_send(s->call, m);
    s->events++;
}

static void stream_end(void *data, struct wr_error *err)
{
    struct stream_watch *s = data;
    struct e2b_call *call = s->call;
    call->record_extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(call->record_extra, "events", (double)s->events);
    uv_timer_stop(&s->keepalive);
    uv_close((uv_handle_t *)&s->keepalive, stream_closed);
    if (s->end_code != CONNECT_OK) {
        wr_error_free(err);
        e2b_call_error(call, s->end_code, s->end_message);
    } else if (err && call->conn) {
        e2b_call_fail(call, err);
    } else {
        wr_error_free(err);
        e2b_call_reply(call, NULL); /* stopped because the client went */
    }
}

static void stream_gone(struct e2b_call *call)
{
    struct stream_watch *s = call->data;
    if (s->watch)
        stream_stop(s, CONNECT_OK, NULL);
    /* else the path is being resolved: stream_resolved sees conn NULL */
}

static void on_keepalive(uv_timer_t *t)
{
    struct stream_watch *s = t->data;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddObjectToObject(m, "keepalive");
    e2b_call_send(s->call, m);
}

static void stream_fail_early(struct stream_watch *s, struct wr_error *err)
{
    struct e2b_call *call = s->call;
    uv_close((uv_handle_t *)&s->keepalive, stream_closed);
    e2b_call_error(call, resolve_code(err), err->msg);
    wr_error_free(err);
}

static void stream_resolved(void *data, char *path, struct wr_error *err)
{
    struct stream_watch *s = data;
    _cleanup_free_ char *resolved = path;
    if (!err && !s->call->conn)
        wr_error_set(&err, ECANCELED, "the client went away");
    if (err)
        return stream_fail_early(s, err);
    static const struct agent_watch_handlers handlers = {
        .started = stream_started, .event = stream_event, .end = stream_end};
    if (vmm_watch_dir(s->call->e2b->vmm, s->call->sandbox, resolved, msg_bool(s->call, "recursive"),
                      &handlers, s, &s->watch, &err) < 0)
        return stream_fail_early(s, err);
    const char *interval = http_request_header(s->call->req, "keepalive-ping-interval");
    long seconds = interval ? strtol(interval, NULL, 10) : 0;
    if (seconds < 1 || seconds > 3600)
        seconds = KEEPALIVE_DEFAULT_S;
    uv_timer_start(&s->keepalive, on_keepalive, (uint64_t)seconds * 1000,
                   (uint64_t)seconds * 1000);
}

void e2b_watch_dir(struct e2b_call *call)
{
    struct stream_watch *s = wr_calloc(1, sizeof *s);
    s->call = call;
    call->data = s;
    call->on_gone = stream_gone;
    uv_timer_init(http_conn_loop(call->conn), &s->keepalive);
    s->keepalive.data = s;
    connect_stream_begin(call->conn);
    struct wr_error *err = NULL;
    if (e2b_resolve_path(call->e2b, call->sandbox, call->user, msg_string(call, "path"),
                         stream_resolved, s, &err) < 0)
        stream_fail_early(s, err);
}

/* ---- the polling watcher ------------------------------------------------------------------ */

struct watcher {
    struct watcher *next;
    struct mcp_e2b *e2b;
    char id[33];
    char *sandbox;
    struct vmm_watch *watch;
    struct e2b_call *creating; /* the CreateWatcher call, until the watch has started */
    cJSON *events;             /* an array, at most WATCHER_EVENTS_MAX */
    bool overflowed, ended, removed;
    char *end_error;
    uint64_t polled_ms;
};

/* The server's watchers (one E2B front door per process). */
static struct watcher *watchers;
static unsigned n_watchers;

static void watcher_unlink(struct watcher *w)
{
    for (struct watcher **p = &watchers; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            n_watchers--;
            return;
        }
}

static void watcher_free(struct watcher *w)
{
    cJSON_Delete(w->events);
    free(w->sandbox);
    free(w->end_error);
    free(w);
}

static void watcher_started(void *data)
{
    struct watcher *w = data;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "watcherId", w->id);
    e2b_call_reply(TAKE_PTR(w->creating), r);
}

static void watcher_event(void *data, const char *name, unsigned type)
{
    struct watcher *w = data;
    if (cJSON_GetArraySize(w->events) >= (int)WATCHER_EVENTS_MAX) {
        w->overflowed = true;
        return;
    }
    cJSON_AddItemToArray(w->events, event_json(name, type));
}

static void watcher_end(void *data, struct wr_error *err)
{
    struct watcher *w = data;
    if (w->creating) {
        e2b_call_fail(TAKE_PTR(w->creating), err);
        err = NULL;
        w->removed = true;
    }
    w->ended = true;
    w->watch = NULL;
    if (err && !w->end_error)
        w->end_error = wr_strdup(err->msg);
    wr_error_free(err);
    if (w->removed) {
        watcher_unlink(w);
        watcher_free(w);
    }
}

/* Stops a watcher; it is freed once its watch has ended. */
static void watcher_remove(struct watcher *w)
{
    if (w->removed)
        return;
    w->removed = true;
    if (w->ended) {
        watcher_unlink(w);
        watcher_free(w);
    } else {
        vmm_watch_stop(w->watch);
    }
}

/* Forgets watchers nobody polled for WATCHER_IDLE_MS. */
static void sweep_idle(void)
{
    uint64_t now = wr_now_ms();
    for (struct watcher *w = watchers, *next; w; w = next) {
        next = w->next;
        if (!w->creating && now - w->polled_ms > WATCHER_IDLE_MS)
            watcher_remove(w);
    }
}

static void watcher_resolved(void *data, char *path, struct wr_error *err)
{
    struct watcher *w = data;
    _cleanup_free_ char *resolved = path;
    if (!err) {
        static const struct agent_watch_handlers handlers = {
            .started = watcher_started, .event = watcher_event, .end = watcher_end};
        if (vmm_watch_dir(w->e2b->vmm, w->sandbox, resolved, msg_bool(w->creating, "recursive"),
                          &handlers, w, &w->watch, &err) == 0)
            return;
    }
    struct e2b_call *call = TAKE_PTR(w->creating);
    e2b_call_error(call, resolve_code(err), err->msg);
    wr_error_free(err);
    watcher_unlink(w);
    watcher_free(w);
}

static void creating_gone(struct e2b_call *call)
{
    (void)call; /* the answer is dropped when it comes; the watcher idles out */
}

void e2b_create_watcher(struct e2b_call *call)
{
    sweep_idle();
    if (n_watchers >= WATCHERS_MAX)
        return e2b_call_error(call, CONNECT_RESOURCE_EXHAUSTED,
                              "too many watchers: remove some with RemoveWatcher");
    struct watcher *w = wr_calloc(1, sizeof *w);
    w->e2b = call->e2b;
    uint8_t bytes[16] = {0};
    (void)wr_random_bytes(bytes, sizeof bytes);
    wr_hex_encode(bytes, sizeof bytes, w->id);
    w->sandbox = wr_strdup(call->sandbox);
    w->creating = call;
    w->events = cJSON_CreateArray();
    w->polled_ms = wr_now_ms();
    w->next = watchers;
    watchers = w;
    n_watchers++;
    call->on_gone = creating_gone;
    struct wr_error *err = NULL;
    if (e2b_resolve_path(call->e2b, call->sandbox, call->user, msg_string(call, "path"),
                         watcher_resolved, w, &err) < 0)
        watcher_resolved(w, NULL, err);
}

static struct watcher *find_watcher(struct e2b_call *call)
{
    const char *id = msg_string(call, "watcherId");
    if (!id)
        id = msg_string(call, "watcher_id");
    for (struct watcher *w = watchers; id && w; w = w->next)
        if (!w->removed && !w->creating && !strcmp(w->id, id) && w->e2b == call->e2b &&
            !strcmp(w->sandbox, call->sandbox))
            return w;
    e2b_call_error(call, CONNECT_NOT_FOUND, "no such watcher");
    return NULL;
}

void e2b_get_watcher_events(struct e2b_call *call)
{
    struct watcher *w = find_watcher(call);
    if (!w)
        return;
    w->polled_ms = wr_now_ms();
    if (w->overflowed) {
        e2b_call_error(call, CONNECT_RESOURCE_EXHAUSTED,
                       "more events came than a watcher keeps between polls: it was removed");
        return watcher_remove(w);
    }
    if (w->ended && cJSON_GetArraySize(w->events) == 0) {
        _cleanup_free_ char *why = wr_asprintf(
            "the watcher ended: %s", w->end_error ? w->end_error : "its directory is gone");
        e2b_call_error(call, CONNECT_NOT_FOUND, why);
        return watcher_remove(w);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "events", w->events);
    w->events = cJSON_CreateArray();
    e2b_call_reply(call, r);
}

void e2b_remove_watcher(struct e2b_call *call)
{
    struct watcher *w = find_watcher(call);
    if (!w)
        return;
    watcher_remove(w);
    e2b_call_reply(call, NULL);
    sweep_idle();
}
