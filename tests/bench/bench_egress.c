/* Download throughput out of a jail sandbox: through NAT (slirp4netns) and through the
 * egress proxy of an allow-list, against the same download from the host (the floor). The
 * "internet" is a network namespace this program makes, joined to the host by a veth pair
 * on documentation addresses, where a small server sends 256 MiB per request.
 * Usage: bench_egress [path/to/warren]  (root; needs slirp4netns, nftables, curl). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"

#define SERVER_ADDR "203.0.113.20"
#define BODY_BYTES (256u << 20)
#define ROUNDS 3

/* Serves BODY_BYTES of zeros to every request, one connection at a time. */
static _Noreturn void serve(const char *netns)
{
    _cleanup_free_ char *path = wr_asprintf("/run/netns/%s", netns);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
        bench_die("joining the test internet");
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
    if (bind(ls, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(ls, 16) < 0)
        bench_die("listening on port 80");
    static char zeros[1 << 20];
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            continue;
        char req[8192];
        size_t got = 0;
        ssize_t r;
        while (got < sizeof(req) - 1 && (r = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
            got += (size_t)r;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        char head[128];
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.1 200 OK\r\nContent-Length: %u\r\nConnection: close\r\n\r\n",
                          BODY_BYTES);
        if (wr_write_all(c, head, (size_t)hl) == 0)
            for (size_t sent = 0; sent < BODY_BYTES; sent += sizeof(zeros))
                if (wr_write_all(c, zeros, sizeof(zeros)) < 0)
                    break;
        close(c);
    }
}

/* Best of ROUNDS of `curl ... url` run by a shell command prefix (the host's shell, or an
 * exec in a sandbox), in MB/s. */
static double host_speed(const char *url)
{
    double best = 0;
    for (int i = 0; i < ROUNDS; i++) {
        _cleanup_free_ char *cmd =
            wr_asprintf("curl -sf -o /dev/null -w '%%{speed_download}' %s", url);
        FILE *p = popen(cmd, "r");
        double v = 0;
        if (!p || fscanf(p, "%lf", &v) != 1)
            bench_die("curl from the host");
        pclose(p);
        best = v > best ? v : best;
    }
    return best / 1e6;
}

static double sandbox_speed(struct bench_server *s, const char *id, const char *url)
{
    double best = 0;
    for (int i = 0; i < ROUNDS; i++) {
        _cleanup_free_ char *cmd =
            wr_asprintf("curl -sf -o /dev/null -w '%%{speed_download}' %s", url);
        cJSON *args = bench_shell_args(id, cmd);
        cJSON_AddNumberToObject(args, "timeout_seconds", 600);
        cJSON *r = bench_tool(s, "sandbox_exec", args);
        const cJSON *out = cJSON_GetObjectItem(r, "stdout");
        double v = out ? atof(out->valuestring) : 0;
        if (v <= 0)
            bench_die("curl in the sandbox");
        best = v > best ? v : best;
        cJSON_Delete(r);
    }
    return best / 1e6;
}

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char netns[64], veth[16];
    snprintf(netns, sizeof(netns), "warren-bench-inet-%d", (int)getpid());
    snprintf(veth, sizeof(veth), "wb%dh", (int)getpid() % 100000);
    _cleanup_free_ char *setup = wr_asprintf(
        "ip netns add %1$s && ip link add %2$s type veth peer name eth0 netns %1$s && "
        "ip addr add 198.51.100.9/30 dev %2$s && ip link set %2$s up && "
        "ip -n %1$s addr add 198.51.100.10/30 dev eth0 && ip -n %1$s link set eth0 up && "
        "ip -n %1$s link set lo up && ip -n %1$s addr add " SERVER_ADDR "/32 dev lo && "
        "ip -n %1$s route add default via 198.51.100.9 && "
        "ip route add " SERVER_ADDR "/32 via 198.51.100.10",
        netns, veth);
    bench_run(setup);
    pid_t server = fork();
    if (server == 0)
        serve(netns);
    usleep(200 * 1000);

    char state[] = "/tmp/warren-bench-egress-XXXXXX";
    if (!mkdtemp(state))
        bench_die("mkdtemp");
    _cleanup_free_ char *hosts = wr_path_join(state, "hosts");
    const char table[] = SERVER_ADDR " bench.test\n";
    if (wr_write_file_replace(hosts, table, sizeof(table) - 1, 0644) < 0)
        bench_die("writing the hosts table");
    _cleanup_free_ char *hosts_arg = wr_asprintf("--egress-hosts=%s", hosts);
    struct bench_server s;
    bench_server_start(&s, warren, state, "jail", hosts_arg);
    bench_initialize(&s);

    cJSON *nat_args = cJSON_CreateObject();
    cJSON_AddBoolToObject(nat_args, "network", true);
    cJSON *nat = bench_tool(&s, "sandbox_create", nat_args);
    cJSON *allow_args = cJSON_Parse("{\"network\": {\"allow\": [\"bench.test\"]}}");
    cJSON *listed = bench_tool(&s, "sandbox_create", allow_args);

    double floor = host_speed("http://" SERVER_ADDR "/");
    double via_nat =
        sandbox_speed(&s, cJSON_GetObjectItem(nat, "id")->valuestring, "http://" SERVER_ADDR "/");
    double via_proxy =
        sandbox_speed(&s, cJSON_GetObjectItem(listed, "id")->valuestring, "http://bench.test/");
    printf("download of %u MiB, best of %d:\n", BODY_BYTES >> 20, ROUNDS);
    printf("  from the host (the floor)      %8.1f MB/s\n", floor);
    printf("  jail, NAT (slirp4netns)        %8.1f MB/s  %.2fx of the host\n", via_nat,
           via_nat / floor);
    printf("  jail, allow-list (egress proxy) %7.1f MB/s  %.2fx of the host\n", via_proxy,
           via_proxy / floor);

    cJSON_Delete(bench_destroy(&s, cJSON_GetObjectItem(nat, "id")->valuestring));
    cJSON_Delete(bench_destroy(&s, cJSON_GetObjectItem(listed, "id")->valuestring));
    cJSON_Delete(nat);
    cJSON_Delete(listed);
    bench_server_stop(&s);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    _cleanup_free_ char *teardown =
        wr_asprintf("ip route del " SERVER_ADDR "/32; ip link del %s; ip netns del %s; rm -rf %s",
                    veth, netns, state);
    bench_run(teardown);
    return 0;
}
