/* Density of idle jail sandboxes, through the real MCP stdio server: creates N sandboxes
 * (default 1000) and keeps them running, then reports
 *   - sandbox_create p50 of the first 50 against the last 50 (target: the same cost with
 *     a thousand running as with none);
 *   - the host memory an idle sandbox holds (its cgroup's usage, as sandbox_list shows it;
 *     target: under 1 MiB each).
 * Usage: bench_density [path/to/warren] [N]  (root). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define WINDOW 50

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    if (n < 2 * WINDOW)
        n = 2 * WINDOW;
    char state[] = "/tmp/warren-bench-density-XXXXXX";
    if (!mkdtemp(state))
        bench_die("mkdtemp");
    struct bench_server s;
    /* No idle pause or stop while the sandboxes pile up. */
    bench_server_start(&s, warren, state, "jail", "--idle-pause-seconds=0");
    bench_initialize(&s);
    uint64_t *t = calloc(n, sizeof(uint64_t));
    char **ids = calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON *sb = bench_tool(&s, "sandbox_create", cJSON_CreateObject());
        t[i] = wr_now_ns() - t0;
        ids[i] = wr_strdup(cJSON_GetObjectItem(sb, "id")->valuestring);
        cJSON_Delete(sb);
    }
    double first = (double)bench_percentile(t, WINDOW, 0.5) / 1e6;
    double last = (double)bench_percentile(t + n - WINDOW, WINDOW, 0.5) / 1e6;
    cJSON *list = bench_tool(&s, "sandbox_list", cJSON_CreateObject());
    uint64_t total = 0;
    size_t counted = 0;
    const cJSON *sb;
    cJSON_ArrayForEach(sb, cJSON_GetObjectItem(list, "sandboxes"))
    {
        const cJSON *mem = cJSON_GetObjectItem(sb, "memory");
        total += (uint64_t)cJSON_GetObjectItem(mem, "usage_bytes")->valuedouble;
        counted++;
    }
    cJSON_Delete(list);
    printf("sandbox_create p50 with 0-%d running: %.1f ms; with %zu-%zu running: %.1f ms; "
           "ratio %.2fx (target 1x)\n",
           WINDOW, first, n - WINDOW, n, last, last / first);
    printf("%zu idle jail sandboxes hold %.1f MiB of host memory: %.2f MiB each (target < 1 MiB)\n",
           counted, (double)total / (1 << 20), (double)total / (1 << 20) / (double)counted);
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(bench_destroy(&s, ids[i]));
        free(ids[i]);
    }
    free(ids);
    free(t);
    _cleanup_free_ char *cleanup = wr_asprintf("rm -rf %s", state);
    bench_run(cleanup);
    return 0;
}
