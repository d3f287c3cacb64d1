/* The cost of a network on the jail, through the real MCP stdio server:
 *   - sandbox_create p50 with network: true and with an allow-list against network: false
 *     (target: within 10 ms);
 *   - sandbox_exec round trip p50 of /bin/true in a sandbox with and without a network
 *     (target: within 1.1x), alternating so that the machine's noise hits both alike.
 * Usage: bench_net [path/to/warren] [creates]  (root; needs slirp4netns and nftables). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "client.h"

#define EXECS 300

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 30;
    char state[] = "/tmp/warren-bench-net-XXXXXX";
    if (!mkdtemp(state))
        bench_die("mkdtemp");
    struct bench_server s;
    bench_server_start(&s, warren, state, "jail", "--idle-pause-seconds=0");
    bench_initialize(&s);

    uint64_t *off = calloc(n, sizeof(uint64_t)), *on = calloc(n, sizeof(uint64_t)),
             *listed = calloc(n, sizeof(uint64_t));
    cJSON *args_off = cJSON_CreateObject(), *args_on = cJSON_CreateObject();
    cJSON_AddBoolToObject(args_on, "network", true);
    cJSON *args_listed = cJSON_Parse("{\"network\": {\"allow\": [\"deb.debian.org\"]}}");
    for (size_t i = 0; i < n; i++) {
        bench_create_times(&s, args_off, &off[i], 1);
        bench_create_times(&s, args_on, &on[i], 1);
        bench_create_times(&s, args_listed, &listed[i], 1);
    }
    double c_off = (double)bench_percentile(off, n, 0.5) / 1e6;
    double c_on = (double)bench_percentile(on, n, 0.5) / 1e6;
    double c_listed = (double)bench_percentile(listed, n, 0.5) / 1e6;
    printf("jail sandbox_create p50: network false %.1f ms, true %.1f ms: +%.1f ms, allow-list "
           "%.1f ms: +%.1f ms (target <= 10 ms)\n",
           c_off, c_on, c_on - c_off, c_listed, c_listed - c_off);

    cJSON *a = bench_tool(&s, "sandbox_create", cJSON_Duplicate(args_off, true));
    cJSON *b = bench_tool(&s, "sandbox_create", cJSON_Duplicate(args_on, true));
    const char *id_off = cJSON_GetObjectItem(a, "id")->valuestring;
    const char *id_on = cJSON_GetObjectItem(b, "id")->valuestring;
    static uint64_t e_off[EXECS], e_on[EXECS];
    for (int i = 0; i < EXECS; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON_Delete(bench_tool(&s, "sandbox_exec", bench_exec_args(id_off, "/bin/true")));
        uint64_t t1 = wr_now_ns();
        cJSON_Delete(bench_tool(&s, "sandbox_exec", bench_exec_args(id_on, "/bin/true")));
        e_off[i] = t1 - t0;
        e_on[i] = wr_now_ns() - t1;
    }
    double x_off = (double)bench_percentile(e_off, EXECS, 0.5) / 1e6;
    double x_on = (double)bench_percentile(e_on, EXECS, 0.5) / 1e6;
    printf("jail sandbox_exec p50: network false %.2f ms, true %.2f ms: %.2fx (target <= "
           "1.1x)\n",
           x_off, x_on, x_on / x_off);
    cJSON_Delete(bench_destroy(&s, id_off));
    cJSON_Delete(bench_destroy(&s, id_on));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(args_off);
    cJSON_Delete(args_on);
    cJSON_Delete(args_listed);
    free(off);
    free(on);
    free(listed);
    bench_server_stop(&s);
    _cleanup_free_ char *cleanup = wr_asprintf("rm -rf %s", state);
    bench_run(cleanup);
    return 0;
}
