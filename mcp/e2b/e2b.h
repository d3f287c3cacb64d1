/* The E2B-compatible API on warren's listener (see docs/e2b.md): E2B's control plane
 * (/sandboxes, /v2/sandboxes, told from the web UI's paths by the X-API-Key header the SDK
 * sends) and the in-sandbox daemon's API, envd (Connect/JSON RPCs, /files, /health, told
 * apart by the E2b-Sandbox-Id header that names the sandbox). Every call goes through the
 * same vmm_* API as MCP's tools and the UI, and is recorded in the sandbox's activity. */
#pragma once

#include "mcp/http/http.h"
#include "vmm/vmm.h"

struct mcp_e2b_options {
    struct vmm *vmm;
    struct http_server *listener;
    /* The server's token (NULL with --auth none): API keys are checked against it (and
     * the key store), and each sandbox's envd access token is derived from it. */
    const char *token;
    /* The image E2B's default template "base" stands for; NULL: "host". */
    const char *base_image;
};

struct mcp_e2b;
/* Adds the routes; call before the web UI adds its catch-all routes. */
int mcp_e2b_start(const struct mcp_e2b_options *opts, struct mcp_e2b **ret, struct wr_error **err);
/* Ends the streams in flight; call before stopping the listener. NULL-safe. */
void mcp_e2b_stop(struct mcp_e2b *e);
/* Frees it, after the listener has stopped and the vmm is closed. NULL-safe. */
void mcp_e2b_free(struct mcp_e2b *e);
