/* Benchmark of OCI images on the jail backend, through the real MCP stdio server, against
 * a registry on loopback (Debian's docker-registry) serving an image built here (an
 * mmdebstrap minbase root, made an OCI image with umoci, pushed with skopeo):
 *   - image_pull throughput, against `skopeo copy` + `umoci unpack` run by hand on the same
 *     image (the floor);
 *   - sandbox_create on the pulled image against the host image (target: within 1.2x).
 * Usage: bench_images [path/to/warren]  (root; skopeo, umoci, bsdtar, docker-registry,
 * mmdebstrap installed). */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"

#define CREATES 15

static double run_ms(const char *command)
{
    uint64_t t0 = wr_now_ns();
    bench_run(command);
    return (double)(wr_now_ns() - t0) / 1e6;
}

static pid_t start_registry(const char *dir, int port)
{
    _cleanup_free_ char *config = wr_asprintf("%s/registry.yml", dir);
    _cleanup_free_ char *text =
        wr_asprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    "    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%d\n",
                    dir, port);
    if (wr_write_file_atomic(config, text, strlen(text), 0644) < 0)
        bench_die("writing the registry config");
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("docker-registry", "docker-registry", "serve", config, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The image: a Debian minbase root as one layer. */
static void build_image(const char *dir, const char *ref)
{
    _cleanup_free_ char *cmd = wr_asprintf(
        "set -e; cd %s; mmdebstrap --variant=minbase --quiet bookworm root.tar; "
        "umoci init --layout L; umoci new --image L:t; umoci unpack --image L:t B; "
        "tar -xf root.tar -C B/rootfs; umoci repack --image L:t B; rm -rf B root.tar; "
        "for i in $(seq 1 40); do skopeo copy -q --dest-tls-verify=false oci:L:t docker://%s "
        "&& exit 0; sleep 0.25; done; exit 1",
        dir, ref);
    bench_run(cmd);
}

static double create_p50(struct bench_server *s, const char *image)
{
    uint64_t t[CREATES];
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "image", image);
    bench_create_times(s, a, t, CREATES);
    cJSON_Delete(a);
    return (double)bench_percentile(t, CREATES, 0.5) / 1e6;
}

int main(int argc, char **argv)
{
    const char *warren = argc > 1 ? argv[1] : "build/warren";
    char dir[] = "/tmp/warren-bench-images-XXXXXX";
    if (!mkdtemp(dir))
        bench_die("mkdtemp");
    int port = 20000 + (int)(getpid() % 20000);
    pid_t registry = start_registry(dir, port);
    _cleanup_free_ char *ref = wr_asprintf("127.0.0.1:%d/bench/debian:1", port);
    build_image(dir, ref);

    /* The floor: the same tools by hand. */
    _cleanup_free_ char *by_hand =
        wr_asprintf("cd %s && skopeo copy -q --src-tls-verify=false docker://%s oci:H:t && "
                    "umoci unpack --image H:t U >/dev/null",
                    dir, ref);
    double hand_ms = run_ms(by_hand);

    _cleanup_free_ char *state = wr_asprintf("%s/state", dir);
    _cleanup_free_ char *insecure = wr_asprintf("--insecure-registry=127.0.0.1:%d", port);
    struct bench_server s;
    bench_server_start(&s, warren, state, "jail", insecure);
    bench_initialize(&s);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "ref", ref);
    uint64_t t0 = wr_now_ns();
    cJSON *image = bench_tool(&s, "image_pull", a);
    double pull_ms = (double)(wr_now_ns() - t0) / 1e6;
    double mb = cJSON_GetObjectItem(image, "size_bytes")->valuedouble / 1e6;
    printf("image_pull of a %.0f MB image from a loopback registry: %.0f ms, %.1f MB/s; "
           "skopeo copy + umoci unpack by hand: %.0f ms, %.1f MB/s; ratio %.2fx\n",
           mb, pull_ms, mb / (pull_ms / 1e3), hand_ms, mb / (hand_ms / 1e3), pull_ms / hand_ms);
    double on_image = create_p50(&s, cJSON_GetObjectItem(image, "image")->valuestring);
    double on_host = create_p50(&s, "host");
    printf("sandbox_create p50: pulled image %.1f ms, host image %.1f ms; ratio %.2fx "
           "(target <= 1.2x)\n",
           on_image, on_host, on_image / on_host);
    cJSON_Delete(image);
    kill(registry, SIGTERM);
    waitpid(registry, NULL, 0);
    _cleanup_free_ char *cleanup = wr_asprintf("rm -rf %s", dir);
    bench_run(cleanup);
    return 0;
}
