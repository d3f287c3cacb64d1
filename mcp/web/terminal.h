/* The terminal WebSocket of the web UI (docs/terminal.md). */
#pragma once

#include "mcp/http/http.h"
#include "vmm/vmm.h"

/* Answers GET /sandboxes/<sandbox>/terminal: a new PTY session, or ?pty=N to reattach. */
void mcp_web_terminal(struct vmm *vmm, struct http_conn *c, struct http_request *req,
                      const char *sandbox);
