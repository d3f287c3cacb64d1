/* The control plane's request bodies and query strings (see request.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static void json_deletep(cJSON **p)
{
    cJSON_Delete(*p);
}
#define _cleanup_json_ _cleanup_(json_deletep)

/* cJSON nests without limit by itself; a control-plane body is flat. */
#define NESTING_MAX 8

static bool nesting_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > NESTING_MAX)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* The body as a JSON object; an empty body is an empty object. */
static int parse_object(const char *body, size_t len, cJSON **ret, struct wr_error **err)
{
    if (len == 0) {
        *ret = cJSON_CreateObject();
        return 0;
    }
    if (!nesting_ok(body, len))
        return wr_error_set(err, EINVAL, "request body nests deeper than %d levels", NESTING_MAX);
    if (!wr_utf8_valid(body, len))
        return wr_error_set(err, EINVAL, "request body is not UTF-8");
    cJSON *v = cJSON_ParseWithLength(body, len);
    if (!v)
        return wr_error_set(err, EINVAL, "request body is not valid JSON");
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return wr_error_set(err, EINVAL, "request body must be a JSON object");
    }
    *ret = v;
    return 0;
}

/* A whole number of seconds in [min, max] (JSON numbers are doubles). */
static int seconds_from(const cJSON *v, const char *field, int64_t min, int64_t max,
                        int64_t *ret, struct wr_error **err)
{
    /* The range first: converting a double out of int64_t's range is undefined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)min && v->valuedouble <= (double)max) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return wr_error_set(err, EINVAL, "%s must be a whole number of seconds from %" PRId64
                            " to %" PRId64, field, min, max);
    *ret = (int64_t)v->valuedouble;
    return 0;
}

static bool is_null_or_absent(const cJSON *v)
{
    return !v || cJSON_IsNull(v);
}

/* ---- metadata and envVars --------------------------------------------------------------- */

static int metadata_from(const cJSON *v, char **ret, struct wr_error **err)
{
    *ret = NULL;
    if (is_null_or_absent(v))
        return 0;
    if (!cJSON_IsObject(v))
        return wr_error_set(err, EINVAL, "metadata must be an object of strings");
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        if (++n > E2B_METADATA_MAX_KEYS)
            return wr_error_set(err, EINVAL, "metadata holds at most %d keys",
                                E2B_METADATA_MAX_KEYS);
        size_t key_len = strlen(item->string);
        if (key_len == 0 || key_len > E2B_METADATA_KEY_MAX)
            return wr_error_set(err, EINVAL, "metadata keys are 1 to %d bytes long",
                                E2B_METADATA_KEY_MAX);
        if (!cJSON_IsString(item))
            return wr_error_set(err, EINVAL, "metadata '%.64s' must be a string", item->string);
        if (strlen(item->valuestring) > E2B_METADATA_VALUE_MAX)
            return wr_error_set(err, EINVAL, "metadata '%.64s' is longer than %d bytes",
                                item->string, E2B_METADATA_VALUE_MAX);
        for (const cJSON *other = v->child; other != item; other = other->next)
            if (!strcmp(other->string, item->string))
                return wr_error_set(err, EINVAL, "metadata key '%.64s' appears twice",
                                    item->string);
    }
    if (n > 0)
        *ret = cJSON_PrintUnformatted(v);
    return 0;
}

static bool env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
           strlen(s);
}

