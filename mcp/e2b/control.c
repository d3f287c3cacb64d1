/* E2B's control plane: /sandboxes, /v2/sandboxes (see docs/e2b.md, "Control plane").
 * Requests are parsed and capped by request.c; every call on a sandbox goes through the
 * same vmm_* function as the MCP tool that does the same, and is recorded in the
 * sandbox's activity. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "e2b-internal.h"
#include "request.h"
#include "vmm/images/oci.h"

#define CLIENT_ID "warren"
#define MIB (1024.0 * 1024.0)

/* One control-plane call waiting for the vmm. */
struct control_call {
    struct mcp_e2b *e2b;
    struct http_conn *conn; /* NULL once the client went away */
    const char *what;       /* "create", "kill", ... (for the activity record) */
    char *sandbox;          /* its id, once known */
    cJSON *args;            /* what the record shows of the request */
    uint64_t started_ms;
    int64_t timeout_s;      /* connect: the timeout to extend to (0: none) */
    int status;             /* connect: 200 running, 201 resumed */
};

static void call_gone(void *data)
{
    struct control_call *call = data;
    call->conn = NULL;
}

static struct control_call *call_new(struct mcp_e2b *e, struct http_conn *c, const char *what,
                                     const char *sandbox, cJSON *args)
{
    struct control_call *call = wr_calloc(1, sizeof(*call));
    call->e2b = e;
    call->conn = c;
    call->what = what;
    call->sandbox = sandbox ? wr_strdup(sandbox) : NULL;
    call->args = args;
    call->started_ms = wr_now_ms();
    http_conn_on_close(c, call_gone, call);
    return call;
}

static void call_free(struct control_call *call)
{
    if (call->conn)
        http_conn_on_close(call->conn, NULL, NULL);
    cJSON_Delete(call->args);
    free(call->sandbox);
    free(call);
}

/* ---- answers ------------------------------------------------------------------------------ */

static int status_for(int error)
{
    switch (error) {
    case ENOENT:
        return 404;
    case EEXIST:
    case EBUSY:
    case EALREADY:
        return 409;
    case EINVAL:
    case E2BIG:
    case ENOTSUP:
    case ERANGE:
        return 400;
    case ENOSPC:
        return 507;
    default:
        return 500;
    }
}

static void respond_json(struct http_conn *c, int status, cJSON *body, const char *extra_headers)
{
    _cleanup_free_ char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    struct http_response r = {.status = status,
                              .content_type = "application/json",
                              .body = text,
                              .body_len = strlen(text),
                              .extra_headers = extra_headers};
    http_respond(c, &r);
}

static void respond_status(struct http_conn *c, int status)
{
    struct http_response r = {.status = status};
    http_respond(c, &r);
}

/* Records the call on its sandbox (when it names one that exists) and answers it with
 * err's status and message. Consumes err. */
static void call_fail(struct control_call *call, struct wr_error *err)
{
    if (call->sandbox && err->status != ENOENT)
        e2b_record(call->e2b, call->sandbox, call->what, TAKE_PTR(call->args), err->msg,
                   call->started_ms, NULL);
    if (call->conn)
        e2b_respond_error(call->conn, status_for(err->status), err->msg);
    wr_error_free(err);
    call_free(call);
}

static void call_record_ok(struct control_call *call)
{
    e2b_record(call->e2b, call->sandbox, call->what, TAKE_PTR(call->args), NULL,
               call->started_ms, NULL);
}

static void add_time(cJSON *o, const char *key, int64_t t)
{
    char text[40];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, key, text);
}

/* "running" or "paused": a stopped or failed sandbox is booted again by connect, as E2B
 * resumes a paused one, so it is listed as paused. */
static const char *e2b_state(const struct store_sandbox *row)
{
    return !strcmp(row->state, "running") || !strcmp(row->state, "creating") ? "running"
                                                                             : "paused";
}

/* When the sandbox ends: its timeout, else the idle policy's stop, else never (shown as
 * the year 9999: E2B's schema requires a time). */
static int64_t end_at(const struct mcp_e2b *e, const struct store_sandbox *row)
{
    if (row->ttl_seconds > 0)
        return row->created_at + row->ttl_seconds;
    int64_t stop = vmm_idle_stop_at(e->vmm, row->last_used_at);
    return stop > 0 ? stop : 253402300799;
}

