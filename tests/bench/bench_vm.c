/* Benchmark of the qemu backend through the real MCP stdio server (TCG when there is no
 * KVM, so quote the figures with that in mind):
 *   - boot to agent: sandbox_create of a 1 GiB VM until it answers
 *   - sandbox_exec round trip of /bin/true inside the VM
 *   - a 4 MiB file written and read back through the tools
 *   - memory reclaim: host resident memory of the VMM process before, at the peak of a
 *     guest that fills then frees 512 MiB, and 15 s after the sandbox went idle, against
 *     the idle guest's own use (target: within 64 MiB of it)
 * Usage: bench_vm [path/to/warren]  (root; needs qemu, virtiofsd and build/guest). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "client.h"

#define IDLE_RECLAIM_ARG "--idle-reclaim-seconds=5"

static double mib(double bytes)
{
    return bytes / (1024.0 * 1024.0);
}

static cJSON *sandbox(struct bench_server *s, const char *id)
{
    cJSON *list = bench_tool(s, "sandbox_list", NULL);
    cJSON *sb, *found = NULL;
    cJSON_ArrayForEach(
        sb, cJSON_GetObjectItem(
                list, "sandboxes")) if (!strcmp(cJSON_GetObjectItem(sb, "id")->valuestring, id))
        found = cJSON_Duplicate(sb, true);
    cJSON_Delete(list);
    if (!found)
        bench_die("sandbox vanished from sandbox_list");
    return found;
}

/* The VMM's resident memory split into the guest's RAM (shared memfd pages) and the
 * VMM's own (anonymous and file pages: under TCG mostly its translation cache). */
static void rss_breakdown(struct bench_server *s, const char *id, double *ret_guest,
                          double *ret_own)
{
    cJSON *sb = sandbox(s, id);
    int pid = cJSON_GetObjectItem(sb, "pid")->valueint;
    cJSON_Delete(sb);
    _cleanup_free_ char *path = wr_asprintf("/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    char line[256];
    double shmem = 0, anon = 0, file = 0, kb;
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Pss_Shmem: %lf", &kb) == 1)
            shmem = kb * 1024;
        else if (sscanf(line, "Pss_Anon: %lf", &kb) == 1)
            anon = kb * 1024;
        else if (sscanf(line, "Pss_File: %lf", &kb) == 1)
            file = kb * 1024;
    }
    if (f)
        fclose(f);
    *ret_guest = shmem;
    *ret_own = anon + file;
}

/* Host memory the VMM holds now (sandbox_list's memory.usage_bytes: the VMM's RSS). */
static double host_rss(struct bench_server *s, const char *id, double *ret_balloon)
{
    cJSON *sb = sandbox(s, id);
    cJSON *m = cJSON_GetObjectItem(sb, "memory");
    double rss = cJSON_GetObjectItem(m, "usage_bytes")->valuedouble;
    if (ret_balloon)
        *ret_balloon = cJSON_GetObjectItem(m, "balloon_bytes")->valuedouble;
    cJSON_Delete(sb);
    return rss;
}

static char *exec_stdout(struct bench_server *s, const char *id, const char *command)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "command", command);
    cJSON_AddNumberToObject(a, "timeout_seconds", 600);
    cJSON *r = bench_tool(s, "sandbox_exec", a);
    if (cJSON_GetObjectItem(r, "exit_code")->valueint != 0) {
        fprintf(stderr, "%s\n", cJSON_GetObjectItem(r, "stderr")->valuestring);
        bench_die(command);
    }
    char *out = wr_strdup(cJSON_GetObjectItem(r, "stdout")->valuestring);
    cJSON_Delete(r);
    return out;
}

static void bench_exec_rtt(struct bench_server *s, const char *id)
{
    enum { N = 30 };
    uint64_t t[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = wr_now_ns();
        cJSON_Delete(bench_tool(s, "sandbox_exec", bench_exec_args(id, "/bin/true")));
        t[i] = wr_now_ns() - t0;
    }
    printf("sandbox_exec /bin/true in the VM: p50 %.2f ms, p90 %.2f ms\n",
           bench_percentile(t, N, 0.5) / 1e6, bench_percentile(t, N, 0.9) / 1e6);
}

