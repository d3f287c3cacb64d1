/* vmfs: the supervisor builds the shares in its own mount namespace (never the host's),
 * runs one virtiofsd per share, and takes everything with it when stopped or when its VMM
 * disconnects. Needs root and Debian's virtiofsd. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "vmm/backends/jail/cgroup.h"
#include "vmm/backends/vmfs.h"

static uv_loop_t *loop;
static char dir[] = "/tmp/warren-test-vmfs-XXXXXX";
static char *sandbox_dir;

struct started {
    bool done;
    pid_t pid;
    struct wr_error *err;
};

static void on_started(void *data, pid_t pid, struct wr_error *err)
{
    struct started *s = data;
    s->pid = pid;
    s->err = err;
    s->done = true;
}

static char *path(const char *name)
{
    return wr_path_join(sandbox_dir, name);
}

static void make_dir(const char *name)
{
    _cleanup_free_ char *p = path(name);
    ASSERT(wr_mkdir_p(p, 0755) == 0);
}

static void write_file(const char *name, const char *text)
{
    _cleanup_free_ char *p = path(name);
    ASSERT(wr_write_file_atomic(p, text, strlen(text), 0644) == 0);
}

static bool file_has(const char *file, const char *needle)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    return wr_read_file(file, 1 << 22, &text, &len) == 0 && strstr(text, needle) != NULL;
}

/* True while some process other than a zombie runs with `needle` in its argv. */
static bool process_running(const char *needle)
{
    DIR *proc = opendir("/proc");
    ASSERT(proc);
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(proc))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9' || atoi(de->d_name) == getpid())
            continue;
        _cleanup_free_ char *cmdline = wr_asprintf("/proc/%s/cmdline", de->d_name);
        _cleanup_free_ char *stat = wr_asprintf("/proc/%s/stat", de->d_name);
        _cleanup_free_ char *text = NULL, *stat_text = NULL;
        size_t len;
        if (wr_read_file(cmdline, 65536, &text, &len) < 0 || len == 0)
            continue;
        for (size_t i = 0; i < len; i++)
            text[i] = text[i] ? text[i] : ' ';
        bool zombie = wr_read_file(stat, 4096, &stat_text, &len) == 0 && strstr(stat_text, ") Z");
        found = !zombie && strstr(text, needle);
    }
    closedir(proc);
    return found;
}

static bool wait_gone(const char *needle)
{
    uint64_t deadline = wr_now_ms() + 5000;
    while (process_running(needle) && wr_now_ms() < deadline)
        usleep(20000);
    return !process_running(needle);
}

/* The spec's strings are built once and freed by free_spec at the end. */
static char *root_lowers[2], *ws_lowers[2];
static struct vmm_sandbox_spec spec_once;

static void free_spec(void)
{
    free(root_lowers[0]);
    free(ws_lowers[0]);
    char *owned[] = {(char *)spec_once.root_upper,   (char *)spec_once.root_work,
                     (char *)spec_once.ws_upper,     (char *)spec_once.ws_work,
                     (char *)spec_once.agent_socket, (char *)spec_once.log_path};
    for (size_t i = 0; i < WR_ARRAY_SIZE(owned); i++)
        free(owned[i]);
}

static struct vmm_sandbox_spec make_spec(void)
{
    if (spec_once.id)
        return spec_once;
    root_lowers[0] = path("image");
    ws_lowers[0] = path("repo");
    return spec_once = (struct vmm_sandbox_spec){
               .id = "0123456789abcdef",
               .dir = sandbox_dir,
               .image = "host",
               .root_lowers = (const char *const *)root_lowers,
               .root_upper = path("root/upper"),
               .root_work = path("root/work"),
               .ws_lowers = (const char *const *)ws_lowers,
               .ws_upper = path("workspace/upper"),
               .ws_work = path("workspace/work"),
               .agent_socket = path("agent.sock"),
               .guest_init_path = "/bin/true",
               .log_path = path("log"),
               .cpus = 1,
               .memory_bytes = 256 << 20,
               .hostname = "vmfs-test",
           };
}

