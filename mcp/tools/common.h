/* Pieces the tool files share: the sandbox object's JSON and schema. */
#pragma once

#include <cjson/cJSON.h>

#include "../../vmm/vmm.h"
#include "../tool.h"

/* base64 of the largest file a call may carry (VMM_MAX_FILE_BYTES), with room. */
#define MCP_MAX_FILE_ARG (45u * 1024u * 1024u)

/* The JSON Schema of one sandbox object (sandbox_create's result, sandbox_list's items). */
#define MCP_SANDBOX_SCHEMA                                                                     \
    "{\"type\":\"object\",\"required\":[\"id\",\"name\",\"backend\",\"state\",\"image\","      \
    "\"workspace\",\"created_at\",\"last_used_at\",\"memory\"],\"properties\":{"                \
    "\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"                              \
    "\"backend\":{\"type\":\"string\"},"                                                        \
    "\"state\":{\"type\":\"string\",\"enum\":[\"creating\",\"running\",\"stopped\",\"failed\"]}," \
    "\"image\":{\"type\":\"string\"},\"workspace\":{\"type\":\"string\"},"                      \
    "\"repo\":{\"type\":[\"string\",\"null\"]},\"ref\":{\"type\":[\"string\",\"null\"]},"       \
    "\"commit\":{\"type\":[\"string\",\"null\"]},"                                              \
    "\"cpus\":{\"type\":\"integer\"},\"network\":{\"type\":\"boolean\"},"                       \
    "\"ttl_seconds\":{\"type\":\"integer\"},"                                                   \
    "\"expires_at\":{\"type\":[\"string\",\"null\"]},"                                          \
    "\"created_at\":{\"type\":\"string\"},\"last_used_at\":{\"type\":\"string\"},"              \
    "\"error\":{\"type\":[\"string\",\"null\"]},"                                               \
    "\"pid\":{\"type\":[\"integer\",\"null\"],\"description\":\"host pid of the sandbox's top process\"},"                                               \
    "\"memory\":{\"type\":\"object\",\"required\":[\"configured_mib\",\"usage_bytes\"],"        \
    "\"properties\":{\"configured_mib\":{\"type\":\"integer\"},"                                \
    "\"usage_bytes\":{\"type\":\"integer\"}}}}}"

cJSON *mcp_sandbox_json(const struct vmm_sandbox_info *info);
/* Reads the required "id" argument (a sandbox id or name). */
int mcp_arg_sandbox(const cJSON *args, const char **ret, struct wr_error **err);
