/* envd's process.Process requests (mcp/e2b/process-request.c): what the SDK sends becomes
 * what warren runs, and every malformed or oversized field is refused with a reason. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/e2b/e2b-internal.h"
#include "test.h"

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    ASSERT(j);
    return j;
}

static void test_start_sdk_shapes(void)
{
    struct e2b_start_request r;
    const char *why = NULL;
    cJSON *m = json("{\"process\":{\"cmd\":\"/bin/bash\",\"args\":[\"-l\",\"-c\",\"echo hi\"],"
                    "\"envs\":{\"A\":\"1\",\"B\":\"x=y\"},\"cwd\":\"/tmp\"},\"stdin\":false,"
                    "\"tag\":\"t1\"}");
    ASSERT_EQ(e2b_start_request_parse(m, &r, &why), 0);
    ASSERT_EQ(wr_strv_len((const char *const *)r.argv), 4u);
    ASSERT_STREQ(r.argv[0], "/bin/bash");
    ASSERT_STREQ(r.argv[3], "echo hi");
    ASSERT_STREQ(r.env[0], "A=1");
    ASSERT_STREQ(r.env[1], "B=x=y");
    ASSERT_STREQ(r.cwd, "/tmp");
    ASSERT_STREQ(r.tag, "t1");
    ASSERT(!r.stdin_open && !r.pty);
    char *config = cJSON_PrintUnformatted(r.config);
    ASSERT_STREQ(config, "{\"cmd\":\"/bin/bash\",\"args\":[\"-l\",\"-c\",\"echo hi\"],"
                         "\"envs\":{\"A\":\"1\",\"B\":\"x=y\"},\"cwd\":\"/tmp\"}");
    free(config);
    e2b_start_request_clear(&r);
    cJSON_Delete(m);

    /* pty.create: a size; stdin absent means open (envd's default). */
    m = json("{\"process\":{\"cmd\":\"/bin/bash\",\"args\":[\"-i\",\"-l\"]},"
             "\"pty\":{\"size\":{\"cols\":120,\"rows\":40}}}");
    ASSERT_EQ(e2b_start_request_parse(m, &r, &why), 0);
    ASSERT(r.pty && r.stdin_open);
    ASSERT_EQ(r.rows, 40u);
    ASSERT_EQ(r.cols, 120u);
    ASSERT(!r.env && !r.cwd && !r.tag);
    e2b_start_request_clear(&r);
    cJSON_Delete(m);
}

static void refused(const char *text, const char *reason)
{
    struct e2b_start_request r;
    const char *why = NULL;
    cJSON *m = json(text);
    ASSERT(e2b_start_request_parse(m, &r, &why) < 0);
    ASSERT(why && strstr(why, reason));
    ASSERT(!r.argv && !r.config);
    cJSON_Delete(m);
}

static void test_start_refusals(void)
{
    refused("{}", "process");
    refused("{\"process\":{\"args\":[\"x\"]}}", "process.cmd");
    refused("{\"process\":{\"cmd\":\"\"}}", "process.cmd");
    refused("{\"process\":{\"cmd\":\"x\",\"args\":[1]}}", "process.args");
    refused("{\"process\":{\"cmd\":\"x\",\"envs\":{\"A=B\":\"1\"}}}", "no '='");
    refused("{\"process\":{\"cmd\":\"x\",\"envs\":{\"A\":2}}}", "process.envs");
    refused("{\"process\":{\"cmd\":\"x\"},\"pty\":{\"size\":{\"cols\":0,\"rows\":5}}}", "pty.size");
    refused("{\"process\":{\"cmd\":\"x\"},\"pty\":{\"size\":{\"cols\":2.5,\"rows\":5}}}",
            "pty.size");
    refused("{\"process\":{\"cmd\":\"x\"},\"stdin\":\"yes\"}", "stdin");
    /* Caps: arguments, tag length. */
    cJSON *m = json("{\"process\":{\"cmd\":\"x\",\"args\":[]}}");
    cJSON *args = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "process"), "args");
    for (int i = 0; i < E2B_PROCESS_ARGS_MAX + 1; i++)
        cJSON_AddItemToArray(args, cJSON_CreateString("a"));
    char *text = cJSON_PrintUnformatted(m);
    refused(text, "at most 4096");
    free(text);
    cJSON_Delete(m);
    char tag[400];
    memset(tag, 'x', 300);
    tag[300] = 0;
    char *big = wr_asprintf("{\"process\":{\"cmd\":\"x\"},\"tag\":\"%s\"}", tag);
    refused(big, "256 bytes");
    free(big);
}

