#include <stdio.h>
#include <string.h>

#include "common.h"

static void add_time(cJSON *o, const char *key, int64_t t)
{
    char buf[32];
    wr_format_time(t, buf);
    cJSON_AddStringToObject(o, key, buf);
}

static void add_nullable(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *mcp_sandbox_json(const struct vmm *vmm, const struct vmm_sandbox_info *info)
{
    const struct store_sandbox *r = &info->row;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "backend", r->backend);
    cJSON_AddStringToObject(o, "state", r->state);
    cJSON_AddStringToObject(o, "image", r->image);
    cJSON_AddStringToObject(o, "workspace", "/workspace");
    add_nullable(o, "repo", r->repo);
    add_nullable(o, "ref", r->repo ? (r->ref ? r->ref : (r->commit_id ? "HEAD" : NULL)) : NULL);
    add_nullable(o, "commit", r->commit_id);
    cJSON_AddNumberToObject(o, "cpus", r->cpus);
    cJSON *net = NULL;
    struct vmm_net_policy p;
    if (r->network == VMM_NET_ALLOW && r->network_policy &&
        vmm_net_policy_parse(r->network_policy, strlen(r->network_policy), &p, NULL) == 0) {
        net = vmm_net_policy_to_json(&p);
        vmm_net_policy_clear(&p);
    }
    cJSON_AddItemToObject(o, "network", net ? net : cJSON_CreateBool(r->network == VMM_NET_NAT));
    cJSON_AddNumberToObject(o, "ttl_seconds", (double)r->ttl_seconds);
    if (r->ttl_seconds > 0)
        add_time(o, "expires_at", r->created_at + r->ttl_seconds);
    else
        cJSON_AddNullToObject(o, "expires_at");
    add_time(o, "created_at", r->created_at);
    add_time(o, "last_used_at", r->last_used_at);
    add_nullable(o, "error", r->error);
    cJSON *idle = cJSON_AddObjectToObject(o, "idle_policy");
    bool live = !strcmp(r->state, "running") || !strcmp(r->state, "paused");
    /* vmm is NULL when the call was cancelled: the result is not sent then anyway. */
    int64_t pause_at =
        vmm && !strcmp(r->state, "running") ? vmm_idle_pause_at(vmm, r->last_used_at) : 0;
    int64_t stop_at = vmm && live ? vmm_idle_stop_at(vmm, r->last_used_at) : 0;
    if (pause_at)
        add_time(idle, "pause_at", pause_at);
    else
        cJSON_AddNullToObject(idle, "pause_at");
    if (stop_at)
        add_time(idle, "stop_at", stop_at);
    else
        cJSON_AddNullToObject(idle, "stop_at");
    if (r->pid > 0)
        cJSON_AddNumberToObject(o, "pid", r->pid);
    else
        cJSON_AddNullToObject(o, "pid");
    cJSON *m = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(m, "configured_mib", (double)r->memory_mib);
    cJSON_AddNumberToObject(m, "usage_bytes", (double)info->memory_usage_bytes);
    cJSON_AddNumberToObject(m, "balloon_bytes", (double)info->balloon_bytes);
    cJSON_AddNumberToObject(o, "disk_mib", (double)r->disk_mib);
    cJSON_AddNumberToObject(o, "disk_used_bytes", (double)info->disk_used_bytes);
    return o;
}

/* Bytes one input byte costs in a result: once in structuredContent, once more escaped
 * in the text block ('"' becomes \" and then \\\", a control byte \u0001 and then
 * \\u0001). */
static size_t result_cost(unsigned char c)
{
    if (c == '"' || c == '\\')
        return 2 + 4;
    if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f')
        return 2 + 3;
    if (c < 0x20)
        return 6 + 7;
    return 1 + 1;
}

size_t mcp_fit_text(const char *s, size_t n, size_t budget)
{
    size_t cost = 0, i = 0;
    for (; i < n; i++) {
        cost += result_cost((unsigned char)s[i]);
        if (cost > budget)
            break;
    }
    /* Never end inside a multi-byte character: back up to its lead byte. */
    while (i < n && i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

int mcp_arg_sandbox(const cJSON *args, const char **ret, struct wr_error **err)
{
    int r = mcp_arg_string(args, "id", true, 128, ret, err);
    return r < 0 ? r : 0;
}

int mcp_arg_network(const cJSON *args, struct vmm_net_policy *ret, bool *present,
                    struct wr_error **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, "network");
    *ret = (struct vmm_net_policy){0};
    if (present)
        *present = v != NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    return vmm_net_policy_from_json(v, ret, err);
}

void mcp_sandbox_done(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err)
        mcp_call_fail_error(call, err);
    else
        mcp_call_succeed(call, mcp_sandbox_json(mcp_call_vmm(call), info));
}

void mcp_add_file_fields(cJSON *o, uint32_t dt_type, uint64_t size, uint32_t mode, int64_t mtime)
{
    const char *type = dt_type == 8 ? "file" : dt_type == 4 ? "dir" : dt_type == 10 ? "symlink" : "other";
    char octal[16];
    snprintf(octal, sizeof(octal), "%04o", mode & 07777);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "size", (double)size);
    cJSON_AddStringToObject(o, "mode", octal);
    add_time(o, "mtime", mtime);
}

void mcp_fail_path(struct mcp_call *call, struct wr_error *err, const char *what, const char *path)
{
    if (err->status == ENOENT)
        wr_error_wrap(&err, "%s '%s': no such file or directory in the sandbox (relative paths "
                      "start at /workspace)", what, path);
    else
        wr_error_wrap(&err, "%s '%s'", what, path);
    mcp_call_fail_error(call, err);
}

struct mcp_path_call *mcp_path_call_new(struct mcp_call *call, const char *what, const char *path,
                                        const char *to)
{
    struct mcp_path_call *pc = wr_calloc(1, sizeof(*pc));
    pc->call = call;
    pc->what = what;
    pc->path = wr_strdup(path);
    pc->to = to ? wr_strdup(to) : NULL;
    return pc;
}

void mcp_path_call_free(struct mcp_path_call *pc)
{
    free(pc->path);
    free(pc->to);
    free(pc);
}

void mcp_path_call_done(void *data, struct wr_error *err)
{
    struct mcp_path_call *pc = data;
    if (err) {
        mcp_fail_path(pc->call, err, pc->what, pc->path);
    } else {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, pc->to ? "from" : "path", pc->path);
        if (pc->to)
            cJSON_AddStringToObject(r, "to", pc->to);
        mcp_call_succeed(pc->call, r);
    }
    mcp_path_call_free(pc);
}