static void add_access_token(const struct mcp_e2b *e, cJSON *o, const char *id)
{
    char token[65];
    if (e2b_access_token(e, id, token))
        cJSON_AddStringToObject(o, "envdAccessToken", token);
}

/* create's and connect's answer (E2B's Sandbox). */
static cJSON *sandbox_json(const struct mcp_e2b *e, const struct store_sandbox *row)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sandboxID", row->id);
    cJSON_AddStringToObject(o, "templateID", row->image);
    cJSON_AddStringToObject(o, "clientID", CLIENT_ID);
    cJSON_AddStringToObject(o, "envdVersion", E2B_ENVD_VERSION);
    add_access_token(e, o, row->id);
    cJSON_AddNullToObject(o, "domain");
    return o;
}

/* The network settings as E2B shows them: allowOut / denyOut of an allow-list. */
static void add_network(cJSON *o, const struct store_sandbox *row)
{
    cJSON_AddBoolToObject(o, "allowInternetAccess", row->network == VMM_NET_NAT);
    if (row->network != VMM_NET_ALLOW || !row->network_policy)
        return;
    struct vmm_net_policy p;
    if (vmm_net_policy_parse(row->network_policy, strlen(row->network_policy), &p, NULL) < 0)
        return;
    cJSON *net = cJSON_AddObjectToObject(o, "network");
    cJSON *allow = cJSON_AddArrayToObject(net, "allowOut");
    cJSON *deny = cJSON_AddArrayToObject(net, "denyOut");
    for (char **s = p.allow; s && *s; s++)
        cJSON_AddItemToArray(allow, cJSON_CreateString(*s));
    for (char **s = p.deny; s && *s; s++)
        cJSON_AddItemToArray(deny, cJSON_CreateString(*s));
    /* Hosts not allowed are denied: E2B says so with its all-traffic range. */
    cJSON_AddItemToArray(deny, cJSON_CreateString("0.0.0.0/0"));
    vmm_net_policy_clear(&p);
}

/* getInfo's and the listing's (E2B's SandboxDetail / ListedSandbox). */
static cJSON *detail_json(const struct mcp_e2b *e, const struct vmm_sandbox_info *info,
                          bool with_token)
{
    const struct store_sandbox *row = &info->row;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sandboxID", row->id);
    cJSON_AddStringToObject(o, "templateID", row->image);
    cJSON_AddStringToObject(o, "clientID", CLIENT_ID);
    add_time(o, "startedAt", row->created_at);
    add_time(o, "endAt", end_at(e, row));
    cJSON_AddNumberToObject(o, "cpuCount", row->cpus);
    cJSON_AddNumberToObject(o, "memoryMB", (double)row->memory_mib);
    cJSON_AddNumberToObject(o, "diskSizeMB", (double)row->disk_mib);
    cJSON_AddStringToObject(o, "state", e2b_state(row));
    cJSON_AddStringToObject(o, "envdVersion", E2B_ENVD_VERSION);
    cJSON *meta = row->metadata ? cJSON_Parse(row->metadata) : NULL;
    cJSON_AddItemToObject(o, "metadata", meta ? meta : cJSON_CreateObject());
    if (with_token) {
        add_access_token(e, o, row->id);
        cJSON_AddNullToObject(o, "domain");
        add_network(o, row);
    }
    cJSON_AddArrayToObject(o, "volumeMounts");
    return o;
}

/* ---- create ------------------------------------------------------------------------------- */

static void created(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct control_call *call = data;
    if (err) {
        call_fail(call, err);
        return;
    }
    call->sandbox = wr_strdup(info->row.id);
    call_record_ok(call);
    if (call->conn)
        respond_json(call->conn, 201, sandbox_json(call->e2b, &info->row), NULL);
    call_free(call);
}

static cJSON *create_args(const struct e2b_create_request *r, const char *image)
{
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "templateID", r->template_id ? r->template_id : "base");
    cJSON_AddStringToObject(args, "image", image);
    cJSON_AddNumberToObject(args, "timeout", (double)r->timeout_s);
    if (r->metadata)
        cJSON_AddRawToObject(args, "metadata", r->metadata);
    cJSON_AddItemToObject(args, "network", vmm_net_policy_to_json(&r->network));
    return args;
}

