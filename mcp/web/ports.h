/* The web UI's ports: a server inside a sandbox, reached through warren. */
#pragma once

#include "mcp/http/http.h"
#include "vmm/vmm.h"

/* Relays a request to port of sandbox (its path below the link's prefix: "" or "/..."),
 * once the link's token was checked. */
void mcp_web_port(struct vmm *vmm, struct http_conn *c, struct http_request *req,
                  const char *sandbox, uint16_t port, const char *path);
