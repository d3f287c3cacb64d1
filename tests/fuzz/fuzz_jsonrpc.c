/* libFuzzer target: arbitrary bytes as one JSON-RPC message into an MCP session (no vmm:
 * tool calls end as tool errors). Every message must be answered or ignored without a
 * crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mcp/mcp.h"

static void discard(void *data, const char *json, size_t len, const char *related_id, bool final)
{
    (void)data, (void)json, (void)len, (void)related_id, (void) final;
}

static const struct mcp_sink sink = {.send = discard};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mcp_server *server;
    if (!server) {
        struct mcp_server_options o = {.loop = uv_default_loop()};
        mcp_server_new(&o, &server, NULL);
    }
    struct mcp_session *s = mcp_session_new(server, &sink, NULL);
    static const char init[] = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\","
                               "\"params\":{\"protocolVersion\":\"2025-11-25\"}}";
    cJSON *msg;
    char *error = NULL;
    if (mcp_parse_message(init, sizeof(init) - 1, &msg, &error) == 0)
        mcp_session_handle(s, msg);
    if (mcp_parse_message((const char *)data, size, &msg, &error) == 0)
        mcp_session_handle(s, msg);
    free(error);
    mcp_session_free(s);
    return 0;
}
