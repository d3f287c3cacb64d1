/* envd's /files: download and upload. */
#include "e2b-internal.h"

void e2b_files_handle(struct mcp_e2b *e, struct http_conn *c, struct http_request *req,
                      const char *sandbox)
{
    (void)e;
    (void)req;
    (void)sandbox;
    e2b_respond_error(c, 404, "no such route");
}