/* Whether image is "host" or an image or template the state directory has. E2B's
 * templates exist before a create names them; so do warren's here: a create never starts
 * a pull (image_pull does), which could outlast the SDK's request timeout. */
static int image_present(struct mcp_e2b *e, const char *image, struct wr_error **err)
{
    if (!strcmp(image, "host"))
        return 0;
    _cleanup_free_ char *normalized = NULL;
    struct wr_error *bad = NULL;
    if (oci_normalize_ref(image, &normalized, &bad) < 0)
        wr_error_free(bad); /* a template name need not be a reference */
    struct vmm_image_info *images = NULL;
    size_t n = 0;
    if (vmm_image_list(e->vmm, &images, &n, err) < 0)
        return -(*err)->status;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        const char *name = images[i].row.name;
        found |= !strcmp(name, image) || (normalized && !strcmp(name, normalized));
        vmm_image_info_clear(&images[i]);
    }
    free(images);
    if (!found)
        return wr_error_set(err, ENOENT,
                            "template '%s' not found: name a template (image_build), an image "
                            "pulled already (image_pull), or host",
                            image);
    return 0;
}

static void control_create(struct mcp_e2b *e, struct http_conn *c, struct http_request *req)
{
    struct e2b_create_request r;
    struct wr_error *err = NULL;
    if (e2b_create_request_parse(req->body.data, req->body.len, VMM_NET_NAT, &r, &err) < 0) {
        e2b_respond_error(c, 400, err->msg);
        wr_error_free(err);
        return;
    }
    const char *image = !r.template_id || !strcmp(r.template_id, "base") ? e->base_image
                                                                          : r.template_id;
    if (image_present(e, image, &err) < 0) {
        e2b_respond_error(c, status_for(err->status), err->msg);
        wr_error_free(err);
        e2b_create_request_clear(&r);
        return;
    }
    struct vmm_create_request vr = {.image = image,
                                    .network = r.network,
                                    .env = (const char *const *)r.env,
                                    .ttl_seconds = r.timeout_s,
                                    .metadata = r.metadata};
    struct control_call *call = call_new(e, c, "create", NULL, create_args(&r, image));
    if (vmm_sandbox_create(e->vmm, &vr, created, call, &err) < 0)
        call_fail(call, err);
    e2b_create_request_clear(&r);
}

/* ---- listing ------------------------------------------------------------------------------ */

static bool metadata_matches(const struct store_sandbox *row, const struct e2b_list_query *q)
{
    if (q->meta_n == 0)
        return true;
    cJSON *meta = row->metadata ? cJSON_Parse(row->metadata) : NULL;
    bool ok = meta != NULL;
    for (size_t i = 0; ok && i < q->meta_n; i++) {
        const char *v =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, q->meta_keys[i]));
        ok = v && !strcmp(v, q->meta_values[i]);
    }
    cJSON_Delete(meta);
    return ok;
}

static bool listed(const struct vmm_sandbox_info *info, const struct e2b_list_query *q)
{
    const char *state = e2b_state(&info->row);
    if (!strcmp(state, "running") ? !q->running : !q->paused)
        return false;
    if (q->template_id && strcmp(q->template_id, info->row.image))
        return false;
    return metadata_matches(&info->row, q);
}

/* Creation time, then id: the order pages follow. */
static int compare_created(const void *a, const void *b)
{
    const struct vmm_sandbox_info *x = a, *y = b;
    if (x->row.created_at != y->row.created_at)
        return x->row.created_at < y->row.created_at ? -1 : 1;
    return strcmp(x->row.id, y->row.id);
}

static bool after_token(const struct vmm_sandbox_info *info, const struct e2b_list_query *q)
{
    if (!q->has_after)
        return true;
    if (info->row.created_at != q->after_created)
        return info->row.created_at > q->after_created;
    return strcmp(info->row.id, q->after_id) > 0;
}

