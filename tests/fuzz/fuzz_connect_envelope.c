/* libFuzzer target for envd's Connect framing and process requests (mcp/e2b/connect.c,
 * mcp/e2b/process-request.c): arbitrary bytes from a client. The first byte picks the
 * request's Content-Type (a server stream's envelope or a unary JSON body); the rest is the
 * body. connect_envelope_parse is also run over the bytes as a stream of envelopes. A
 * message that parses goes through every process.Process request parser. Invariants: an
 * envelope lies within its input and under the cap; a message is a JSON object exactly
 * when no reason is given; the parsed StartRequest respects every cap (arguments, names,
 * sizes); a selector's pid is 1..UINT32_MAX; input is at most E2B_INPUT_MAX bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/e2b/e2b-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_envelopes(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        struct connect_envelope env;
        size_t used = 0;
        const char *why = NULL;
        int r = connect_envelope_parse(data + off, size - off, 4096, &env, &used, &why);
        if (r < 0 && !why)
            __builtin_trap();
        if (r <= 0)
            return;
        if (used != 5 + env.len || env.len > 4096 || used > size - off ||
            env.data != (const char *)data + off + 5 || (env.flags & ~CONNECT_FLAG_END_STREAM))
            __builtin_trap();
        off += used;
    }
}

static void check_start(const cJSON *msg)
{
    struct e2b_start_request r;
    const char *why = NULL;
    if (e2b_start_request_parse(msg, &r, &why) < 0) {
        if (!why || r.argv || r.config)
            __builtin_trap();
        return;
    }
    size_t n = wr_strv_len((const char *const *)r.argv);
    if (n < 1 || n > E2B_PROCESS_ARGS_MAX + 1 || !*r.argv[0] || strlen(r.argv[0]) > 4096)
        __builtin_trap();
    if (wr_strv_len((const char *const *)r.env) > E2B_PROCESS_ARGS_MAX)
        __builtin_trap();
    for (char **e = r.env; e && *e; e++)
        if (**e == '=' || !strchr(*e, '='))
            __builtin_trap();
    if ((r.cwd && strlen(r.cwd) > 4096) || (r.tag && strlen(r.tag) > E2B_PROCESS_TAG_MAX))
        __builtin_trap();
    if (r.pty && (r.rows < 1 || r.rows > E2B_PTY_DIM_MAX || r.cols < 1 || r.cols > E2B_PTY_DIM_MAX))
        __builtin_trap();
    if (!cJSON_IsObject(r.config))
        __builtin_trap();
    e2b_start_request_clear(&r);
}

static void check_others(const cJSON *msg)
{
    struct e2b_selector sel;
    const char *why = NULL;
    if (e2b_selector_parse(msg, &sel, &why) == 0) {
        if (!sel.pid && (!sel.tag || !*sel.tag || strlen(sel.tag) > E2B_PROCESS_TAG_MAX))
            __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    int sig = 0;
    if (e2b_signal_parse(msg, &sig, &why) == 0 && sig != 9 && sig != 15)
        __builtin_trap();
    struct e2b_input in;
    if (e2b_input_parse(msg, &in, &why) == 0) {
        if (in.len > E2B_INPUT_MAX || !in.data)
            __builtin_trap();
        free(in.data);
    }
    unsigned rows, cols;
    const cJSON *pty = cJSON_GetObjectItemCaseSensitive(msg, "pty");
    if (pty && e2b_pty_size_parse(pty, &rows, &cols, &why) == 0 &&
        (rows > E2B_PTY_DIM_MAX || cols > E2B_PTY_DIM_MAX))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    check_envelopes(data + 1, size - 1);
    static char name[] = "content-type", stream[] = "application/connect+json",
                unary[] = "application/json; charset=utf-8";
    struct http_request req = {.method = HTTP_POST, .header_count = 1};
    req.headers[0].name = name;
    req.headers[0].value = data[0] & 1 ? stream : unary;
    wr_buf_init(&req.body, SIZE_MAX);
    wr_buf_append(&req.body, data + 1, size - 1);
    bool is_stream = false;
    const char *why = NULL;
    cJSON *msg = connect_request_message(&req, &is_stream, &why);
    if (is_stream != (data[0] & 1) || (!msg && !why) || (msg && !cJSON_IsObject(msg)))
        __builtin_trap();
    if (msg) {
        check_start(msg);
        check_others(msg);
    }
    cJSON_Delete(msg);
    wr_buf_free(&req.body);
    return 0;
}
