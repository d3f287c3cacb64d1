/* The Cloud Hypervisor API driver.
 *
 * Without arguments (as ctest runs it): checks in-process that every request body
 * vmm/backends/ch/ch-api.c builds is JSON with the fields CH needs (CH-NOTES.md's minimal
 * vm.create), and that bad input is refused.
 *
 * With `--socket PATH --sequence [--fail-at NAME]`: drives the real client in
 * vmm/backends/ch/ch-api.c against the API server at PATH (tests/integration/lib/ch-standin.mjs, or
 * a real cloud-hypervisor) through a whole VM life: ping, create, boot, info, pause, resize,
 * resume, snapshot, shutdown, vmm.shutdown. One line per step on stdout:
 *     step vm.boot ok 204
 *     step vm.info ok 200 state=Running memory_actual_size=536870912
 *     step vm.boot error cloud-hypervisor: vm.boot: 500: Error booting VM: ...
 * Exit 0 when the sequence ran through, or, with --fail-at NAME, when it stopped with an
 * error at exactly the step NAME; 1 otherwise.
 *
 * `--body NAME` prints the body of call NAME for the sample sandbox (for schema checks). */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "vmm/backends/ch/ch-api.h"

#define STEP_TIMEOUT_MS 5000

static const char *const root_lowers[] = {"/var/lib/warren/images/host", NULL};
static const char *const ws_lowers[] = {NULL};

static struct vmm_sandbox_spec sample_spec(void)
{
    return (struct vmm_sandbox_spec){
        .id = "0123456789abcdef",
        .dir = "/var/lib/warren/sandboxes/0123456789abcdef",
        .image = "host",
        .root_lowers = root_lowers,
        .root_upper = "/var/lib/warren/sandboxes/0123456789abcdef/root/upper",
        .ws_lowers = ws_lowers,
        .log_path = "/var/lib/warren/sandboxes/0123456789abcdef/log",
        .cpus = 2,
        .memory_bytes = 512ull << 20,
        .hostname = "agent-7",
        .kernel_path = "/var/lib/warren/guest/vmlinuz",
        .initrd_path = "/var/lib/warren/guest/initrd.img",
    };
}

static const char *snapshot_url = "file:///var/lib/warren/snapshots/s1";

static char *body_of(enum ch_api_op op, const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    struct ch_api_args args = {.spec = spec, .desired_balloon = 256ull << 20, .url = snapshot_url};
    return ch_api_body(op, &args, err);
}

/* ---- in-process checks ------------------------------------------------------------------ */

static const cJSON *field(const cJSON *o, const char *path)
{
    char copy[128];
    snprintf(copy, sizeof(copy), "%s", path);
    char *save = NULL;
    for (char *name = strtok_r(copy, ".", &save); name && o; name = strtok_r(NULL, ".", &save))
        o = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!o)
        fprintf(stderr, "missing field %s\n", path);
    ASSERT(o);
    return o;
}

static void expect_number(const cJSON *o, const char *path, double want)
{
    const cJSON *f = field(o, path);
    ASSERT(cJSON_IsNumber(f) && f->valuedouble == want);
}

static void expect_string(const cJSON *o, const char *path, const char *want)
{
    const cJSON *f = field(o, path);
    ASSERT(cJSON_IsString(f));
    ASSERT_STREQ(f->valuestring, want);
}

static void check_fs(const cJSON *fs, int i, const char *tag)
{
    const cJSON *share = cJSON_GetArrayItem(fs, i);
    expect_string(share, "tag", tag);
    _cleanup_free_ char *socket =
        wr_asprintf("/var/lib/warren/sandboxes/0123456789abcdef/fs-%s.sock", tag);
    expect_string(share, "socket", socket);
    expect_number(share, "num_queues", 1);
    expect_number(share, "queue_size", 1024);
}

