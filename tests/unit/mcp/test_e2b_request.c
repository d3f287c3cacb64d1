/* Unit tests for mcp/e2b/request.c: the control plane's bodies and query strings. */
#include <errno.h>
#include <string.h>

#include "mcp/e2b/request.h"
#include "test.h"

static int create(const char *body, struct e2b_create_request *r, char **ret_msg)
{
    struct wr_error *err = NULL;
    int rc = e2b_create_request_parse(body, strlen(body), VMM_NET_NAT, r, &err);
    if (ret_msg)
        *ret_msg = err ? wr_strdup(err->msg) : NULL;
    wr_error_free(err);
    return rc;
}

static void refused(const char *body, const char *why)
{
    struct e2b_create_request r;
    _cleanup_free_ char *msg = NULL;
    ASSERT(create(body, &r, &msg) < 0);
    if (!strstr(msg, why)) {
        fprintf(stderr, "%s -> '%s', wanted '%s'\n", body, msg, why);
        ASSERT(0);
    }
}

static void test_create(void)
{
    struct e2b_create_request r;
    ASSERT_EQ(create("", &r, NULL), 0); /* an empty body: every default */
    ASSERT(r.template_id == NULL && r.metadata == NULL && r.env == NULL);
    ASSERT_EQ(r.timeout_s, E2B_TIMEOUT_DEFAULT);
    ASSERT_EQ(r.network.mode, VMM_NET_NAT);
    e2b_create_request_clear(&r);
    ASSERT_EQ(create("{\"templateID\":\"alpine:3.19\",\"timeout\":60,\"metadata\":{\"a\":\"b\"},"
                     "\"envVars\":{\"X_1\":\"y=z\"},\"secure\":true,\"allow_internet_access\":false,"
                     "\"autoPause\":false,\"volumeMounts\":[],\"mcp\":null}",
                     &r, NULL),
              0);
    ASSERT_STREQ(r.template_id, "alpine:3.19");
    ASSERT_EQ(r.timeout_s, 60);
    ASSERT_STREQ(r.metadata, "{\"a\":\"b\"}");
    ASSERT_STREQ(r.env[0], "X_1=y=z");
    ASSERT(r.env[1] == NULL);
    ASSERT_EQ(r.network.mode, VMM_NET_NONE);
    e2b_create_request_clear(&r);
    refused("{", "not valid JSON");
    refused("7", "JSON object");
    refused("{\"timeout\":1e300}", "timeout");
    refused("{\"timeout\":1.5}", "timeout");
    refused("{\"timeout\":0}", "timeout");
    refused("{\"templateID\":\"a b\"}", "templateID");
    refused("{\"templateID\":\"\"}", "templateID");
    refused("{\"metadata\":{\"a\":1}}", "must be a string");
    refused("{\"metadata\":{\"a\":\"1\",\"a\":\"2\"}}", "twice");
    refused("{\"envVars\":{\"A-B\":\"x\"}}", "not a variable name");
    refused("{\"envVars\":[]}", "envVars must be an object");
    refused("{\"autoPause\":true}", "autoPause");
    refused("{\"autoResume\":{\"enabled\":true}}", "autoResume");
    refused("{\"volumeMounts\":[{\"name\":\"v\",\"path\":\"/v\"}]}", "volumes");
    refused("{\"iam\":{}}", "iam");
    refused("{\"what\":1}", "unknown field 'what'");
    refused("{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "nests deeper");
}

static void test_network(void)
{
    struct e2b_create_request r;
    ASSERT_EQ(create("{\"network\":{\"denyOut\":[\"0.0.0.0/0\"],\"allowOut\":[\"Deb.Debian.org\"]}}",
                     &r, NULL),
              0);
    ASSERT_EQ(r.network.mode, VMM_NET_ALLOW);
    ASSERT_STREQ(r.network.allow[0], "deb.debian.org");
    ASSERT(r.network.deny[0] == NULL);
    e2b_create_request_clear(&r);
    ASSERT_EQ(create("{\"network\":{\"denyOut\":[\"0.0.0.0/0\"]}}", &r, NULL), 0);
    ASSERT_EQ(r.network.mode, VMM_NET_NONE);
    e2b_create_request_clear(&r);
    /* Internet but for some hosts; allowOut wins over denyOut. */
    ASSERT_EQ(create("{\"network\":{\"denyOut\":[\"a.example\",\"b.example\"],\"allowOut\":[\"b.example\"]}}",
                     &r, NULL),
              0);
    ASSERT_EQ(r.network.mode, VMM_NET_ALLOW);
    ASSERT_STREQ(r.network.allow[0], "*");
    ASSERT_STREQ(r.network.deny[0], "a.example");
    ASSERT(r.network.deny[1] == NULL);
    e2b_create_request_clear(&r);
    /* allowOut alone with internet: everything is allowed anyway. */
    ASSERT_EQ(create("{\"network\":{\"allowOut\":[\"a.example\"]}}", &r, NULL), 0);
    ASSERT_EQ(r.network.mode, VMM_NET_NAT);
    e2b_create_request_clear(&r);
    refused("{\"network\":{\"allowOut\":[\"10.0.0.0/8\"]}}", "address or range");
    refused("{\"network\":{\"denyOut\":[\"1.2.3.4\"]}}", "address or range");
    refused("{\"network\":{\"rules\":{}}}", "rules");
    refused("{\"network\":{\"allowPublicTraffic\":true}}", "allowPublicTraffic");
    refused("{\"network\":{\"other\":1}}", "unknown field 'other'");
    refused("{\"allow_internet_access\":\"yes\"}", "boolean");
    struct vmm_net_policy p;
    const char *update = "{\"allow_internet_access\":false,\"allowOut\":[\"x.org\"]}";
    ASSERT_EQ(e2b_network_parse(update, strlen(update), &p, NULL), 0);
    ASSERT_EQ(p.mode, VMM_NET_ALLOW);
    ASSERT_STREQ(p.allow[0], "x.org");
    vmm_net_policy_clear(&p);
}

static void test_timeout(void)
{
    int64_t t = -1;
    ASSERT_EQ(e2b_timeout_parse("{\"timeout\":30}", 14, true, &t, NULL), 0);
    ASSERT_EQ(t, 30);
    ASSERT_EQ(e2b_timeout_parse("{}", 2, false, &t, NULL), 0);
    ASSERT_EQ(t, 0);
    struct wr_error *err = NULL;
    ASSERT(e2b_timeout_parse("{}", 2, true, &t, &err) < 0);
    ASSERT(strstr(err->msg, "required"));
    wr_error_free(err);
}

static void test_list_query(void)
{
    struct e2b_list_query q;
    ASSERT_EQ(e2b_list_query_parse("/v2/sandboxes", &q, NULL), 0);
    ASSERT(q.running && q.paused && q.meta_n == 0 && !q.has_after);
    ASSERT_EQ(q.limit, E2B_LIST_LIMIT_DEFAULT);
    e2b_list_query_clear(&q);
    /* What the SDK sends for {metadata: {"with space": "a=b&c", k: "v"}, state: ["paused"]}. */
    ASSERT_EQ(e2b_list_query_parse("/v2/sandboxes?metadata=with%252520space%3Da%25253Db%252526c%26k%3Dv"
                                   "&state=paused&limit=2&nextToken=1700000000.0123456789abcdef",
                                   &q, NULL),
              0);
    ASSERT(!q.running && q.paused);
    ASSERT_EQ(q.meta_n, 2);
    ASSERT_STREQ(q.meta_keys[0], "with space");
    ASSERT_STREQ(q.meta_values[0], "a=b&c");
    ASSERT_STREQ(q.meta_keys[1], "k");
    ASSERT_STREQ(q.meta_values[1], "v");
    ASSERT_EQ(q.limit, 2);
    ASSERT(q.has_after && q.after_created == 1700000000);
    ASSERT_STREQ(q.after_id, "0123456789abcdef");
    e2b_list_query_clear(&q);
    const char *bad[] = {"/?limit=0", "/?limit=1001", "/?limit=-1", "/?state=asleep",
                         "/?nextToken=x", "/?nextToken=1.zz", "/?metadata=%zz", "/?metadata=%3Dv",
                         "/?template=a%20b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wr_error *err = NULL;
        if (e2b_list_query_parse(bad[i], &q, &err) == 0) {
            fprintf(stderr, "accepted %s\n", bad[i]);
            ASSERT(0);
        }
        ASSERT_EQ(err->status, EINVAL);
        wr_error_free(err);
    }
    bool b = false;
    _cleanup_free_ char *v = e2b_query_value("/p?a=1&b=x+y%21&c", "b", &b);
    ASSERT_STREQ(v, "x y!");
    _cleanup_free_ char *c = e2b_query_value("/p?a=1&b=x+y%21&c", "c", &b);
    ASSERT_STREQ(c, "");
    ASSERT(e2b_query_value("/p?a=1", "b", &b) == NULL && !b);
    ASSERT(e2b_query_value("/p?a=%00", "a", &b) == NULL && b);
}

int main(void)
{
    RUN(test_create);
    RUN(test_network);
    RUN(test_timeout);
    RUN(test_list_query);
    return 0;
}
