/* The control plane's requests as validated structs: the bodies of create, connect,
 * timeout and network updates, and the listing's query. Pure functions (no vmm, no
 * sockets), so tests and the fuzzer (tests/fuzz/fuzz_e2b_request.c) drive them directly.
 * Every size a client controls has a cap here; errors are EINVAL (400) with a message
 * that names the field. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "vmm/net/policy.h"

#define E2B_TEMPLATE_MAX 255       /* templateID: an image reference or template name */
#define E2B_METADATA_MAX_KEYS 64
#define E2B_METADATA_KEY_MAX 256
#define E2B_METADATA_VALUE_MAX 1024
#define E2B_ENV_MAX_VARS 256
#define E2B_ENV_NAME_MAX 256
#define E2B_ENV_VALUE_MAX (16u * 1024u)
#define E2B_TIMEOUT_MAX (90 * 86400) /* seconds, as sandbox_create's ttl_seconds */
#define E2B_TIMEOUT_DEFAULT 300      /* E2B's default when the body has none */
#define E2B_LIST_LIMIT_DEFAULT 100
#define E2B_LIST_LIMIT_MAX 1000
#define E2B_QUERY_VALUE_MAX 8192 /* one decoded query parameter */

struct e2b_create_request {
    char *template_id;    /* as sent; NULL: the default ("base") */
    int64_t timeout_s;    /* 1..E2B_TIMEOUT_MAX */
    char *metadata;       /* compact JSON object of strings, or NULL when none */
    char **env;           /* "K=V", NULL-terminated, or NULL */
    struct vmm_net_policy network;
};
void e2b_create_request_clear(struct e2b_create_request *r);
/* POST /sandboxes and /v2/sandboxes. network_default: the policy when the body names
 * neither allow_internet_access nor network (E2B's default is internet access). */
int e2b_create_request_parse(const char *body, size_t len, enum vmm_net_mode network_default,
                             struct e2b_create_request *ret, struct wr_error **err);

/* {"timeout": seconds} (setTimeout; connect, where it may be absent: *ret 0). */
int e2b_timeout_parse(const char *body, size_t len, bool required, int64_t *ret,
                      struct wr_error **err);

/* PUT /sandboxes/{id}/network: {allow_internet_access?, allowOut?, denyOut?} replaces the
 * sandbox's policy (fields left out are cleared, as E2B does). */
int e2b_network_parse(const char *body, size_t len, struct vmm_net_policy *ret,
                      struct wr_error **err);

/* GET /v2/sandboxes (and the legacy GET /sandboxes). */
struct e2b_list_query {
    bool running, paused; /* which states; both when the query names none */
    char **meta_keys, **meta_values; /* the metadata filter: every pair must match */
    size_t meta_n;
    char *template_id; /* NULL: any */
    size_t limit;
    /* nextToken: the listing goes on after the sandbox created at after_created with id
     * after_id (the order is creation time, then id). */
    bool has_after;
    int64_t after_created;
    char after_id[17];
};
void e2b_list_query_clear(struct e2b_list_query *q);
int e2b_list_query_parse(const char *url, struct e2b_list_query *ret, struct wr_error **err);
/* The nextToken naming a sandbox (the caller frees). */
char *e2b_list_token(int64_t created_at, const char *id);

/* The decoded value of query parameter name in url ("/p?a=1&b=x%20y"), or NULL when absent.
 * *ret_bad is set when it is there but cannot be decoded (bad escape, NUL, over
 * E2B_QUERY_VALUE_MAX, not UTF-8). The caller frees. */
char *e2b_query_value(const char *url, const char *name, bool *ret_bad);
