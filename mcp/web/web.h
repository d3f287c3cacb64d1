/* The web UI (`warren serve`): the page at /, its assets (compiled into the binary, with
 * content hashes in their names, gzip), browser sign-in with the server's token
 * (/api/session, /api/login, /api/logout: an HttpOnly, SameSite=Strict session cookie and
 * a CSRF token, mcp/http/signin.c), and a server-sent event stream of every sandbox's
 * events (/api/events). The page drives sandboxes through /mcp like any MCP client. */
#pragma once

#include "mcp/http/http.h"
#include "vmm/vmm.h"

struct mcp_web;
int mcp_web_start(struct vmm *vmm, struct http_server *listener, struct mcp_web **ret,
                  struct wr_error **err);
/* Ends the event streams; call before stopping the listener. NULL-safe. */
void mcp_web_stop(struct mcp_web *w);
/* Graceful shutdown: ends the UI's event streams (the browser sees them end); terminals
 * stay until mcp_web_stop. NULL-safe. */
void mcp_web_drain(struct mcp_web *w);
