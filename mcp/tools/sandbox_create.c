/* sandbox_create: a new sandbox, optionally with a copy-on-write view of a repository. */
#include "common.h"

static const char *const known[] = {"name",       "repo",    "ref", "image",       "cpus",
                                    "memory_mib", "network", "env", "ttl_seconds", NULL};

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
    int64_t cpus = 1, memory = 512, ttl = 0;
    _cleanup_strv_ char **env = NULL;
    struct wr_error *err = NULL;
    if (mcp_args_check_known(args, known, &err) < 0 ||
        mcp_arg_string(args, "name", false, 63, &req.name, &err) < 0 ||
        mcp_arg_string(args, "repo", false, 4096, &req.repo, &err) < 0 ||
        mcp_arg_string(args, "ref", false, 256, &req.ref, &err) < 0 ||
        mcp_arg_string(args, "image", false, 64, &req.image, &err) < 0 ||
        mcp_arg_int(args, "cpus", false, 1, 64, &cpus, &err) < 0 ||
        mcp_arg_int(args, "memory_mib", false, 64, 262144, &memory, &err) < 0 ||
        mcp_arg_bool(args, "network", &req.network, &err) < 0 ||
        mcp_arg_env(args, "env", &env, &err) < 0 ||
        mcp_arg_int(args, "ttl_seconds", false, 0, 90 * 86400, &ttl, &err) < 0) {
        mcp_call_fail_error(call, err);
        return;
    }
    if (req.ref && !req.repo) {
        mcp_call_fail(call, "ref needs repo: pass the repository path as well");
        return;
    }
    req.cpus = (unsigned)cpus;
    req.memory_mib = (uint64_t)memory;
    req.ttl_seconds = ttl;
    req.env = (const char *const *)env;
    if (vmm_sandbox_create(mcp_call_vmm(call), &req, created, call, &err) < 0)
        mcp_call_fail_error(call, err);
}

const struct mcp_tool mcp_tool_sandbox_create = {
    .name = "sandbox_create",
    .title = "Create sandbox",
    .description =
        "Create an isolated Linux sandbox. With repo (an absolute host path of a git "
        "repository or a directory), /workspace is a copy-on-write view of it at ref (default "
        "HEAD): the sandbox can change anything there and the user's working tree is never "
        "written. Returns the sandbox id; pass it (or the name) to the other tools.",
    .input_schema =
        "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
        "\"name\":{\"type\":\"string\",\"description\":\"Unique name, 1-63 of [A-Za-z0-9_.-]\","
        "\"pattern\":\"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$\"},"
        "\"repo\":{\"type\":\"string\",\"description\":\"Absolute host path of a git repository or "
        "directory shared at /workspace\"},"
        "\"ref\":{\"type\":\"string\",\"description\":\"Branch, tag or commit of repo (default "
        "HEAD)\"},"
        "\"image\":{\"type\":\"string\",\"enum\":[\"host\"],\"default\":\"host\",\"description\":"
        "\"Root filesystem: host = read-only view of the host's /usr and /etc\"},"
        "\"cpus\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":64,\"default\":1},"
        "\"memory_mib\":{\"type\":\"integer\",\"minimum\":64,\"maximum\":262144,\"default\":512},"
        "\"network\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Network "
        "access (default: none): the jail shares the host's network, a qemu VM gets NAT "
        "through QEMU\"},"
        "\"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"
        "\"description\":\"Environment for every command\"},"
        "\"ttl_seconds\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":7776000,\"description\":"
        "\"Destroy the sandbox this long after creation (0: never)\"}}}",
    .output_schema = MCP_SANDBOX_SCHEMA,
    .read_only = false,
    .destructive = false,
    .idempotent = false,
    .open_world = false,
    .call = call,
};