static int env_from(const cJSON *v, char ***ret, struct wr_error **err)
{
    *ret = NULL;
    if (is_null_or_absent(v))
        return 0;
    if (!cJSON_IsObject(v))
        return wr_error_set(err, EINVAL, "envVars must be an object of strings");
    _cleanup_strv_ char **env = wr_calloc(1, sizeof(char *));
    size_t n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        if (n == E2B_ENV_MAX_VARS)
            return wr_error_set(err, EINVAL, "envVars holds at most %d variables",
                                E2B_ENV_MAX_VARS);
        if (strlen(item->string) > E2B_ENV_NAME_MAX || !env_name_ok(item->string))
            return wr_error_set(err, EINVAL,
                                "envVars: '%.64s' is not a variable name (letters, digits and "
                                "'_', not starting with a digit, at most %d bytes)",
                                item->string, E2B_ENV_NAME_MAX);
        if (!cJSON_IsString(item))
            return wr_error_set(err, EINVAL, "envVars '%.64s' must be a string", item->string);
        if (strlen(item->valuestring) > E2B_ENV_VALUE_MAX)
            return wr_error_set(err, EINVAL, "envVars '%.64s' is longer than %u bytes",
                                item->string, E2B_ENV_VALUE_MAX);
        wr_strv_push(&env, &n, wr_asprintf("%s=%s", item->string, item->valuestring));
    }
    if (n > 0)
        *ret = TAKE_PTR(env);
    return 0;
}

/* ---- network ---------------------------------------------------------------------------- */

#define ALL_TRAFFIC "0.0.0.0/0"

/* Whether s is an address or a range (E2B takes CIDRs; warren's allow-list names hosts).
 * Other malformed names are left to vmm_net_policy_from_json, which names them. */
static bool is_address(const char *s)
{
    return strchr(s, '/') || strchr(s, ':') || strspn(s, "0123456789.") == strlen(s);
}

/* The entries of allowOut / denyOut as a JSON array of host names for vmm_net_policy;
 * *ret_all says whether denyOut held E2B's "all traffic" range. */
static int selectors_from(const cJSON *v, const char *field, cJSON **ret, bool *ret_all,
                          struct wr_error **err)
{
    *ret = cJSON_CreateArray();
    if (ret_all)
        *ret_all = false;
    if (is_null_or_absent(v))
        return 0;
    if (!cJSON_IsArray(v))
        return wr_error_set(err, EINVAL, "network.%s must be an array of host names", field);
    if (cJSON_GetArraySize(v) > VMM_NET_MAX_NAMES)
        return wr_error_set(err, EINVAL, "network.%s holds at most %d entries", field,
                            VMM_NET_MAX_NAMES);
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        if (!cJSON_IsString(item) || strlen(item->valuestring) > VMM_NET_MAX_HOST + 2)
            return wr_error_set(err, EINVAL, "network.%s must be an array of host names", field);
        const char *s = item->valuestring;
        if (ret_all && !strcmp(s, ALL_TRAFFIC)) {
            *ret_all = true;
            continue;
        }
        if (is_address(s))
            return wr_error_set(err, EINVAL,
                                "network.%s: '%.64s' is an address or range: warren filters "
                                "outbound traffic by host name only (HTTP and HTTPS through "
                                "its egress proxy); use host names, \"" ALL_TRAFFIC
                                "\" in denyOut, or allow_internet_access",
                                field, s);
        cJSON_AddItemToArray(*ret, cJSON_CreateString(s));
    }
    return 0;
}

static bool array_has(const cJSON *arr, const char *s)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
        if (!strcmp(item->valuestring, s))
            return true;
    return false;
}

/* The keys of E2B's network object warren cannot honour, and why. */
static int network_refused(const cJSON *net, struct wr_error **err)
{
    static const struct {
        const char *key, *why;
    } refused[] = {
        {"rules", "per-host request rules are not supported"},
        {"egressProxy", "a sandbox's traffic cannot be sent through another proxy"},
        {"maskRequestHost", "sandbox ports are not served on per-sandbox host names"},
        {"httpsPorts", "sandbox ports are not served on per-sandbox host names"},
    };
    const cJSON *item;
    cJSON_ArrayForEach(item, net)
    {
        const char *key = item->string;
        if (!strcmp(key, "allowOut") || !strcmp(key, "denyOut") ||
            !strcmp(key, "allowPublicTraffic"))
            continue;
        size_t i = 0;
        while (i < WR_ARRAY_SIZE(refused) && strcmp(key, refused[i].key))
            i++;
        if (i == WR_ARRAY_SIZE(refused))
            return wr_error_set(err, EINVAL, "network: unknown field '%.64s'", key);
        if (!cJSON_IsNull(item))
            return wr_error_set(err, EINVAL, "network.%s: %s", key, refused[i].why);
    }
    const cJSON *pub = cJSON_GetObjectItemCaseSensitive(net, "allowPublicTraffic");
    if (cJSON_IsTrue(pub))
        return wr_error_set(err, EINVAL,
                            "network.allowPublicTraffic: warren serves a sandbox's ports to "
                            "signed-in clients only (the web UI's port links)");
    if (pub && !cJSON_IsBool(pub) && !cJSON_IsNull(pub))
        return wr_error_set(err, EINVAL, "network.allowPublicTraffic must be a boolean");
    return 0;
}