static pid_t start(const struct vmm_sandbox_spec *spec)
{
    struct started s = {0};
    struct wr_error *err = NULL;
    ASSERT(vmm_vmfs_start(loop, spec, on_started, &s, &err) == 0);
    uint64_t deadline = wr_now_ms() + 30000;
    while (!s.done && wr_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    ASSERT(s.done);
    if (s.err)
        fprintf(stderr, "vmfs start: %s\n", s.err->msg);
    ASSERT(s.err == NULL && s.pid > 1);
    return s.pid;
}

static void check_mounts(pid_t pid)
{
    _cleanup_free_ char *theirs = wr_asprintf("/proc/%d/mountinfo", (int)pid);
    _cleanup_free_ char *root = path("vmfs-root");
    _cleanup_free_ char *workspace = path("vmfs-workspace");
    ASSERT(file_has(theirs, root) && file_has(theirs, workspace));
    ASSERT(!file_has("/proc/self/mountinfo", sandbox_dir));

    /* The overlays, seen through the supervisor's root: lowers below, uppers on top. */
    _cleanup_free_ char *repo_file = wr_asprintf("/proc/%d/root%s/README", (int)pid, workspace);
    ASSERT(file_has(repo_file, "from the repo"));
    _cleanup_free_ char *image_file = wr_asprintf("/proc/%d/root%s/image-file", (int)pid, root);
    ASSERT(file_has(image_file, "from the image"));
    _cleanup_free_ char *written = wr_asprintf("/proc/%d/root%s/new.txt", (int)pid, workspace);
    ASSERT(wr_write_file_atomic(written, "new", 3, 0644) == 0);
    _cleanup_free_ char *in_upper = path("workspace/upper/new.txt");
    _cleanup_free_ char *in_repo = path("repo/new.txt");
    ASSERT(access(in_upper, F_OK) == 0 && access(in_repo, F_OK) < 0);

    /* The host image: /usr copy-on-write over the host's, /etc/shadow masked. */
    _cleanup_free_ char *usr = wr_asprintf("/proc/%d/root%s/usr/bin/env", (int)pid, root);
    ASSERT(access(usr, X_OK) == 0);
    _cleanup_free_ char *shadow = wr_asprintf("/proc/%d/root%s/etc/shadow", (int)pid, root);
    struct stat st;
    if (access("/etc/shadow", F_OK) == 0)
        ASSERT(stat(shadow, &st) < 0 && errno == ENOENT);
    _cleanup_free_ char *in_usr = wr_asprintf("/proc/%d/root%s/usr/warren-x", (int)pid, root);
    ASSERT(wr_write_file_atomic(in_usr, "x", 1, 0644) == 0);
    _cleanup_free_ char *usr_upper = path("root/upper/usr/warren-x");
    ASSERT(access(usr_upper, F_OK) == 0 && access("/usr/warren-x", F_OK) < 0);
    _cleanup_free_ char *dpkg = wr_asprintf("/proc/%d/root%s/var/lib/dpkg/status", (int)pid, root);
    if (access("/var/lib/dpkg/status", F_OK) == 0)
        ASSERT(access(dpkg, R_OK) == 0);
}

static bool listening(const char *socket_path)
{
    return file_has("/proc/net/unix", socket_path);
}

static void test_start_stop(void)
{
    struct vmm_sandbox_spec spec = make_spec();
    pid_t pid = start(&spec);
    _cleanup_free_ char *root_sock = vmm_vmfs_socket(&spec, VMM_VMFS_TAG_ROOT);
    _cleanup_free_ char *ws_sock = vmm_vmfs_socket(&spec, VMM_VMFS_TAG_WORKSPACE);
    ASSERT(listening(root_sock) && listening(ws_sock));
    check_mounts(pid);
    /* The supervisor (and its virtiofsds) are in the sandbox's cgroup, the VMM's. */
    ASSERT(vmm_cgroup_contains(spec.id, pid));
    struct wr_error *err = NULL;
    ASSERT(vmm_vmfs_stop(&spec, pid, &err) == 0);
    ASSERT(wait_gone(sandbox_dir));
    ASSERT(access(root_sock, F_OK) < 0 && access(ws_sock, F_OK) < 0);
    ASSERT(!file_has("/proc/self/mountinfo", sandbox_dir));
    /* Stopping again (a dead sandbox, a stale pid) is fine. */
    ASSERT(vmm_vmfs_stop(&spec, pid, &err) == 0);
}

/* virtiofsd exits when its VMM goes away; the supervisor follows, stopping the other. */
static void test_vmm_disconnect(void)
{
    struct vmm_sandbox_spec spec = make_spec();
    pid_t pid = start(&spec);
    _cleanup_free_ char *root_sock = vmm_vmfs_socket(&spec, VMM_VMFS_TAG_ROOT);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, root_sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    usleep(100000);
    close(fd);
    ASSERT(wait_gone(sandbox_dir));
    _cleanup_free_ char *proc = wr_asprintf("/proc/%d/mountinfo", (int)pid);
    ASSERT(!file_has(proc, sandbox_dir));
    struct wr_error *err = NULL;
    ASSERT(vmm_vmfs_stop(&spec, pid, &err) == 0);
}

static void test_bad_spec(void)
{
    struct vmm_sandbox_spec spec = make_spec();
    spec.root_upper = "relative/upper";
    struct started s = {0};
    struct wr_error *err = NULL;
    ASSERT(vmm_vmfs_start(loop, &spec, on_started, &s, &err) < 0);
    ASSERT(err && strstr(err->msg, "root_upper"));
    wr_error_free(err);
    uv_run(loop, UV_RUN_NOWAIT);
    ASSERT(!s.done);
}

static void setup(void)
{
    ASSERT(mkdtemp(dir) != NULL);
    sandbox_dir = wr_path_join(dir, "sandbox");
    const char *dirs[] = {"image/usr",  "image/etc", "image/workspace", "repo",
                          "root/upper", "root/work", "workspace/upper", "workspace/work"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++)
        make_dir(dirs[i]);
    write_file("image/image-file", "from the image\n");
    write_file("repo/README", "from the repo\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "__vmfs"))
        return vmm_vmfs_main(argc, argv);
    if (geteuid() != 0)
        SKIP("vmfs needs root");
    if (access("/usr/lib/qemu/virtiofsd", X_OK) < 0)
        SKIP("/usr/lib/qemu/virtiofsd is not installed");
    if (!file_has("/proc/filesystems", "\toverlay\n"))
        SKIP("overlayfs is not available");
    signal(SIGPIPE, SIG_IGN);
    setup();
    loop = uv_default_loop();
    RUN(test_bad_spec);
    RUN(test_start_stop);
    RUN(test_vmm_disconnect);
    uv_run(loop, UV_RUN_DEFAULT);
    ASSERT(uv_loop_close(loop) == 0);
    struct wr_error *err = NULL;
    ASSERT(vmm_cgroup_destroy(make_spec().id, &err) == 0);
    free_spec();
    _cleanup_free_ char *rm = wr_asprintf("rm -rf %s", dir);
    ASSERT(system(rm) == 0);
    return 0;
}