static void bench_reclaim(struct bench_server *s, const char *id)
{
    double before = host_rss(s, id, NULL);
    _cleanup_free_ char *fill =
        exec_stdout(s, id,
                    "mount -o remount,size=90% /dev/shm 2>/dev/null; "
                    "dd if=/dev/zero of=/dev/shm/fill bs=1M count=512 2>/dev/null && echo filled");
    double peak = host_rss(s, id, NULL);
    /* The guest's own use once the 512 MiB are freed, measured from inside. */
    _cleanup_free_ char *used = exec_stdout(
        s, id,
        "rm -f /dev/shm/fill; sync; echo 3 > /proc/sys/vm/drop_caches; "
        "awk '/MemTotal/{t=$2} /MemAvailable/{a=$2} END{print (t-a)*1024}' /proc/meminfo");
    double guest_use = strtod(used, NULL);
    uint64_t idle_from = wr_now_ms();
    double rss = 0, balloon = 0;
    printf("  idle: t(s)  host RSS (MiB)  balloon (MiB)\n");
    while (wr_now_ms() - idle_from < 20000) {
        sleep(1);
        rss = host_rss(s, id, &balloon);
        double t = (double)(wr_now_ms() - idle_from) / 1000.0;
        printf("        %4.0f  %8.0f        %8.0f\n", t, mib(rss), mib(balloon));
        if (t >= 15.0)
            break;
    }
    double guest_ram, own;
    rss_breakdown(s, id, &guest_ram, &own);
    printf("memory reclaim (1 GiB VM, 512 MiB filled then freed): host RSS before %.0f MiB, "
           "peak %.0f MiB, 15 s after idle %.0f MiB (balloon %.0f MiB); guest's own use %.0f MiB; "
           "excess %.0f MiB (target <= 64 MiB)\n",
           mib(before), mib(peak), mib(rss), mib(balloon), mib(guest_use), mib(rss - guest_use));
    printf("  of the idle RSS: guest RAM still resident %.0f MiB (%.0f MiB over the guest's own "
           "use), the VMM's own memory %.0f MiB\n",
           mib(guest_ram), mib(guest_ram - guest_use), mib(own));
}

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        fprintf(stderr, "bench_vm: needs root\n");
        return 77;
    }
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char tmpl[] = "/tmp/warren-bench-vm-XXXXXX";
    const char *state = mkdtemp(tmpl);
    struct bench_server s = {0};
    bench_server_start(&s, warren, state, "qemu", IDLE_RECLAIM_ARG);
    bench_initialize(&s);
    _cleanup_free_ char *repo = bench_make_repo();
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "repo", repo);
    cJSON_AddNumberToObject(a, "memory_mib", 1024);
    uint64_t t0 = wr_now_ns();
    cJSON *sb = bench_tool(&s, "sandbox_create", a);
    printf("boot to agent (sandbox_create of a 1 GiB VM, TCG): %.0f ms\n",
           (wr_now_ns() - t0) / 1e6);
    const char *id = cJSON_GetObjectItem(sb, "id")->valuestring;
    bench_exec_rtt(&s, id);
    double w, r;
    bench_file_throughput(&s, id, 4u << 20, &w, &r);
    printf("4 MiB file through the tools into the VM: write %.0f MB/s, read %.0f MB/s\n", w, r);
    bench_reclaim(&s, id);
    cJSON_Delete(bench_destroy(&s, id));
    cJSON_Delete(sb);
    fclose(s.in);
    waitpid(s.pid, NULL, 0);
    _cleanup_free_ char *cmd = wr_asprintf("rm -rf %s %s", state, repo);
    return system(cmd) == 0 ? 0 : 1;
}