/* E2B's egress settings as warren's policy:
 *   no internet (allow_internet_access false, or "0.0.0.0/0" in denyOut): allowOut's hosts
 *     through the egress proxy, or nothing when allowOut is empty;
 *   internet: NAT, or with host names in denyOut an allow-list of every host but those
 *     (HTTP and HTTPS only; allowOut wins over denyOut as in E2B). */
static int network_from(const cJSON *internet, const cJSON *net, enum vmm_net_mode fallback,
                        struct vmm_net_policy *ret, struct wr_error **err)
{
    *ret = (struct vmm_net_policy){0};
    if (!is_null_or_absent(internet) && !cJSON_IsBool(internet))
        return wr_error_set(err, EINVAL, "allow_internet_access must be a boolean");
    if (!is_null_or_absent(net) && !cJSON_IsObject(net))
        return wr_error_set(err, EINVAL, "network must be an object");
    if (!is_null_or_absent(net) && network_refused(net, err) < 0)
        return -(*err)->status;
    _cleanup_json_ cJSON *allow = NULL, *deny = NULL;
    bool deny_all = false;
    if (selectors_from(cJSON_GetObjectItemCaseSensitive(net, "allowOut"), "allowOut", &allow,
                       NULL, err) < 0 ||
        selectors_from(cJSON_GetObjectItemCaseSensitive(net, "denyOut"), "denyOut", &deny,
                       &deny_all, err) < 0)
        return -(*err)->status;
    bool has_internet = cJSON_IsBool(internet) ? cJSON_IsTrue(internet) : fallback != VMM_NET_NONE;
    if (!has_internet || deny_all) {
        if (cJSON_GetArraySize(allow) == 0)
            return 0; /* VMM_NET_NONE */
    } else {
        if (cJSON_GetArraySize(deny) == 0) {
            ret->mode = VMM_NET_NAT;
            return 0;
        }
        /* Every host but denyOut's, except those allowOut names again. */
        _cleanup_json_ cJSON *kept = cJSON_CreateArray();
        const cJSON *item;
        cJSON_ArrayForEach(item, deny)
            if (!array_has(allow, item->valuestring))
                cJSON_AddItemToArray(kept, cJSON_CreateString(item->valuestring));
        cJSON_Delete(deny);
        deny = TAKE_PTR(kept);
        cJSON_Delete(allow);
        allow = cJSON_CreateArray();
        cJSON_AddItemToArray(allow, cJSON_CreateString("*"));
    }
    _cleanup_json_ cJSON *policy = cJSON_CreateObject();
    cJSON_AddItemToObject(policy, "allow", TAKE_PTR(allow));
    cJSON_AddItemToObject(policy, "deny", TAKE_PTR(deny));
    return vmm_net_policy_from_json(policy, ret, err);
}

/* ---- create ----------------------------------------------------------------------------- */

void e2b_create_request_clear(struct e2b_create_request *r)
{
    free(r->template_id);
    free(r->metadata);
    wr_strv_free(r->env);
    vmm_net_policy_clear(&r->network);
    *r = (struct e2b_create_request){0};
}

static bool template_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= E2B_TEMPLATE_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/:@") ==
               n;
}

