/* Unit tests of the MCP session core: JSON-RPC framing rules, lifecycle, tools/list and
 * tools/call dispatch errors, through a sink that captures what the session sends. */
#include <cjson/cJSON.h>

#include "mcp/mcp-internal.h"
#include "mcp/tool.h"
#include "test.h"

struct capture {
    cJSON *msgs[64];
    char *related[64];
    bool final[64];
    int n;
};

static void capture_send(void *data, const char *json, size_t len, const char *related_id,
                         bool final)
{
    struct capture *c = data;
    ASSERT(c->n < 64);
    c->msgs[c->n] = cJSON_ParseWithLength(json, len);
    ASSERT(c->msgs[c->n]);
    c->related[c->n] = related_id ? wr_strdup(related_id) : NULL;
    c->final[c->n] = final;
    c->n++;
}

static void capture_reset(struct capture *c)
{
    for (int i = 0; i < c->n; i++) {
        cJSON_Delete(c->msgs[i]);
        free(c->related[i]);
    }
    c->n = 0;
}

static const struct mcp_sink sink = {.send = capture_send};
static struct mcp_server *server;

/* Feeds text and returns the last message sent (owned by the capture). */
static cJSON *feed(struct mcp_session *s, struct capture *c, const char *text)
{
    cJSON *msg;
    char *error = NULL;
    if (mcp_parse_message(text, strlen(text), &msg, &error) < 0) {
        capture_send(c, error, strlen(error), NULL, true);
        free(error);
    } else {
        mcp_session_handle(s, msg);
    }
    return c->n ? c->msgs[c->n - 1] : NULL;
}

static int error_code(const cJSON *m)
{
    const cJSON *e = cJSON_GetObjectItem(m, "error");
    return e ? cJSON_GetObjectItem(e, "code")->valueint : 0;
}

static struct mcp_session *initialized(struct capture *c, const char *version)
{
    struct mcp_session *s = mcp_session_new(server, &sink, c);
    char buf[512];
    snprintf(
        buf, sizeof(buf),
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
        "\"protocolVersion\":\"%s\",\"capabilities\":{\"elicitation\":{},\"extensions\":{\"x\":1}},"
        "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
        version);
    feed(s, c, buf);
    return s;
}

static void test_initialize_negotiation(void)
{
    struct capture c = {0};
    struct mcp_session *s = initialized(&c, "2025-06-18");
    cJSON *r = cJSON_GetObjectItem(c.msgs[0], "result");
    ASSERT_STREQ(cJSON_GetObjectItem(r, "protocolVersion")->valuestring, "2025-06-18");
    ASSERT(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "capabilities"), "tools"));
    ASSERT_STREQ(c.related[0], "1");
    ASSERT(c.final[0]);
    ASSERT(mcp_session_initialized(s));
    mcp_session_free(s);
    capture_reset(&c);
    s = initialized(&c, "1999-01-01");
    r = cJSON_GetObjectItem(c.msgs[0], "result");
    ASSERT_STREQ(cJSON_GetObjectItem(r, "protocolVersion")->valuestring, MCP_PROTOCOL_LATEST);
    mcp_session_free(s);
    capture_reset(&c);
}