static void test_vm_create_body(void)
{
    struct vmm_sandbox_spec spec = sample_spec();
    _cleanup_free_ char *body = body_of(CH_VM_CREATE, &spec, NULL);
    cJSON *c = cJSON_Parse(body);
    ASSERT(c);
    expect_number(c, "cpus.boot_vcpus", 2);
    expect_number(c, "cpus.max_vcpus", 2);
    expect_number(c, "memory.size", 536870912);
    ASSERT(cJSON_IsTrue(field(c, "memory.shared")));
    expect_string(c, "payload.kernel", "/var/lib/warren/guest/vmlinuz");
    expect_string(c, "payload.initramfs", "/var/lib/warren/guest/initrd.img");
    expect_string(c, "payload.cmdline",
                  "console=ttyS0 panic=-1 quiet warren.vsock=1024 warren.hostname=agent-7 "
                  "warren.root=root warren.workspace=workspace");
    const cJSON *fs = field(c, "fs");
    ASSERT_EQ(cJSON_GetArraySize(fs), 2);
    check_fs(fs, 0, "root");
    check_fs(fs, 1, "workspace");
    expect_number(c, "balloon.size", 0);
    ASSERT(cJSON_IsTrue(field(c, "balloon.deflate_on_oom")));
    ASSERT(cJSON_IsTrue(field(c, "balloon.free_page_reporting")));
    expect_number(c, "vsock.cid", 3); /* spec cid 0: the first usable one */
    expect_string(c, "vsock.socket", "/var/lib/warren/sandboxes/0123456789abcdef/vmm/vsock.sock");
    expect_string(c, "serial.mode", "File");
    expect_string(c, "serial.file", "/var/lib/warren/sandboxes/0123456789abcdef/vmm/serial.log");
    expect_string(c, "console.mode", "Off");
    cJSON_Delete(c);
}

static void test_other_bodies(void)
{
    struct ch_api_args args = {.desired_balloon = (1ull << 60) + 1, .url = snapshot_url};
    _cleanup_free_ char *resize = ch_api_body(CH_VM_RESIZE, &args, NULL);
    ASSERT_STREQ(resize, "{\"desired_balloon\":1152921504606846977}"); /* exact past 2^53 */
    _cleanup_free_ char *snapshot = ch_api_body(CH_VM_SNAPSHOT, &args, NULL);
    ASSERT_STREQ(snapshot, "{\"destination_url\":\"file:///var/lib/warren/snapshots/s1\"}");
    _cleanup_free_ char *restore = ch_api_body(CH_VM_RESTORE, &args, NULL);
    ASSERT_STREQ(restore, "{\"source_url\":\"file:///var/lib/warren/snapshots/s1\"}");
    for (int op = 0; op < CH_API_OP_COUNT; op++) {
        struct vmm_sandbox_spec spec = sample_spec();
        _cleanup_free_ char *body = body_of(op, &spec, NULL);
        ASSERT_EQ(body != NULL, ch_api_op_has_body(op));
        cJSON *json = body ? cJSON_Parse(body) : NULL;
        ASSERT(!body || cJSON_IsObject(json));
        cJSON_Delete(json);
    }
}

static void expect_refused(enum ch_api_op op, const struct ch_api_args *args, const char *why)
{
    struct wr_error *err = NULL;
    char *body = ch_api_body(op, args, &err);
    ASSERT(!body && err && err->status == EINVAL);
    ASSERT(strstr(err->msg, why) != NULL);
    wr_error_free(err);
}

static void test_refused(void)
{
    struct vmm_sandbox_spec spec = sample_spec();
    spec.kernel_path = NULL;
    expect_refused(CH_VM_CREATE, &(struct ch_api_args){.spec = &spec}, "kernel");
    spec = sample_spec();
    spec.vsock_cid = UINT32_MAX;
    expect_refused(CH_VM_CREATE, &(struct ch_api_args){.spec = &spec}, "reserved");
    spec.vsock_cid = 2;
    expect_refused(CH_VM_CREATE, &(struct ch_api_args){.spec = &spec}, "reserved");
    spec = sample_spec();
    spec.memory_bytes = 0;
    expect_refused(CH_VM_CREATE, &(struct ch_api_args){.spec = &spec}, "memory");
    expect_refused(CH_VM_SNAPSHOT, &(struct ch_api_args){.url = "/tmp/x"}, "file://");
    expect_refused(CH_VM_RESTORE, &(struct ch_api_args){0}, "file://");
}

/* ---- the sequence against a server ------------------------------------------------------ */

struct step_result {
    bool done;
    int status;
    char *body;
    size_t len;
    struct wr_error *err;
};