static void control_list(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                         bool paged)
{
    struct e2b_list_query q;
    struct wr_error *err = NULL;
    if (e2b_list_query_parse(req->url, &q, &err) < 0) {
        e2b_respond_error(c, 400, err->msg);
        wr_error_free(err);
        return;
    }
    struct vmm_sandbox_info *infos = NULL;
    size_t n = 0;
    if (vmm_sandbox_list(e->vmm, &infos, &n, &err) < 0) {
        e2b_respond_error(c, status_for(err->status), err->msg);
        wr_error_free(err);
        e2b_list_query_clear(&q);
        return;
    }
    qsort(infos, n, sizeof(*infos), compare_created);
    cJSON *arr = cJSON_CreateArray();
    size_t shown = 0, last = 0;
    _cleanup_free_ char *next = NULL;
    for (size_t i = 0; i < n && !next; i++) {
        if (!after_token(&infos[i], &q) || !listed(&infos[i], &q))
            continue;
        if (paged && shown == q.limit) {
            /* There is more: the token names the last one shown. */
            next = e2b_list_token(infos[last].row.created_at, infos[last].row.id);
            break;
        }
        cJSON_AddItemToArray(arr, detail_json(e, &infos[i], false));
        shown++;
        last = i;
    }
    for (size_t i = 0; i < n; i++)
        vmm_sandbox_info_clear(&infos[i]);
    free(infos);
    e2b_list_query_clear(&q);
    _cleanup_free_ char *header = next ? wr_asprintf("X-Next-Token: %s\r\n", next) : NULL;
    respond_json(c, 200, arr, header);
}

/* ---- one sandbox ---------------------------------------------------------------------------- */

static void control_info(struct mcp_e2b *e, struct http_conn *c, const struct vmm_sandbox_info *info)
{
    respond_json(c, 200, detail_json(e, info, true), NULL);
}

static void killed(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    (void)info;
    struct control_call *call = data;
    if (err) {
        call_fail(call, err);
        return;
    }
    call_record_ok(call);
    if (call->conn)
        respond_status(call->conn, 204);
    call_free(call);
}

static void control_kill(struct mcp_e2b *e, struct http_conn *c, const char *id)
{
    struct wr_error *err = NULL;
    struct control_call *call = call_new(e, c, "kill", id, NULL);
    if (vmm_sandbox_destroy(e->vmm, id, killed, call, &err) < 0)
        call_fail(call, err);
}

static void updated(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    killed(data, info, err); /* the same answer: 204 */
}

static void control_timeout(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                            const char *id)
{
    int64_t timeout = 0;
    struct wr_error *err = NULL;
    if (e2b_timeout_parse(req->body.data, req->body.len, true, &timeout, &err) < 0) {
        e2b_respond_error(c, 400, err->msg);
        wr_error_free(err);
        return;
    }
    cJSON *args = cJSON_CreateObject();
    cJSON_AddNumberToObject(args, "timeout", (double)timeout);
    struct control_call *call = call_new(e, c, "setTimeout", id, args);
    struct vmm_update_request u = {.set_ttl = true, .ttl_seconds = timeout};
    if (vmm_sandbox_update(e->vmm, id, &u, updated, call, &err) < 0)
        call_fail(call, err);
}

static void control_network(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                            const char *id)
{
    struct vmm_net_policy p;
    struct wr_error *err = NULL;
    if (e2b_network_parse(req->body.data, req->body.len, &p, &err) < 0) {
        e2b_respond_error(c, 400, err->msg);
        wr_error_free(err);
        return;
    }
    cJSON *args = cJSON_CreateObject();
    cJSON_AddItemToObject(args, "network", vmm_net_policy_to_json(&p));
    struct control_call *call = call_new(e, c, "updateNetwork", id, args);
    struct vmm_update_request u = {.network = &p};
    if (vmm_sandbox_update(e->vmm, id, &u, updated, call, &err) < 0)
        call_fail(call, err);
    vmm_net_policy_clear(&p);
}

static void control_pause(struct mcp_e2b *e, struct http_conn *c,
                          const struct vmm_sandbox_info *info)
{
    const char *id = info->row.id;
    if (strcmp(e2b_state(&info->row), "running")) {
        _cleanup_free_ char *why = wr_asprintf("sandbox '%s' is already paused", id);
        e2b_respond_error(c, 409, why);
        return;
    }
    struct wr_error *err = NULL;
    struct control_call *call = call_new(e, c, "pause", id, NULL);
    if (vmm_sandbox_pause(e->vmm, id, updated, call, &err) < 0)
        call_fail(call, err);
}

