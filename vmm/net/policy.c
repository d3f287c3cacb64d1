/* Network policies: parsing, normalization and host matching (see policy.h). */
#include <arpa/inet.h>
#include <string.h>

#include "policy.h"

void vmm_net_policy_clear(struct vmm_net_policy *p)
{
    wr_strv_free(p->allow);
    wr_strv_free(p->deny);
    *p = (struct vmm_net_policy){0};
}

int vmm_net_host_normalize(const char *in, size_t len, char out[static VMM_NET_MAX_HOST + 1])
{
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > VMM_NET_MAX_HOST)
        return -EINVAL;
    size_t label = 0;
    bool all_digits = true; /* in the last label */
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '.') {
            if (label == 0 || out[i - 1] == '-')
                return -EINVAL;
            label = 0;
            all_digits = true;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63 || (label == 1 && c == '-'))
                return -EINVAL;
            all_digits &= c >= '0' && c <= '9';
        } else
            return -EINVAL;
        out[i] = c;
    }
    out[len] = 0;
    if (label == 0 || out[len - 1] == '-')
        return -EINVAL;
    /* An address in any form the resolver takes ("127.1", "0x7f000001") is not a name. */
    struct in_addr a4;
    if (all_digits || inet_aton(out, &a4))
        return -EINVAL;
    return 0;
}

/* A pattern: "*", "*.<name>" or "<name>", normalized into a new string. */
static int pattern_normalize(const char *in, size_t len, char **ret)
{
    if (len == 1 && in[0] == '*') {
        *ret = wr_strdup("*");
        return 0;
    }
    bool wildcard = len > 2 && in[0] == '*' && in[1] == '.';
    char host[VMM_NET_MAX_HOST + 1];
    if (vmm_net_host_normalize(in + (wildcard ? 2 : 0), len - (wildcard ? 2 : 0), host) < 0)
        return -EINVAL;
    *ret = wildcard ? wr_asprintf("*.%s", host) : wr_strdup(host);
    return 0;
}

static int names_from_json(const cJSON *arr, const char *key, char ***ret, struct wr_error **err)
{
    size_t n = 0;
    *ret = wr_calloc(1, sizeof(char *));
    if (!arr)
        return 0;
    if (!cJSON_IsArray(arr))
        return wr_error_set(err, EINVAL, "network.%s must be an array of host names", key);
    if (cJSON_GetArraySize(arr) > VMM_NET_MAX_NAMES)
        return wr_error_set(err, EINVAL, "network.%s holds at most %d names", key,
                            VMM_NET_MAX_NAMES);
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsString(item))
            return wr_error_set(err, EINVAL, "network.%s must be an array of host names", key);
        const char *s = item->valuestring;
        char *name;
        if (pattern_normalize(s, strlen(s), &name) < 0)
            return wr_error_set(
                err, EINVAL,
                "network.%s: '%.80s' is not a host name, '*.<name>' or '*' (addresses are "
                "refused: an allow-list names hosts; use network: true for addresses)",
                key, s);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = !strcmp((*ret)[i], name);
        if (dup)
            free(name);
        else
            wr_strv_push(ret, &n, name);
    }
    return 0;
}

int vmm_net_policy_from_json(const cJSON *v, struct vmm_net_policy *ret, struct wr_error **err)
{
    *ret = (struct vmm_net_policy){0};
    if (cJSON_IsBool(v)) {
        ret->mode = cJSON_IsTrue(v) ? VMM_NET_NAT : VMM_NET_NONE;
        return 0;
    }
    if (!cJSON_IsObject(v))
        return wr_error_set(err, EINVAL,
                            "network must be false, true or {\"allow\": [host names], "
                            "\"deny\": [host names]}");
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        if (!item->string || (strcmp(item->string, "allow") && strcmp(item->string, "deny")))
            return wr_error_set(err, EINVAL,
                                "network: unknown key '%.40s' (an allow-list has \"allow\" and "
                                "\"deny\")",
                                item->string ? item->string : "");
    }
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(v, "allow");
    if (!allow)
        return wr_error_set(err, EINVAL, "network: an allow-list needs \"allow\": [host names]");
    ret->mode = VMM_NET_ALLOW;
    if (names_from_json(allow, "allow", &ret->allow, err) < 0 ||
        names_from_json(cJSON_GetObjectItemCaseSensitive(v, "deny"), "deny", &ret->deny, err) < 0) {
        vmm_net_policy_clear(ret);
        return -(*err)->status;
    }
    return 0;
}

int vmm_net_policy_parse(const char *text, size_t len, struct vmm_net_policy *ret,
                         struct wr_error **err)
{
    cJSON *v = cJSON_ParseWithLength(text, len);
    if (!v) {
        *ret = (struct vmm_net_policy){0};
        return wr_error_set(err, EINVAL, "network policy: not JSON");
    }
    int r = vmm_net_policy_from_json(v, ret, err);
    cJSON_Delete(v);
    return r;
}

cJSON *vmm_net_policy_to_json(const struct vmm_net_policy *p)
{
    if (p->mode != VMM_NET_ALLOW)
        return cJSON_CreateBool(p->mode == VMM_NET_NAT);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "allow",
                          cJSON_CreateStringArray((const char *const *)p->allow,
                                                  (int)wr_strv_len((const char *const *)p->allow)));
    cJSON_AddItemToObject(o, "deny",
                          cJSON_CreateStringArray((const char *const *)p->deny,
                                                  (int)wr_strv_len((const char *const *)p->deny)));
    return o;
}

char *vmm_net_policy_to_text(const struct vmm_net_policy *p)
{
    cJSON *v = vmm_net_policy_to_json(p);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!text)
        abort();
    return text;
}

void vmm_net_policy_copy(struct vmm_net_policy *dst, const struct vmm_net_policy *src)
{
    dst->mode = src->mode;
    dst->allow = src->allow ? wr_strv_copy((const char *const *)src->allow) : NULL;
    dst->deny = src->deny ? wr_strv_copy((const char *const *)src->deny) : NULL;
}

static bool matches(const char *const *patterns, const char *host)
{
    size_t hlen = strlen(host);
    for (size_t i = 0; patterns && patterns[i]; i++) {
        const char *p = patterns[i];
        if (!strcmp(p, "*") || !strcmp(p, host))
            return true;
        if (p[0] == '*') {
            size_t slen = strlen(p + 1); /* ".example.org" */
            if (hlen > slen && !strcmp(host + hlen - slen, p + 1))
                return true;
        }
    }
    return false;
}

bool vmm_net_policy_allows(const struct vmm_net_policy *p, const char *host)
{
    return p->mode == VMM_NET_ALLOW && matches((const char *const *)p->allow, host) &&
           !matches((const char *const *)p->deny, host);
}
