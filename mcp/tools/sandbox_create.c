/* sandbox_create: a new sandbox, optionally with a copy-on-write view of a repository. */
#include "common.h"

static const char *const known[] = {"name", "repo",        "ref",      "image",
                                    "cpus", "memory_mib",  "disk_mib", "network",
                                    "env",  "ttl_seconds", NULL};

static void created(void *data, const struct vmm_sandbox_info *info, struct wr_error *err)
{
    struct mcp_call *call = data;
    if (err)
        mcp_call_fail_error(call, err);
    else {
        mcp_call_log(call, "info", "sandbox '%s' (%s) created on the %s backend", info->row.name,
                     info->row.id, info->row.backend);
        mcp_call_succeed(call, mcp_sandbox_json(mcp_call_vmm(call), info));
    }
}

static void call(struct mcp_call *call, const cJSON *args)
{
    struct vmm_create_request req = {0};
    int64_t cpus = 1, memory = 512, disk = 0, ttl = 0;
    _cleanup_strv_ char **env = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "name", false, 63, &req.name, &err) < 0 ||
        mcp_arg_string(args, "repo", false, 4096, &req.repo, &err) < 0 ||
        mcp_arg_string(args, "ref", false, 256, &req.ref, &err) < 0 ||
        mcp_arg_string(args, "image", false, 64, &req.image, &err) < 0 ||
        mcp_arg_int(args, "cpus", false, 1, 64, &cpus, &err) < 0 ||
        mcp_arg_int(args, "memory_mib", false, 64, 262144, &memory, &err) < 0 ||
        mcp_arg_int(args, "disk_mib", false, VMM_DISK_MIB_MIN, 1 << 24, &disk, &err) < 0 ||
        mcp_arg_network(args, &req.network, NULL, &err) < 0 ||
        mcp_arg_env(args, "env", &env, &err) < 0 ||
        mcp_arg_int(args, "ttl_seconds", false, 0, 90 * 86400, &ttl, &err) < 0) {
        mcp_call_fail_error(call, err);
        vmm_net_policy_clear(&req.network);
        return;
    }
    if (req.ref && !req.repo) {
        mcp_call_fail(call, "ref needs repo: pass the repository path as well");
        vmm_net_policy_clear(&req.network);
        return;
    }
    req.cpus = (unsigned)cpus;
    req.memory_mib = (uint64_t)memory;
    req.disk_mib = (uint64_t)disk; /* the server's bounds are checked by the vmm */
    req.ttl_seconds = ttl;
    req.env = (const char *const *)env;
    if (vmm_sandbox_create(mcp_call_vmm(call), &req, created, call, &err) < 0)
        mcp_call_fail_error(call, err);
    vmm_net_policy_clear(&req.network);
}

const struct mcp_tool mcp_tool_sandbox_create = {
    .name = "sandbox_create",
    .call = call,
};