static void test_errors(void)
{
    struct capture c = {0};
    struct mcp_session *s = mcp_session_new(server, &sink, &c);
    ASSERT_EQ(error_code(feed(s, &c, "{not json")), -32700);
    ASSERT_EQ(error_code(feed(s, &c, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]")),
              -32600);
    ASSERT_EQ(error_code(feed(s, &c, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}")),
              -32600);
    ASSERT_EQ(error_code(feed(s, &c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}")),
              -32600);
    cJSON *nul = feed(
        s, &c,
        "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"ping\",\"params\":{\"x\":\"a\\u0000b\"}}");
    ASSERT_EQ(error_code(nul), -32602);
    ASSERT_EQ(cJSON_GetObjectItem(nul, "id")->valueint, 11);
    /* an escaped backslash followed by u0000 is six plain characters, not a NUL */
    nul = feed(
        s, &c,
        "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"ping\",\"params\":{\"x\":\"a\\\\u0000b\"}}");
    ASSERT(cJSON_GetObjectItem(nul, "result"));
    /* ping works before initialize */
    cJSON *m = feed(s, &c, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}");
    ASSERT(cJSON_IsObject(cJSON_GetObjectItem(m, "result")));
    ASSERT_STREQ(cJSON_GetObjectItem(m, "id")->valuestring, "p");
    mcp_session_free(s);
    capture_reset(&c);

    s = initialized(&c, "2025-11-25");
    ASSERT_EQ(error_code(feed(s, &c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nope\"}")),
              -32601);
    ASSERT_EQ(error_code(feed(s, &c,
                              "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/"
                              "call\",\"params\":{\"name\":\"nope\"}}")),
              -32602);
    ASSERT_EQ(error_code(feed(
                  s, &c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{}}")),
              -32602);
    ASSERT_EQ(error_code(feed(s, &c,
                              "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/"
                              "call\",\"params\":{\"name\":\"sandbox_list\",\"arguments\":[1]}}")),
              -32602);
    ASSERT_EQ(error_code(feed(s, &c,
                              "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"logging/"
                              "setLevel\",\"params\":{\"level\":\"loud\"}}")),
              -32602);
    m = feed(s, &c,
             "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"logging/"
             "setLevel\",\"params\":{\"level\":\"debug\"}}");
    ASSERT(cJSON_GetObjectItem(m, "result"));
    ASSERT_EQ(error_code(feed(s, &c,
                              "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/"
                              "list\",\"params\":{\"cursor\":\"garbage\"}}")),
              -32602);
    /* notifications get no answer */
    int before = c.n;
    feed(s, &c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    feed(s, &c,
         "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/"
         "cancelled\",\"params\":{\"requestId\":99}}");
    feed(s, &c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/whatever\"}");
    ASSERT_EQ(c.n, before);
    /* too deep */
    char deep[400];
    int k = 0;
    k += snprintf(deep + k, sizeof(deep) - (size_t)k,
                  "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"ping\",\"params\":{\"a\":");
    for (int i = 0; i < 70; i++)
        deep[k++] = '[';
    for (int i = 0; i < 70; i++)
        deep[k++] = ']';
    k += snprintf(deep + k, sizeof(deep) - (size_t)k, "}}");
    ASSERT_EQ(error_code(feed(s, &c, deep)), -32600);
    mcp_session_free(s);
    capture_reset(&c);
}

static void test_tools_list(void)
{
    struct capture c = {0};
    struct mcp_session *s = initialized(&c, "2025-11-25");
    cJSON *m = feed(s, &c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    cJSON *tools = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "result"), "tools");
    ASSERT(cJSON_GetArraySize(tools) >= 6);
    cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        ASSERT(cJSON_IsString(cJSON_GetObjectItem(t, "name")));
        cJSON *in = cJSON_GetObjectItem(t, "inputSchema");
        ASSERT_STREQ(cJSON_GetObjectItem(in, "type")->valuestring, "object");
        ASSERT(cJSON_IsObject(cJSON_GetObjectItem(t, "outputSchema")));
        cJSON *a = cJSON_GetObjectItem(t, "annotations");
        ASSERT(cJSON_IsBool(cJSON_GetObjectItem(a, "readOnlyHint")));
        ASSERT(cJSON_IsBool(cJSON_GetObjectItem(a, "destructiveHint")));
        ASSERT(cJSON_IsBool(cJSON_GetObjectItem(a, "idempotentHint")));
        ASSERT(cJSON_IsBool(cJSON_GetObjectItem(a, "openWorldHint")));
    }
    /* A tool call without a vmm fails as a tool result, not a protocol error. */
    m = feed(s, &c,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/"
             "call\",\"params\":{\"name\":\"sandbox_list\"}}");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "result"), "isError")));
    mcp_session_free(s);
    capture_reset(&c);
}

