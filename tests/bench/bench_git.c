/* Benchmark of git inside /workspace on the jail backend, through the real MCP stdio server:
 *   - `git status` in a sandbox whose workspace is a repository of 10,000 files, against
 *     the same command on the host in the repository itself (target: within 2x);
 *   - the first `git status` of a new sandbox (the index from the checkout layer must be
 *     trusted, not rebuilt by hashing every file);
 *   - sandbox_create of that repository once its commit is checked out.
 * Usage: bench_git [path/to/warren]  (root). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define FILES 10000
#define RUNS 9

/* A repository of FILES small files in 100 directories, one commit. */
static char *make_big_repo(void)
{
    char *dir = wr_strdup("/tmp/warren-bench-git-XXXXXX");
    if (!mkdtemp(dir))
        bench_die("mkdtemp");
    _cleanup_free_ char *cmd = wr_asprintf(
        "cd %s && git init -q -b main && for d in $(seq 0 99); do mkdir d$d && "
        "for f in $(seq 0 %d); do echo \"file $d $f\" > d$d/f$f.txt; done; done && "
        "git add -A && git -c gc.auto=0 -c user.name=b -c user.email=b@b commit -qm files",
        dir, FILES / 100 - 1);
    bench_run(cmd);
    return dir;
}

/* Median wall time of `git status` run RUNS times in the sandbox, timed inside it. */
static double sandbox_status_ms(struct bench_server *s, const char *id, double *ret_first_ms)
{
    _cleanup_free_ char *script = wr_asprintf(
        "for i in $(seq 1 %d); do t0=$(date +%%s%%N); git status --porcelain >/dev/null; "
        "t1=$(date +%%s%%N); echo $(( (t1 - t0) / 1000 )); done",
        RUNS);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "command", script);
    cJSON *r = bench_tool(s, "sandbox_exec", a);
    if (cJSON_GetObjectItem(r, "exit_code")->valueint != 0) {
        fprintf(stderr, "%s\n", cJSON_GetObjectItem(r, "stderr")->valuestring);
        bench_die("git status in the sandbox");
    }
    uint64_t t[RUNS];
    char *p = cJSON_GetObjectItem(r, "stdout")->valuestring;
    for (int i = 0; i < RUNS; i++)
        t[i] = strtoull(p, &p, 10);
    cJSON_Delete(r);
    *ret_first_ms = (double)t[0] / 1e3;
    return (double)bench_percentile(t, RUNS, 0.5) / 1e3;
}

static double host_status_ms(const char *repo)
{
    uint64_t t[RUNS];
    _cleanup_free_ char *cmd = wr_asprintf("git -C %s status --porcelain >/dev/null", repo);
    for (int i = 0; i < RUNS; i++) {
        uint64_t t0 = wr_now_ns();
        bench_run(cmd);
        t[i] = (wr_now_ns() - t0) / 1000;
    }
    return (double)bench_percentile(t, RUNS, 0.5) / 1e3;
}

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char state[] = "/tmp/warren-bench-git-state-XXXXXX";
    if (!mkdtemp(state))
        bench_die("mkdtemp");
    _cleanup_free_ char *repo = make_big_repo();
    struct bench_server s;
    bench_server_start(&s, warren, state, "jail", NULL);
    bench_initialize(&s);

    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    uint64_t t0 = wr_now_ns();
    cJSON *first = bench_tool(&s, "sandbox_create", a);
    double checkout_ms = (double)(wr_now_ns() - t0) / 1e6;
    a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    t0 = wr_now_ns();
    cJSON *sb = bench_tool(&s, "sandbox_create", a);
    double create_ms = (double)(wr_now_ns() - t0) / 1e6;
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;

    double first_ms;
    double inside = sandbox_status_ms(&s, id, &first_ms);
    double host = host_status_ms(repo);
    printf("git status, %d files: in the sandbox p50 %.1f ms (first %.1f ms), on the host p50 "
           "%.1f ms; ratio %.2fx (target <= 2x)\n",
           FILES, inside, first_ms, host, inside / host);
    printf("sandbox_create of that repository: %.0f ms with the checkout, %.0f ms once it is "
           "there\n",
           checkout_ms, create_ms);

    cJSON_Delete(bench_destroy(&s, cJSON_GetObjectItem(first, "id")->valuestring));
    cJSON_Delete(bench_destroy(&s, id));
    cJSON_Delete(first);
    cJSON_Delete(sb);
    _cleanup_free_ char *cleanup = wr_asprintf("rm -rf %s %s", repo, state);
    bench_run(cleanup);
    return 0;
}
