/* E2B's control plane: /sandboxes, /v2/sandboxes (see docs/e2b.md). */
#include "e2b-internal.h"

void e2b_control_handle(struct mcp_e2b *e, struct http_conn *c, struct http_request *req)
{
    (void)e;
    (void)req;
    e2b_respond_error(c, 404, "no such route");
}
