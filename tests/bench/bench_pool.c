/* Warm pools, through the real MCP stdio server: sandbox_create p50 served from a full pool
 * (`--pool host=4`), without and with a repository, against the same creates on a server
 * without a pool. Each create waits until the pool is full again, so every one is a
 * claim. Targets: jail <= 5 ms, qemu <= 100 ms (even under TCG).
 * Usage: bench_pool [path/to/warren] [jail|qemu] [creates]  (root). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define POOL_SIZE 4

static unsigned pool_ready(struct bench_server *s)
{
    cJSON *list = bench_tool(s, "sandbox_list", cJSON_CreateObject());
    const cJSON *pool = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "pools"), 0);
    unsigned ready = pool ? (unsigned)cJSON_GetObjectItem(pool, "ready")->valuedouble : 0;
    cJSON_Delete(list);
    return ready;
}

static void wait_full(struct bench_server *s, int timeout_s)
{
    uint64_t until = wr_now_ns() + (uint64_t)timeout_s * 1000000000ull;
    while (pool_ready(s) < POOL_SIZE) {
        if (wr_now_ns() > until)
            bench_die("the pool did not fill");
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    }
}

static double p50_ms(uint64_t *t, size_t n)
{
    return (double)bench_percentile(t, n, 0.5) / 1e6;
}

/* p50 of n creates with args; pooled: wait for a full pool before each. */
static double creates(struct bench_server *s, const cJSON *args, size_t n, bool pooled,
                      int fill_timeout_s)
{
    uint64_t *t = calloc(n, sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        if (pooled)
            wait_full(s, fill_timeout_s);
        uint64_t t0 = wr_now_ns();
        cJSON *sb = bench_tool(s, "sandbox_create", cJSON_Duplicate(args, true));
        t[i] = wr_now_ns() - t0;
        cJSON_Delete(bench_destroy(s, cJSON_GetObjectItem(sb, "id")->valuestring));
        cJSON_Delete(sb);
    }
    double p = p50_ms(t, n);
    free(t);
    return p;
}

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    const char *backend = argc > 2 ? argv[2] : "jail";
    bool vm = strcmp(backend, "jail") != 0;
    size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : (vm ? 5 : 40);
    int fill_timeout_s = vm ? 300 : 30;
    _cleanup_free_ char *repo = bench_make_repo();
    cJSON *plain = cJSON_CreateObject();
    cJSON *with_repo = cJSON_CreateObject();
    cJSON_AddStringToObject(with_repo, "repo", repo);

    char fresh_state[] = "/tmp/warren-bench-pool-XXXXXX";
    if (!mkdtemp(fresh_state))
        bench_die("mkdtemp");
    struct bench_server s;
    bench_server_start(&s, warren, fresh_state, backend, "--idle-pause-seconds=0");
    bench_initialize(&s);
    size_t fresh_n = vm ? 3 : n;
    double fresh_plain = creates(&s, plain, fresh_n, false, 0);
    double fresh_repo = creates(&s, with_repo, fresh_n, false, 0);
    bench_server_stop(&s);

    char pool_state[] = "/tmp/warren-bench-pool-XXXXXX";
    if (!mkdtemp(pool_state))
        bench_die("mkdtemp");
    bench_server_start(&s, warren, pool_state, backend, "--pool=host=4");
    bench_initialize(&s);
    double pool_plain = creates(&s, plain, n, true, fill_timeout_s);
    double pool_repo = creates(&s, with_repo, n, true, fill_timeout_s);
    double target = vm ? 100 : 5;
    printf("%s sandbox_create p50 from a warm pool: %.1f ms without a repo (fresh %.1f ms, "
           "%.2fx), %.1f ms with a repo (fresh %.1f ms, %.2fx); target <= %.0f ms\n",
           backend, pool_plain, fresh_plain, pool_plain / fresh_plain, pool_repo, fresh_repo,
           pool_repo / fresh_repo, target);
    /* Stopped with a refill under way, a server leaves that sandbox to the next one. */
    wait_full(&s, fill_timeout_s);
    bench_server_stop(&s);
    /* A server with the pool at 0 removes the pool's sandboxes. */
    bench_server_start(&s, warren, pool_state, backend, "--pool=host=0");
    bench_initialize(&s);
    sleep(vm ? 5 : 2);
    bench_server_stop(&s);

    cJSON_Delete(plain);
    cJSON_Delete(with_repo);
    _cleanup_free_ char *cleanup =
        wr_asprintf("sleep 1; rm -rf %s %s %s", fresh_state, pool_state, repo);
    bench_run(cleanup);
    return 0;
}