static void on_reply(void *data, int status, const char *body, size_t len, struct wr_error *err)
{
    struct step_result *r = data;
    r->done = true;
    r->status = status;
    r->body = body ? wr_strndup(body, len) : NULL;
    r->len = len;
    r->err = err;
}

static const char *const sequence[] = {
    "vmm.ping",    "vm.create", "vm.boot",   "vm.info",     "vm.pause",
    "vm.info",     "vm.resize", "vm.resume", "vm.info",     "vm.pause",
    "vm.snapshot", "vm.resume", "vm.info",   "vm.shutdown", "vmm.shutdown",
};

static int op_by_name(const char *name)
{
    for (int op = 0; op < CH_API_OP_COUNT; op++)
        if (strcmp(ch_api_op_name(op), name) == 0)
            return op;
    return -1;
}

static void print_result(const char *name, const struct step_result *r)
{
    if (r->err) {
        printf("step %s error %s\n", name, r->err->msg);
        return;
    }
    printf("step %s ok %d", name, r->status);
    struct ch_vm_info info;
    if (strcmp(name, "vm.info") == 0 && ch_api_parse_vm_info(r->body, r->len, &info, NULL) == 0)
        printf(" state=%s memory_actual_size=%llu", info.state,
               (unsigned long long)info.memory_actual_size);
    printf("\n");
}

/* Runs one call to its end on the loop. Returns false when it failed. */
static bool run_step(uv_loop_t *loop, struct ch_api *api, const char *name)
{
    int op = op_by_name(name);
    struct vmm_sandbox_spec spec = sample_spec();
    _cleanup_free_ char *body = body_of(op, &spec, NULL);
    struct step_result r = {0};
    struct wr_error *err = NULL;
    if (ch_api_call(api, op, body, STEP_TIMEOUT_MS, on_reply, &r, &err) < 0)
        r.err = err, r.done = true;
    while (!r.done)
        uv_run(loop, UV_RUN_ONCE);
    print_result(name, &r);
    fflush(stdout);
    bool ok = r.err == NULL;
    wr_error_free(r.err);
    free(r.body);
    return ok;
}

static int run_sequence(const char *socket_path, const char *fail_at)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ch_api *api = ch_api_new(&loop, socket_path);
    const char *failed = NULL;
    for (size_t i = 0; i < WR_ARRAY_SIZE(sequence) && !failed; i++)
        if (!run_step(&loop, api, sequence[i]))
            failed = sequence[i];
    ch_api_close(api);
    uv_run(&loop, UV_RUN_DEFAULT);
    int loop_closed = uv_loop_close(&loop);
    printf("sequence %s%s\n", failed ? "stopped at " : "complete", failed ? failed : "");
    if (loop_closed != 0)
        printf("loop not closed: handles left\n");
    bool expected = fail_at ? failed && strcmp(failed, fail_at) == 0 : !failed;
    return expected && loop_closed == 0 ? 0 : 1;
}

static int print_body(const char *name)
{
    int op = op_by_name(name);
    struct vmm_sandbox_spec spec = sample_spec();
    struct wr_error *err = NULL;
    _cleanup_free_ char *body = op >= 0 ? body_of(op, &spec, &err) : NULL;
    if (!body) {
        fprintf(stderr, "no body for %s%s%s\n", name, err ? ": " : "", err ? err->msg : "");
        wr_error_free(err);
        return 1;
    }
    printf("%s\n", body);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *socket_path = NULL, *fail_at = NULL, *body = NULL;
    bool sequence_mode = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            socket_path = argv[++i];
        else if (strcmp(argv[i], "--fail-at") == 0 && i + 1 < argc)
            fail_at = argv[++i];
        else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc)
            body = argv[++i];
        else if (strcmp(argv[i], "--sequence") == 0)
            sequence_mode = true;
        else {
            fprintf(stderr, "usage: %s [--body NAME | --socket PATH --sequence [--fail-at NAME]]\n",
                    argv[0]);
            return 2;
        }
    }
    if (body)
        return print_body(body);
    if (sequence_mode && socket_path)
        return run_sequence(socket_path, fail_at);
    RUN(test_vm_create_body);
    RUN(test_other_bodies);
    RUN(test_refused);
    return 0;
}