/* Fields E2B's create takes that warren cannot honour when they ask for something. */
static int create_refused(const cJSON *o, struct wr_error **err)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "autoPause")))
        return wr_error_set(err, EINVAL,
                            "autoPause: warren ends a sandbox when its timeout passes; pausing "
                            "it instead is not supported (idle sandboxes are paused by the "
                            "server's idle policy)");
    const cJSON *resume = cJSON_GetObjectItemCaseSensitive(o, "autoResume");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resume, "enabled")) || cJSON_IsTrue(resume))
        return wr_error_set(err, EINVAL, "autoResume is not supported (Sandbox.connect resumes)");
    const cJSON *mounts = cJSON_GetObjectItemCaseSensitive(o, "volumeMounts");
    if (!is_null_or_absent(mounts) && (!cJSON_IsArray(mounts) || cJSON_GetArraySize(mounts)))
        return wr_error_set(err, EINVAL, "volumeMounts: warren has no volumes");
    if (!is_null_or_absent(cJSON_GetObjectItemCaseSensitive(o, "mcp")))
        return wr_error_set(err, EINVAL, "mcp: MCP gateways in sandboxes are not supported");
    if (!is_null_or_absent(cJSON_GetObjectItemCaseSensitive(o, "iam")))
        return wr_error_set(err, EINVAL, "iam: workload identity tokens are not supported");
    return 0;
}

static const char *const create_fields[] = {
    "templateID", "timeout",  "metadata",  "envVars",         "secure",     "allow_internet_access",
    "network",    "autoPause", "autoPauseMemory", "autoResume", "volumeMounts", "mcp",
    "iam",        NULL};

static int check_fields(const cJSON *o, const char *const *known, struct wr_error **err)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, o)
    {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = !strcmp(item->string, known[i]);
        if (!ok)
            return wr_error_set(err, EINVAL, "unknown field '%.64s'", item->string);
    }
    return 0;
}

int e2b_create_request_parse(const char *body, size_t len, enum vmm_net_mode network_default,
                             struct e2b_create_request *ret, struct wr_error **err)
{
    *ret = (struct e2b_create_request){.timeout_s = E2B_TIMEOUT_DEFAULT};
    _cleanup_json_ cJSON *o = NULL;
    if (parse_object(body, len, &o, err) < 0)
        return -(*err)->status;
    if (check_fields(o, create_fields, err) < 0 || create_refused(o, err) < 0)
        return -(*err)->status;
    const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(o, "templateID");
    if (!is_null_or_absent(tpl)) {
        if (!cJSON_IsString(tpl) || !template_ok(tpl->valuestring))
            return wr_error_set(err, EINVAL,
                                "templateID must be an image or template name (1-%d of "
                                "letters, digits and _.-/:@)",
                                E2B_TEMPLATE_MAX);
        ret->template_id = wr_strdup(tpl->valuestring);
    }
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(o, "timeout");
    const cJSON *secure = cJSON_GetObjectItemCaseSensitive(o, "secure");
    int r = 0;
    if (!is_null_or_absent(timeout))
        r = seconds_from(timeout, "timeout", 1, E2B_TIMEOUT_MAX, &ret->timeout_s, err);
    if (r == 0 && !is_null_or_absent(secure) && !cJSON_IsBool(secure))
        r = wr_error_set(err, EINVAL, "secure must be a boolean");
    if (r == 0)
        r = metadata_from(cJSON_GetObjectItemCaseSensitive(o, "metadata"), &ret->metadata, err);
    if (r == 0)
        r = env_from(cJSON_GetObjectItemCaseSensitive(o, "envVars"), &ret->env, err);
    if (r == 0)
        r = network_from(cJSON_GetObjectItemCaseSensitive(o, "allow_internet_access"),
                         cJSON_GetObjectItemCaseSensitive(o, "network"), network_default,
                         &ret->network, err);
    if (r < 0)
        e2b_create_request_clear(ret);
    return r;
}