/* ---- connect -------------------------------------------------------------------------------- */

/* Answers connect (or legacy resume) once the sandbox runs, the timeout extended when the
 * request asks for a later end than the sandbox has (E2B never shortens it here). */
static void connect_reply(struct control_call *call, const struct store_sandbox *row)
{
    call_record_ok(call);
    if (call->conn)
        respond_json(call->conn, call->status, sandbox_json(call->e2b, row), NULL);
    call_free(call);
}

static void extended(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct control_call *call = data;
    if (err)
        call_fail(call, err);
    else
        connect_reply(call, &info->row);
}

static void connect_answer(struct control_call *call, const struct store_sandbox *row)
{
    int64_t now = wr_unix_time();
    if (call->timeout_s > 0 && row->ttl_seconds > 0 &&
        now + call->timeout_s > row->created_at + row->ttl_seconds) {
        struct wr_error *err = NULL;
        struct vmm_update_request u = {.set_ttl = true, .ttl_seconds = call->timeout_s};
        if (vmm_sandbox_update(call->e2b->vmm, row->id, &u, extended, call, &err) < 0)
            call_fail(call, err);
        return;
    }
    connect_reply(call, row);
}

static void resumed(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct control_call *call = data;
    if (err)
        call_fail(call, err);
    else
        connect_answer(call, &info->row);
}

static void control_connect(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                            const struct vmm_sandbox_info *info, const char *what)
{
    int64_t timeout = 0;
    struct wr_error *err = NULL;
    if (e2b_timeout_parse(req->body.data, req->body.len, false, &timeout, &err) < 0) {
        e2b_respond_error(c, 400, err->msg);
        wr_error_free(err);
        return;
    }
    cJSON *args = cJSON_CreateObject();
    if (timeout)
        cJSON_AddNumberToObject(args, "timeout", (double)timeout);
    struct control_call *call = call_new(e, c, what, info->row.id, args);
    call->timeout_s = timeout;
    if (!strcmp(e2b_state(&info->row), "running")) {
        call->status = 200;
        connect_answer(call, &info->row);
        return;
    }
    call->status = 201;
    if (vmm_sandbox_resume(e->vmm, info->row.id, resumed, call, &err) < 0)
        call_fail(call, err);
}

/* ---- metrics -------------------------------------------------------------------------------- */

static int64_t query_time(const char *url, const char *name, int64_t fallback, bool *bad)
{
    bool b = false;
    _cleanup_free_ char *v = e2b_query_value(url, name, &b);
    if (b || (v && !*v))
        *bad = true;
    if (!v || !*v)
        return fallback;
    char *end = NULL;
    long long t = strtoll(v, &end, 10);
    if (*end || t < 0)
        *bad = true;
    return t;
}

static void control_metrics(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                            const struct vmm_sandbox_info *info)
{
    bool bad = false;
    int64_t start = query_time(req->url, "start", 0, &bad);
    int64_t end = query_time(req->url, "end", INT64_MAX, &bad);
    if (bad) {
        e2b_respond_error(c, 400, "start and end are unix times in seconds");
        return;
    }
    struct vmm_metrics_sample *samples = NULL;
    size_t n = 0;
    struct wr_error *err = NULL;
    if (vmm_sandbox_metrics(e->vmm, info->row.id, start, &samples, &n, &err) < 0) {
        e2b_respond_error(c, status_for(err->status), err->msg);
        wr_error_free(err);
        return;
    }
    const struct store_sandbox *row = &info->row;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n && samples[i].at <= end; i++) {
        /* CPU use over the interval before the sample, as a share of the sandbox's CPUs. */
        double pct = 0;
        if (i > 0 && samples[i].at > samples[i - 1].at) {
            double used = samples[i].cpu_seconds - samples[i - 1].cpu_seconds;
            pct = 100.0 * used / (double)(samples[i].at - samples[i - 1].at) /
                  (row->cpus ? row->cpus : 1);
            pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
        }
        cJSON *o = cJSON_CreateObject();
        add_time(o, "timestamp", samples[i].at);
        cJSON_AddNumberToObject(o, "timestampUnix", (double)samples[i].at);
        cJSON_AddNumberToObject(o, "cpuCount", row->cpus);
        cJSON_AddNumberToObject(o, "cpuUsedPct", pct);
        cJSON_AddNumberToObject(o, "memUsed", (double)samples[i].memory_usage_bytes);
        cJSON_AddNumberToObject(o, "memTotal", (double)row->memory_mib * MIB);
        cJSON_AddNumberToObject(o, "diskUsed", (double)samples[i].disk_used_bytes);
        cJSON_AddNumberToObject(o, "diskTotal", (double)row->disk_mib * MIB);
        cJSON_AddItemToArray(arr, o);
    }
    free(samples);
    respond_json(c, 200, arr, NULL);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