static void test_pagination(void)
{
    setenv("WARREN_TOOLS_PAGE_SIZE", "4", 1);
    struct mcp_server *paged;
    struct mcp_server_options o = {.loop = uv_default_loop()};
    ASSERT_EQ(mcp_server_new(&o, &paged, NULL), 0);
    struct capture c = {0};
    struct mcp_session *s = mcp_session_new(paged, &sink, &c);
    feed(s, &c,
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
         "\"2025-11-25\"}}");
    /* Walk every page: 4 tools each until the last, then no nextCursor. */
    size_t total = 0, pages = 0, expected = 0;
    while (mcp_tools[expected])
        expected++;
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    for (;;) {
        cJSON *m = feed(s, &c, buf);
        cJSON *r = cJSON_GetObjectItem(m, "result");
        size_t n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(r, "tools"));
        total += n;
        pages++;
        cJSON *next = cJSON_GetObjectItem(r, "nextCursor");
        if (!next)
            break;
        ASSERT_EQ(n, 4);
        snprintf(buf, sizeof(buf),
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/"
                 "list\",\"params\":{\"cursor\":\"%s\"}}",
                 next->valuestring);
    }
    ASSERT_EQ(total, expected);
    ASSERT_EQ(pages, (expected + 3) / 4);
    mcp_session_free(s);
    capture_reset(&c);
    mcp_server_free(paged);
    unsetenv("WARREN_TOOLS_PAGE_SIZE");
}

static void test_utf8(void)
{
    char *s = wr_utf8_sanitize("ok\xff\xc3\xa9\0x", 7);
    ASSERT_STREQ(s, "ok\xEF\xBF\xBD\xc3\xa9\xEF\xBF\xBDx");
    free(s);
    ASSERT(wr_utf8_valid("h\xc3\xa9", 3));
    ASSERT(!wr_utf8_valid("h\xc3", 2));
    ASSERT(!wr_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    char enc[16], dec[16];
    wr_base64_encode("hello", 5, enc);
    ASSERT_STREQ(enc, "aGVsbG8=");
    ASSERT_EQ(wr_base64_decode(enc, strlen(enc), dec), 5);
    ASSERT(wr_base64_decode("a$==", 4, dec) < 0);
}

/* The fast printer must agree with cJSON byte for byte, escapes included, at every
 * position relative to its 8-byte scanning. */
static void test_json_print(void)
{
    const char *tricky[] = {"plain",
                            "q\"uote",
                            "back\\slash",
                            "ctl\x01\x1f",
                            "nl\n\r\t\b\f",
                            "utf8 \xc3\xa9 \xe2\x82\xac",
                            "",
                            "0123456789abcdef\"0123456789",
                            NULL};
    for (size_t i = 0; tricky[i]; i++) {
        for (size_t pad = 0; pad < 9; pad++) {
            char buf[128];
            snprintf(buf, sizeof(buf), "%.*s%s", (int)pad, "xxxxxxxx", tricky[i]);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, buf, buf);
            cJSON_AddNumberToObject(o, "n", 42);
            cJSON_AddNumberToObject(o, "f", 1.5);
            cJSON_AddNumberToObject(o, "neg", -7);
            cJSON_AddBoolToObject(o, "b", true);
            cJSON_AddNullToObject(o, "z");
            cJSON *a = cJSON_AddArrayToObject(o, "a");
            cJSON_AddItemToArray(a, cJSON_CreateString(buf));
            cJSON_AddItemToArray(a, cJSON_CreateObject());
            char *want = cJSON_PrintUnformatted(o);
            struct wr_buf got;
            wr_buf_init(&got, 1 << 20);
            mcp__json_print(&got, o);
            ASSERT_STREQ(got.data, want);
            char *quoted = cJSON_PrintUnformatted(cJSON_GetArrayItem(a, 0));
            ASSERT_EQ(mcp__json_string_len(buf, strlen(buf)), strlen(quoted));
            free(quoted);
            free(want);
            wr_buf_free(&got);
            cJSON_Delete(o);
        }
    }
}

int main(void)
{
    struct mcp_server_options o = {.loop = uv_default_loop()};
    ASSERT_EQ(mcp_server_new(&o, &server, NULL), 0);
    RUN(test_initialize_negotiation);
    RUN(test_errors);
    RUN(test_tools_list);
    RUN(test_pagination);
    RUN(test_utf8);
    RUN(test_json_print);
    mcp_server_free(server);
    return 0;
}