int e2b_timeout_parse(const char *body, size_t len, bool required, int64_t *ret,
                      struct wr_error **err)
{
    *ret = 0;
    _cleanup_json_ cJSON *o = NULL;
    if (parse_object(body, len, &o, err) < 0)
        return -(*err)->status;
    /* connect also sends "memory" (false: reboot instead of restoring memory). */
    static const char *const known[] = {"timeout", "memory", NULL};
    if (check_fields(o, known, err) < 0)
        return -(*err)->status;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "timeout");
    if (is_null_or_absent(t))
        return required ? wr_error_set(err, EINVAL, "timeout is required") : 0;
    return seconds_from(t, "timeout", 1, E2B_TIMEOUT_MAX, ret, err);
}

int e2b_network_parse(const char *body, size_t len, struct vmm_net_policy *ret,
                      struct wr_error **err)
{
    *ret = (struct vmm_net_policy){0};
    _cleanup_json_ cJSON *o = NULL;
    if (parse_object(body, len, &o, err) < 0)
        return -(*err)->status;
    /* The update's body is the network object itself plus allow_internet_access. */
    _cleanup_json_ cJSON *internet =
        cJSON_DetachItemFromObjectCaseSensitive(o, "allow_internet_access");
    return network_from(internet, o, VMM_NET_NAT, ret, err);
}

/* ---- query strings ---------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) ('+' is a space when plus is set). NULL when an escape is
 * malformed, it decodes to a NUL, or the result is over max bytes or not UTF-8. */
static char *percent_decode(const char *s, size_t n, bool plus, size_t max)
{
    if (n > 3 * max)
        return NULL;
    _cleanup_free_ char *out = wr_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return NULL;
            int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
            if (h < 0 || l < 0)
                return NULL;
            c = (char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == 0)
            return NULL;
        out[o++] = c;
    }
    out[o] = 0;
    if (o > max || !wr_utf8_valid(out, o))
        return NULL;
    return TAKE_PTR(out);
}

char *e2b_query_value(const char *url, const char *name, bool *ret_bad)
{
    *ret_bad = false;
    const char *q = strchr(url, '?');
    if (!q)
        return NULL;
    size_t name_len = strlen(name);
    for (const char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&#");
        if (len > name_len && !strncmp(p, name, name_len) && p[name_len] == '=') {
            char *v = percent_decode(p + name_len + 1, len - name_len - 1, true,
                                     E2B_QUERY_VALUE_MAX);
            *ret_bad = v == NULL;
            return v;
        }
        if (len == name_len && !strncmp(p, name, name_len))
            return wr_strdup("");
        if (p[len] != '&')
            break;
        p += len + 1;
    }
    return NULL;
}

void e2b_list_query_clear(struct e2b_list_query *q)
{
    wr_strv_free(q->meta_keys);
    wr_strv_free(q->meta_values);
    free(q->template_id);
    *q = (struct e2b_list_query){0};
}

char *e2b_list_token(int64_t created_at, const char *id)
{
    return wr_asprintf("%" PRId64 ".%s", created_at, id);
}

/* "running,paused" (the SDK sends arrays comma-separated). */
static int states_from(const char *s, struct e2b_list_query *q, struct wr_error **err)
{
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 7 && !strncmp(p, "running", 7))
            q->running = true;
        else if (n == 6 && !strncmp(p, "paused", 6))
            q->paused = true;
        else
            return wr_error_set(err, EINVAL, "state: '%.*s' is not running or paused",
                                (int)(n > 32 ? 32 : n), p);
        p += n + (p[n] == ',');
    }
    return 0;
}

/* The metadata filter: the SDK sends URLSearchParams text of percent-encoded keys and
 * values ("k=v&k2=v2", each part encoded once more), itself a query value. */