/* The calls on /sandboxes/{id}/{action}. */
static void control_one(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                        const char *id, const char *action)
{
    enum http_method m = req->method;
    struct wr_error *err = NULL;
    struct vmm_sandbox_info info;
    if (vmm_sandbox_get(e->vmm, id, &info, &err) < 0) {
        _cleanup_free_ char *why = wr_asprintf("sandbox '%s' not found", id);
        e2b_respond_error(c, err->status == ENOENT ? 404 : status_for(err->status),
                          err->status == ENOENT ? why : err->msg);
        wr_error_free(err);
        return;
    }
    /* The calls below act on the sandbox's id: a name in the path names the same one. */
    const char *sid = info.row.id;
    bool get = m == HTTP_GET, post = m == HTTP_POST;
    if (!*action && get)
        control_info(e, c, &info);
    else if (!*action && m == HTTP_DELETE)
        control_kill(e, c, sid);
    else if (!strcmp(action, "connect") && post)
        control_connect(e, c, req, &info, "connect");
    else if (!strcmp(action, "resume") && post)
        control_connect(e, c, req, &info, "resume");
    else if (!strcmp(action, "timeout") && post)
        control_timeout(e, c, req, sid);
    else if (!strcmp(action, "pause") && post)
        control_pause(e, c, &info);
    else if (!strcmp(action, "metrics") && get)
        control_metrics(e, c, req, &info);
    else if (!strcmp(action, "network") && m == HTTP_PUT)
        control_network(e, c, req, sid);
    else if (!strcmp(action, "snapshots") || !strcmp(action, "fork"))
        e2b_respond_error(c, 501,
                          "E2B snapshots keep a sandbox's running processes; warren's "
                          "snapshots (sandbox_snapshot) keep its files only, so "
                          "createSnapshot and fork are not offered here");
    else
        e2b_respond_error(c, 404, "no such route");
    vmm_sandbox_info_clear(&info);
}

void e2b_control_handle(struct mcp_e2b *e, struct http_conn *c, struct http_request *req)
{
    const char *path = req->path;
    bool v2 = !strncmp(path, "/v2/", 4);
    if (v2)
        path += 3;
    /* path is "/sandboxes" or "/sandboxes/<id>[/<action>]". */
    const char *rest = path + strlen("/sandboxes");
    if (!*rest || !strcmp(rest, "/")) {
        if (req->method == HTTP_POST)
            control_create(e, c, req);
        else if (req->method == HTTP_GET)
            control_list(e, c, req, v2);
        else
            e2b_respond_error(c, 405, "method not allowed");
        return;
    }
    char id[64];
    size_t n = strcspn(rest + 1, "/");
    if (n == 0 || n >= sizeof(id)) {
        e2b_respond_error(c, 404, "no such sandbox");
        return;
    }
    memcpy(id, rest + 1, n);
    id[n] = 0;
    const char *action = rest + 1 + n;
    if (*action == '/')
        action++;
    if (!wr_id_valid(id) && !wr_name_valid(id)) {
        e2b_respond_error(c, 404, "no such sandbox");
        return;
    }
    if (strchr(action, '/')) {
        e2b_respond_error(c, 404, "no such route");
        return;
    }
    control_one(e, c, req, id, action);
}