static void test_selector_signal_input(void)
{
    struct e2b_selector sel;
    const char *why = NULL;
    cJSON *m = json("{\"process\":{\"pid\":42}}");
    ASSERT_EQ(e2b_selector_parse(m, &sel, &why), 0);
    ASSERT_EQ(sel.pid, 42u);
    cJSON_Delete(m);
    m = json("{\"process\":{\"pid\":\"43\"}}"); /* proto3 JSON may quote integers */
    ASSERT_EQ(e2b_selector_parse(m, &sel, &why), 0);
    ASSERT_EQ(sel.pid, 43u);
    cJSON_Delete(m);
    m = json("{\"process\":{\"tag\":\"web\"}}");
    ASSERT_EQ(e2b_selector_parse(m, &sel, &why), 0);
    ASSERT_STREQ(sel.tag, "web");
    cJSON_Delete(m);
    static const char *const bad[] = {"{}",
                                      "{\"process\":{}}",
                                      "{\"process\":{\"pid\":0}}",
                                      "{\"process\":{\"pid\":-3}}",
                                      "{\"process\":{\"pid\":1.5}}",
                                      "{\"process\":{\"pid\":4294967296}}",
                                      "{\"process\":{\"tag\":\"\"}}"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(bad); i++) {
        m = json(bad[i]);
        why = NULL;
        ASSERT(e2b_selector_parse(m, &sel, &why) < 0 && why);
        cJSON_Delete(m);
    }

    int sig = 0;
    m = json("{\"signal\":\"SIGNAL_SIGKILL\"}");
    ASSERT(e2b_signal_parse(m, &sig, &why) == 0 && sig == 9);
    cJSON_Delete(m);
    m = json("{\"signal\":15}");
    ASSERT(e2b_signal_parse(m, &sig, &why) == 0 && sig == 15);
    cJSON_Delete(m);
    m = json("{\"signal\":\"SIGNAL_SIGSTOP\"}");
    ASSERT(e2b_signal_parse(m, &sig, &why) < 0);
    cJSON_Delete(m);

    struct e2b_input in;
    m = json("{\"input\":{\"stdin\":\"aGVsbG8=\"}}");
    ASSERT_EQ(e2b_input_parse(m, &in, &why), 0);
    ASSERT(in.len == 5 && !memcmp(in.data, "hello", 5) && !in.pty);
    free(in.data);
    cJSON_Delete(m);
    m = json("{\"input\":{\"pty\":\"\"}}");
    ASSERT_EQ(e2b_input_parse(m, &in, &why), 0);
    ASSERT(in.len == 0 && in.pty);
    free(in.data);
    cJSON_Delete(m);
    m = json("{\"input\":{\"stdin\":\"***\"}}");
    ASSERT(e2b_input_parse(m, &in, &why) == -EINVAL && !in.data);
    cJSON_Delete(m);
    /* 64 KiB + 3 bytes of input: refused as too large, not truncated. */
    size_t n = E2B_INPUT_MAX + 3;
    char *raw = calloc(1, n), *b64 = malloc(wr_base64_encoded_len(n) + 1);
    wr_base64_encode(raw, n, b64);
    char *text = wr_asprintf("{\"input\":{\"stdin\":\"%s\"}}", b64);
    m = json(text);
    ASSERT(e2b_input_parse(m, &in, &why) == -EMSGSIZE && strstr(why, "64 KiB"));
    cJSON_Delete(m);
    free(text);
    free(raw);
    free(b64);
}

int main(void)
{
    RUN(test_start_sdk_shapes);
    RUN(test_start_refusals);
    RUN(test_selector_signal_input);
    return 0;
}
