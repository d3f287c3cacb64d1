/* Pieces the tool files share: the sandbox object's JSON and schema. */
#pragma once

#include <cjson/cJSON.h>

#include "mcp/tool.h"
#include "vmm/vmm.h"

/* base64 of the largest file a call may carry (VMM_MAX_FILE_BYTES), with room. */
#define MCP_MAX_FILE_ARG (45u * 1024u * 1024u)

/* Results stay under this many bytes of JSON unless the call asks for more (length,
 * max_output_bytes): the official SDK's stdio client drops a server that sends a message
 * over 10 MiB, and a result carries its JSON twice (structuredContent and text). */
#define MCP_RESULT_BUDGET (8u << 20)

/* The longest prefix of s (n bytes of UTF-8, cut at a character boundary) whose cost in a
 * result (the JSON string in structuredContent plus its escaped copy in the text block)
 * fits in budget bytes. */
size_t mcp_fit_text(const char *s, size_t n, size_t budget);

/* vmm gives the idle policy's times. */
cJSON *mcp_sandbox_json(const struct vmm *vmm, const struct vmm_sandbox_info *info);
/* A vmm_sandbox_cb (data: the mcp_call) that answers the call with the sandbox's JSON, or
 * fails it with err. */
void mcp_sandbox_done(void *data, const struct vmm_sandbox_info *info, struct wr_error *err);
/* Reads the required "id" argument (a sandbox id or name). */
int mcp_arg_sandbox(const cJSON *args, const char **ret, struct wr_error **err);
/* Reads the optional "network" argument (false, true or an allow-list; absent: none).
 * *present tells whether it was given (may be NULL). */
int mcp_arg_network(const cJSON *args, struct vmm_net_policy *ret, bool *present,
                    struct wr_error **err);

/* The fields a file listing and a stat share: type ("file", "dir", "symlink", "other"
 * from the DT_* value), size, mode (permission bits as an octal string, "0644") and mtime
 * (ISO 8601). */
void mcp_add_file_fields(cJSON *o, uint32_t dt_type, uint64_t size, uint32_t mode, int64_t mtime);
/* "no such file or directory '<path>' in the sandbox ..." for ENOENT, else "<what> '<path>'",
 * wrapped around err; then the call fails with it. */
void mcp_fail_path(struct mcp_call *call, struct wr_error *err, const char *what, const char *path);

/* A call on one or two paths whose answer is the paths themselves: sandbox_make_dir and
 * sandbox_remove ({path}), sandbox_move ({from, to}). */
struct mcp_path_call {
    struct mcp_call *call;
    const char *what; /* "creating directory", "removing", "moving": for messages */
    char *path, *to;  /* to: NULL unless a move */
};
struct mcp_path_call *mcp_path_call_new(struct mcp_call *call, const char *what, const char *path,
                                        const char *to);
void mcp_path_call_free(struct mcp_path_call *pc);
/* An agent_simple_cb (data: the mcp_path_call, freed): answers and ends the call. */
void mcp_path_call_done(void *data, struct wr_error *err);
