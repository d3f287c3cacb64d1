/* What `cpus` gives a jail sandbox, measured: two busy loops run for 4 s of wall time in a
 * sandbox with cpus 1 and with cpus 2, and the CPU time they got (the shell's `times`) is
 * divided by the wall time. cpus is the cgroup's cpu.max quota, so the ratio should be
 * about cpus (on a host with at least that many cores).
 * Usage: bench_cpu [path/to/warren]  (root). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define WALL_S 4

static double cpu_share(struct bench_server *s, int cpus)
{
    cJSON *args = cJSON_CreateObject();
    cJSON_AddNumberToObject(args, "cpus", cpus);
    cJSON *sb = bench_tool(s, "sandbox_create", args);
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "for i in 1 2; do timeout %d sh -c 'while :; do :; done' & done; wait; times", WALL_S);
    cJSON *r = bench_tool(s, "sandbox_exec", bench_shell_args(id, cmd));
    const char *out = cJSON_GetObjectItem(r, "stdout")->valuestring;
    /* The second line of `times`: the children's user and system time. */
    const char *line = strchr(out, '\n');
    int um = 0, sm = 0;
    double us = 0, ss = 0;
    if (!line || sscanf(line + 1, "%dm%lfs %dm%lfs", &um, &us, &sm, &ss) != 4) {
        fprintf(stderr, "bench_cpu: the exec printed: %s\n%s\n", out,
                cJSON_GetObjectItem(r, "stderr")->valuestring);
        bench_die("reading the shell's times");
    }
    double used = um * 60 + us + sm * 60 + ss;
    cJSON_Delete(r);
    cJSON_Delete(bench_destroy(s, id));
    cJSON_Delete(sb);
    return used / WALL_S;
}

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char state[] = "/tmp/warren-bench-cpu-XXXXXX";
    if (!mkdtemp(state))
        bench_die("mkdtemp");
    struct bench_server s;
    bench_server_start(&s, warren, state, "jail", NULL);
    bench_initialize(&s);
    for (int cpus = 1; cpus <= 2; cpus++)
        printf("jail, cpus %d: two busy loops got %.2f CPUs (target about %d)\n", cpus,
               cpu_share(&s, cpus), cpus);
    bench_server_stop(&s);
    _cleanup_free_ char *cleanup = wr_asprintf("rm -rf %s", state);
    bench_run(cleanup);
    return 0;
}
