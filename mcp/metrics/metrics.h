/* GET /metrics on the listener: Prometheus text exposition (format 0.0.4), behind the
 * bearer token like /mcp. The counters and histograms come from util/metrics.h, where the
 * listener, the MCP call path and the sandbox manager report; the sandbox gauges and the
 * process's own figures are read when scraped. The metric names are listed in README.md
 * ("Metrics"). */
#pragma once

#include "util/util.h"

struct http_server;
struct vmm;

/* Adds the /metrics route to listener; vmm must outlive the listener. */
void mcp_metrics_route(struct http_server *listener, struct vmm *vmm);

/* Renders the whole exposition into out (tests and the route). 0 or -errno. */
int mcp_metrics_render(struct vmm *vmm, struct wr_buf *out);
