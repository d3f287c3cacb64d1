/* libFuzzer target for the E2B control plane's requests (mcp/e2b/request.c): arbitrary
 * bytes as a create, connect/timeout or network-update body, or as the listing's query
 * string. The first byte picks which. What is accepted must respect every cap. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "mcp/e2b/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_create(const char *body, size_t len, enum vmm_net_mode fallback)
{
    struct e2b_create_request r;
    struct wr_error *err = NULL;
    if (e2b_create_request_parse(body, len, fallback, &r, &err) < 0) {
        if (!err || !err->msg || !*err->msg)
            __builtin_trap(); /* a refusal always says why */
        wr_error_free(err);
        return;
    }
    if (r.timeout_s < 1 || r.timeout_s > E2B_TIMEOUT_MAX)
        __builtin_trap();
    if (r.template_id && (!*r.template_id || strlen(r.template_id) > E2B_TEMPLATE_MAX))
        __builtin_trap();
    if (r.metadata) {
        cJSON *m = cJSON_Parse(r.metadata);
        if (!cJSON_IsObject(m) || cJSON_GetArraySize(m) > E2B_METADATA_MAX_KEYS ||
            cJSON_GetArraySize(m) == 0)
            __builtin_trap();
        const cJSON *item;
        cJSON_ArrayForEach(item, m)
            if (!cJSON_IsString(item) || strlen(item->string) > E2B_METADATA_KEY_MAX ||
                strlen(item->valuestring) > E2B_METADATA_VALUE_MAX)
                __builtin_trap();
        cJSON_Delete(m);
    }
    size_t n = 0;
    for (char **e = r.env; e && *e; e++, n++)
        if (!strchr(*e, '=') || *e[0] == '=')
            __builtin_trap();
    if (n > E2B_ENV_MAX_VARS)
        __builtin_trap();
    if (r.network.mode == VMM_NET_ALLOW && !r.network.allow)
        __builtin_trap();
    e2b_create_request_clear(&r);
}

static void check_list(const char *query, size_t len)
{
    char *url = wr_malloc(len + 16);
    memcpy(url, "/v2/sandboxes?", 14);
    memcpy(url + 14, query, len);
    url[14 + len] = 0;
    struct e2b_list_query q;
    struct wr_error *err = NULL;
    if (e2b_list_query_parse(url, &q, &err) == 0) {
        if (q.limit < 1 || q.limit > E2B_LIST_LIMIT_MAX || q.meta_n > E2B_METADATA_MAX_KEYS ||
            (!q.running && !q.paused))
            __builtin_trap();
        for (size_t i = 0; i < q.meta_n; i++)
            if (!q.meta_keys[i] || !q.meta_values[i] ||
                strlen(q.meta_keys[i]) > E2B_METADATA_KEY_MAX ||
                strlen(q.meta_values[i]) > E2B_METADATA_VALUE_MAX)
                __builtin_trap();
        if (q.has_after) {
            char *token = e2b_list_token(q.after_created, q.after_id);
            char *again_url = wr_asprintf("/?nextToken=%s", token);
            struct e2b_list_query again;
            struct wr_error *e2 = NULL;
            if (e2b_list_query_parse(again_url, &again, &e2) != 0 ||
                again.after_created != q.after_created || strcmp(again.after_id, q.after_id))
                __builtin_trap();
            e2b_list_query_clear(&again);
            free(token);
            free(again_url);
        }
        e2b_list_query_clear(&q);
    } else {
        wr_error_free(err);
    }
    bool bad = false;
    char *v = e2b_query_value(url, "metadata", &bad);
    if (v && strlen(v) > E2B_QUERY_VALUE_MAX)
        __builtin_trap();
    free(v);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The rest is copied so that reads past it are caught, and NUL-free for the query. */
    size_t len = size - 1;
    char *body = wr_malloc(len + 1);
    memcpy(body, data + 1, len);
    body[len] = 0;
    switch (data[0] % 5) {
    case 0:
        check_create(body, len, VMM_NET_NAT);
        break;
    case 1:
        check_create(body, len, VMM_NET_NONE);
        break;
    case 2: {
        int64_t t = 0;
        struct wr_error *err = NULL;
        if (e2b_timeout_parse(body, len, data[0] & 8, &t, &err) == 0) {
            if (t < 0 || t > E2B_TIMEOUT_MAX || ((data[0] & 8) && t < 1))
                __builtin_trap();
        }
        wr_error_free(err);
        break;
    }
    case 3: {
        struct vmm_net_policy p;
        struct wr_error *err = NULL;
        if (e2b_network_parse(body, len, &p, &err) == 0)
            vmm_net_policy_clear(&p);
        wr_error_free(err);
        break;
    }
    default:
        check_list(body, strnlen(body, len));
        break;
    }
    free(body);
    return 0;
}