static int metadata_filter_from(const char *s, struct e2b_list_query *q, struct wr_error **err)
{
    size_t nk = 0, nv = 0;
    q->meta_keys = wr_calloc(1, sizeof(char *));
    q->meta_values = wr_calloc(1, sizeof(char *));
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        if (n > 0) {
            if (nk == E2B_METADATA_MAX_KEYS)
                return wr_error_set(err, EINVAL, "metadata filter: at most %d pairs",
                                    E2B_METADATA_MAX_KEYS);
            size_t klen = eq ? (size_t)(eq - p) : n;
            _cleanup_free_ char *k1 = percent_decode(p, klen, true, E2B_QUERY_VALUE_MAX);
            _cleanup_free_ char *v1 =
                eq ? percent_decode(eq + 1, n - klen - 1, true, E2B_QUERY_VALUE_MAX) : wr_strdup("");
            char *k = k1 ? percent_decode(k1, strlen(k1), false, E2B_METADATA_KEY_MAX) : NULL;
            char *v = v1 ? percent_decode(v1, strlen(v1), false, E2B_METADATA_VALUE_MAX) : NULL;
            if (!k || !v || !*k) {
                free(k);
                free(v);
                return wr_error_set(err, EINVAL,
                                    "metadata filter: expected key=value pairs joined by '&', "
                                    "each percent-encoded");
            }
            wr_strv_push(&q->meta_keys, &nk, k);
            wr_strv_push(&q->meta_values, &nv, v);
        }
        p += n + (p[n] == '&');
    }
    q->meta_n = nk;
    return 0;
}

static int token_from(const char *s, struct e2b_list_query *q, struct wr_error **err)
{
    char *end = NULL;
    errno = 0;
    long long created = strtoll(s, &end, 10);
    if (errno || end == s || *end != '.' || created < 0 || !wr_id_valid(end + 1) ||
        strlen(end + 1) >= sizeof(q->after_id))
        return wr_error_set(err, EINVAL, "nextToken: not a token this server gave");
    q->has_after = true;
    q->after_created = created;
    snprintf(q->after_id, sizeof(q->after_id), "%s", end + 1);
    return 0;
}

int e2b_list_query_parse(const char *url, struct e2b_list_query *ret, struct wr_error **err)
{
    *ret = (struct e2b_list_query){.limit = E2B_LIST_LIMIT_DEFAULT};
    static const char *const names[] = {"state", "metadata", "template", "limit", "nextToken"};
    char *values[WR_ARRAY_SIZE(names)] = {0};
    int r = 0;
    for (size_t i = 0; i < WR_ARRAY_SIZE(names); i++) {
        bool bad = false;
        values[i] = e2b_query_value(url, names[i], &bad);
        if (bad && r == 0)
            r = wr_error_set(err, EINVAL, "query parameter %s: bad percent-encoding or too long",
                             names[i]);
    }
    if (r == 0 && values[0] && *values[0])
        r = states_from(values[0], ret, err);
    if (r == 0 && values[1] && *values[1])
        r = metadata_filter_from(values[1], ret, err);
    if (r == 0 && values[2] && *values[2]) {
        if (!template_ok(values[2]))
            r = wr_error_set(err, EINVAL, "template: not an image or template name");
        else
            ret->template_id = wr_strdup(values[2]);
    }
    if (r == 0 && values[3] && *values[3]) {
        char *end = NULL;
        unsigned long long n = strtoull(values[3], &end, 10);
        if (*end || n < 1 || n > E2B_LIST_LIMIT_MAX || values[3][0] == '-')
            r = wr_error_set(err, EINVAL, "limit must be a number from 1 to %d",
                             E2B_LIST_LIMIT_MAX);
        else
            ret->limit = (size_t)n;
    }
    if (r == 0 && values[4] && *values[4])
        r = token_from(values[4], ret, err);
    if (r == 0 && !ret->running && !ret->paused)
        ret->running = ret->paused = true;
    for (size_t i = 0; i < WR_ARRAY_SIZE(names); i++)
        free(values[i]);
    if (r < 0)
        e2b_list_query_clear(ret);
    return r;
}
