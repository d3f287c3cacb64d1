/* The interface between the MCP core and the tools (one small file per tool under
 * mcp/tools/). A tool gets its arguments and a call handle, does its work (usually
 * asynchronously through the vmm), and ends the call exactly once with
 * mcp_call_succeed or mcp_call_fail*, even after the call was cancelled. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"

struct mcp_call;
struct vmm;

/* A tool is its call function here and its definition in mcp/tools/<name>.json: the
 * tools/list entry as clients see it (title, description, annotations, inputSchema,
 * outputSchema), plus "examples" of calls (arguments and results) that the test suite
 * validates against the schemas and the server leaves out of tools/list. A schema may
 * name a shared one ({"$ref": "sandbox.schema.json"}): it is put in its place. */
struct mcp_tool {
    const char *name;
    /* Starts the call. args is always an object (empty when the client sent none) and
     * stays valid until the call ends. */
    void (*call)(struct mcp_call *call, const cJSON *args);
};

/* The registry (mcp/tools/registry.c), in the order tools/list shows them;
 * NULL-terminated. */
extern const struct mcp_tool *const mcp_tools[];
/* The tools/list entries of tools (NULL-terminated), built from the definitions compiled
 * into the binary. Fails, naming the file, when a tool has no definition or a malformed
 * one. The caller owns the array. */
int mcp_tool_definitions_load(const struct mcp_tool *const *tools, cJSON **ret,
                              struct wr_error **err);

struct vmm *mcp_call_vmm(struct mcp_call *call);
uv_loop_t *mcp_call_loop(struct mcp_call *call);
bool mcp_call_cancelled(const struct mcp_call *call);
/* cb runs once if the client cancels (notifications/cancelled) or its session ends
 * while the call runs. The tool must still end the call. */
void mcp_call_on_cancel(struct mcp_call *call, void (*cb)(void *data), void *data);
/* True when the client asked for progress (sent _meta.progressToken). */
bool mcp_call_wants_progress(const struct mcp_call *call);
/* Sends notifications/progress with a strictly increasing progress value. No-op without
 * a progress token or after the call ended. */
void mcp_call_progress(struct mcp_call *call, const char *message);

/* Sends notifications/message to the calling session when level (a syslog level name)
 * passes the session's logging/setLevel threshold. */
void mcp_call_log(struct mcp_call *call, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the call with structuredContent = result (ownership taken). */
void mcp_call_succeed(struct mcp_call *call, cJSON *result);
/* Ends the call with an isError result whose text is the message. */
void mcp_call_fail(struct mcp_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, from an error (ownership taken). */
void mcp_call_fail_error(struct mcp_call *call, struct wr_error *err);

/* Argument helpers: each returns 0 when the key is absent and not required (leaving *ret
 * untouched), 1 when a valid value was read, or a negative value with err set to a
 * message naming the argument and what is expected. */
int mcp_arg_string(const cJSON *args, const char *key, bool required, size_t max_len,
                   const char **ret, struct wr_error **err);
int mcp_arg_int(const cJSON *args, const char *key, bool required, int64_t min, int64_t max,
                int64_t *ret, struct wr_error **err);
int mcp_arg_bool(const cJSON *args, const char *key, bool *ret, struct wr_error **err);
/* An array of strings; *ret is a NULL-terminated vector the caller frees (wr_strv_free). */
int mcp_arg_string_array(const cJSON *args, const char *key, bool required, size_t max_items,
                         size_t max_len, char ***ret, struct wr_error **err);
/* An object of string values turned into "K=V" entries (keys validated as env names). */
int mcp_arg_env(const cJSON *args, const char *key, char ***ret, struct wr_error **err);
/* Fails when args holds a key not in the NULL-terminated allowed list. */
int mcp_args_check_known(const cJSON *args, const char *const *allowed, struct wr_error **err);
