/* The confined VMM launcher (see confine.h).
 *
 * `warren __confine <dir>/vmm.json` goes through the jailer's steps in its order: validate,
 * close fds and clear the environment, rlimits, cgroup, the fds the VMM is handed, the
 * network helper (forked while still in the host's namespaces), unshare, then a child that
 * is PID 1 of the new PID namespace: mount namespace and pivot_root, devices, hostname,
 * privileges dropped, exec. The child reports a setup error on a CLOEXEC pipe, or closes
 * it by exec'ing; the launcher then prints the child's pid and exits. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "confine.h"
#include "hostview.h"
#include "net.h"
#include "vmm/backends/jail/cgroup.h"

#define SPEC_MAX_BYTES (256u << 10)
#define LIST_MAX 32
#define ARGS_MAX 256
#define LAUNCH_TIMEOUT_MS 20000
#define ROOT_NAME "vmm-root"
#define HIGH_FD 64    /* where the launcher parks fds before handing them over */
#define HANDED_MAX 16 /* VMM_CONFINE_FIRST_FD + HANDED_MAX + 1 stays below HIGH_FD */

uid_t vmm_confine_uid(const char *id)
{
    /* wr_id_valid ids are 16 hex digits; their first 6 are uniformly random. */
    char prefix[7] = {0};
    memcpy(prefix, id, 6);
    return (uid_t)(VMM_CONFINE_UID_BASE + strtoul(prefix, NULL, 16) % VMM_CONFINE_UID_SLOTS);
}

int vmm_confine_join_cgroup(const char *id, uint64_t guest_memory, unsigned cpus,
                            struct wr_error **err)
{
    struct vmm_cgroup_limits limits = {.memory_bytes = guest_memory + VMM_CONFINE_OVERHEAD_BYTES,
                                       .pids_max = VMM_CONFINE_PIDS_MAX,
                                       .cpus = cpus + 1};
    int r = vmm_cgroup_create(id, &limits, err);
    return r < 0 ? r : vmm_cgroup_add_pid(id, getpid(), err);
}

/* ---- the spec file -------------------------------------------------------------------- */

/* A parsed spec: the struct's pointers point into the owned arrays. */
struct loaded_spec {
    struct vmm_confine_spec spec;
    char *id, *dir, *log_path;
    char **files, **sockets, **dirs, **listen, **outputs, **argv;
};

static void loaded_spec_free(struct loaded_spec *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->dir);
    free(s->log_path);
    wr_strv_free(s->files);
    wr_strv_free(s->sockets);
    wr_strv_free(s->dirs);
    wr_strv_free(s->listen);
    wr_strv_free(s->outputs);
    wr_strv_free(s->argv);
    free(s);
}

static void add_strv(cJSON *obj, const char *key, const char *const *v)
{
    cJSON *array = cJSON_AddArrayToObject(obj, key);
    for (size_t i = 0; v && v[i]; i++)
        cJSON_AddItemToArray(array, cJSON_CreateString(v[i]));
}

static char *spec_to_json(const struct vmm_confine_spec *spec)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "id", spec->id);
    cJSON_AddStringToObject(obj, "dir", spec->dir);
    cJSON_AddStringToObject(obj, "log_path", spec->log_path);
    cJSON_AddNumberToObject(obj, "memory_bytes", (double)spec->memory_bytes);
    cJSON_AddNumberToObject(obj, "cpus", spec->cpus);
    cJSON_AddBoolToObject(obj, "network", spec->network);
    add_strv(obj, "files", spec->files);
    add_strv(obj, "sockets", spec->sockets);
    add_strv(obj, "dirs", spec->dirs);
    add_strv(obj, "listen", spec->listen);
    add_strv(obj, "outputs", spec->outputs);
    add_strv(obj, "argv", spec->argv);
    char *json = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return json;
}

static int get_string(const cJSON *obj, const char *key, char **ret, struct wr_error **err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(item))
        return wr_error_set(err, EINVAL, "vmm spec: %s is missing", key);
    *ret = wr_strdup(item->valuestring);
    return 0;
}

/* A list of absolute paths (or argv words, absolute = false) of at most max entries. */
static int get_strv(const cJSON *obj, const char *key, size_t max, bool absolute, char ***ret,
                    struct wr_error **err)
{
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(array) || (size_t)cJSON_GetArraySize(array) > max)
        return wr_error_set(err, EINVAL, "vmm spec: %s must be a list of at most %zu", key, max);
    size_t n = 0;
    *ret = wr_calloc(1, sizeof(char *));
    const cJSON *item;
    cJSON_ArrayForEach(item, array)
    {
        if (!cJSON_IsString(item) ||
            (absolute && (item->valuestring[0] != '/' || strstr(item->valuestring, "/../") ||
                          strlen(item->valuestring) >= PATH_MAX)))
            return wr_error_set(err, EINVAL, "vmm spec: a bad entry in %s", key);
        wr_strv_push(ret, &n, wr_strdup(item->valuestring));
    }
    return 0;
}

static int parse_spec(const cJSON *obj, struct loaded_spec *s, struct wr_error **err)
{
    const cJSON *memory = cJSON_GetObjectItemCaseSensitive(obj, "memory_bytes");
    const cJSON *cpus = cJSON_GetObjectItemCaseSensitive(obj, "cpus");
    if (get_string(obj, "id", &s->id, err) < 0 || get_string(obj, "dir", &s->dir, err) < 0 ||
        get_string(obj, "log_path", &s->log_path, err) < 0 ||
        get_strv(obj, "files", LIST_MAX, true, &s->files, err) < 0 ||
        get_strv(obj, "sockets", LIST_MAX, true, &s->sockets, err) < 0 ||
        get_strv(obj, "dirs", LIST_MAX, true, &s->dirs, err) < 0 ||
        get_strv(obj, "listen", LIST_MAX, true, &s->listen, err) < 0 ||
        get_strv(obj, "outputs", LIST_MAX, true, &s->outputs, err) < 0 ||
        get_strv(obj, "argv", ARGS_MAX, false, &s->argv, err) < 0)
        return -(*err)->status;
    if (!cJSON_IsNumber(memory) || memory->valuedouble < 0 || memory->valuedouble > 0x1p50 ||
        !cJSON_IsNumber(cpus) || cpus->valuedouble < 1 || cpus->valuedouble > 1024)
        return wr_error_set(err, EINVAL, "vmm spec: bad memory_bytes or cpus");
    if (wr_strv_len((const char *const *)s->listen) + wr_strv_len((const char *const *)s->outputs) >
        HANDED_MAX)
        return wr_error_set(err, EINVAL, "vmm spec: more than %d fds to hand over", HANDED_MAX);
    if (!wr_id_valid(s->id) || s->dir[0] != '/' || s->log_path[0] != '/' || !s->argv[0] ||
        s->argv[0][0] != '/')
        return wr_error_set(err, EINVAL, "vmm spec: bad id, dir, log_path or argv[0]");
    s->spec = (struct vmm_confine_spec){
        .id = s->id,
        .dir = s->dir,
        .log_path = s->log_path,
        .memory_bytes = (uint64_t)memory->valuedouble,
        .cpus = (unsigned)cpus->valuedouble,
        .network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "network")),
        .files = (const char *const *)s->files,
        .sockets = (const char *const *)s->sockets,
        .dirs = (const char *const *)s->dirs,
        .listen = (const char *const *)s->listen,
        .outputs = (const char *const *)s->outputs,
        .argv = (const char *const *)s->argv,
    };
    return 0;
}

static int load_spec(const char *path, struct loaded_spec **ret, struct wr_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = wr_read_file(path, SPEC_MAX_BYTES, &text, &len);
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", path);
    cJSON *obj = cJSON_ParseWithLength(text, len);
    if (!obj)
        return wr_error_set(err, EINVAL, "%s is not JSON", path);
    struct loaded_spec *s = wr_calloc(1, sizeof(*s));
    r = parse_spec(obj, s, err);
    cJSON_Delete(obj);
    if (r < 0) {
        loaded_spec_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

/* ---- the launcher: descriptors --------------------------------------------------------- */

struct launch {
    const struct vmm_confine_spec *spec;
    uid_t uid;
    int log_fd, null_fd;
    int *handed; /* the fds the VMM gets at VMM_CONFINE_FIRST_FD, ... (parked high) */
    size_t n_handed;
    int exit_fd; /* with network: slirp4netns ends when the VMM, its holder, is gone */
    int sync_fd[2];
};

static int park_high(int fd)
{
    if (fd < 0)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
    int saved = errno;
    close(fd);
    errno = saved;
    return high;
}

static int listen_socket(const char *path, struct wr_error **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return wr_error_set(err, ENAMETOOLONG, "socket path %s is too long", path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    _cleanup_close_ int fd = park_high(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd < 0)
        return wr_error_set_errno(err, errno, "creating a socket for %s", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return wr_error_set_errno(err, errno, "removing stale %s", path);
    /* 0600 root from birth: only warren connects; the VMM only accepts. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (r < 0 || listen(fd, 16) < 0)
        return wr_error_set_errno(err, errno, "listening on %s", path);
    return TAKE_FD(fd);
}

static int open_handed_fds(struct launch *l, struct wr_error **err)
{
    const struct vmm_confine_spec *spec = l->spec;
    size_t n = wr_strv_len(spec->listen) + wr_strv_len(spec->outputs);
    l->handed = wr_calloc(n + 1, sizeof(int));
    for (size_t i = 0; spec->listen[i]; i++) {
        int fd = listen_socket(spec->listen[i], err);
        if (fd < 0)
            return fd;
        l->handed[l->n_handed++] = fd;
    }
    for (size_t i = 0; spec->outputs[i]; i++) {
        int fd =
            park_high(open(spec->outputs[i],
                           O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600));
        if (fd < 0)
            return wr_error_set_errno(err, errno, "opening %s", spec->outputs[i]);
        l->handed[l->n_handed++] = fd;
    }
    return 0;
}

/* The VMM's uid may connect to the sockets and write in the directories; nothing else of
 * the sandbox directory is its. */
static int grant_paths(const struct launch *l, struct wr_error **err)
{
    const struct vmm_confine_spec *spec = l->spec;
    for (size_t i = 0; spec->sockets[i]; i++)
        if (fchownat(AT_FDCWD, spec->sockets[i], l->uid, l->uid, AT_SYMLINK_NOFOLLOW) < 0)
            return wr_error_set_errno(err, errno, "handing %s to the VMM", spec->sockets[i]);
    for (size_t i = 0; spec->dirs[i]; i++) {
        if (mkdir(spec->dirs[i], 0700) < 0 && errno != EEXIST)
            return wr_error_set_errno(err, errno, "creating %s", spec->dirs[i]);
        if (fchownat(AT_FDCWD, spec->dirs[i], l->uid, l->uid, AT_SYMLINK_NOFOLLOW) < 0)
            return wr_error_set_errno(err, errno, "handing %s to the VMM", spec->dirs[i]);
    }
    return 0;
}

static int open_fds(struct launch *l, struct wr_error **err)
{
    l->log_fd = park_high(
        open(l->spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
    if (l->log_fd < 0)
        return wr_error_set_errno(err, errno, "opening %s", l->spec->log_path);
    l->null_fd = park_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (l->null_fd < 0)
        return wr_error_set_errno(err, errno, "opening /dev/null");
    int r = open_handed_fds(l, err);
    if (r >= 0)
        r = grant_paths(l, err);
    if (r >= 0 && pipe2(l->sync_fd, O_CLOEXEC) < 0)
        r = wr_error_set_errno(err, errno, "creating the setup pipe");
    if (r >= 0) {
        l->sync_fd[0] = park_high(l->sync_fd[0]);
        l->sync_fd[1] = park_high(l->sync_fd[1]);
    }
    return r;
}

/* ---- the child: its root ---------------------------------------------------------------- */

/* Creates every missing directory of path's parent under root (0755, root-owned). */
static int make_parents(const char *root, const char *path, struct wr_error **err)
{
    _cleanup_free_ char *inside = wr_asprintf("%s%s", root, path);
    char *slash = strrchr(inside, '/');
    *slash = 0;
    int r = wr_mkdir_p(inside, 0755);
    if (r < 0)
        return wr_error_set_errno(err, -r, "creating %s", inside);
    return 0;
}

/* Shows host path at the same path under root: a bind (read-only with readonly), onto an
 * empty file or directory made for it. */
static int show_path(const char *root, const char *path, bool readonly, unsigned long flags,
                     struct wr_error **err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return wr_error_set_errno(err, errno, "%s", path);
    int r = make_parents(root, path, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *target = wr_asprintf("%s%s", root, path);
    if (S_ISDIR(st.st_mode) ? mkdir(target, 0755) < 0 && errno != EEXIST
                            : mknod(target, S_IFREG | 0644, 0) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", target);
    if (readonly)
        return vmm_bind_readonly(path, target, flags, err);
    r = vmm_mount(path, target, NULL, MS_BIND, NULL, err);
    return r < 0 ? r : vmm_mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL, err);
}

/* /usr, /bin, /sbin, /lib*: the host's, read-only; a merged-/usr symlink is copied. */
static int show_system_dirs(const char *root, struct wr_error **err)
{
    static const char *const dirs[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                       "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++) {
        struct stat st;
        if (lstat(dirs[i], &st) < 0)
            continue;
        _cleanup_free_ char *target = wr_asprintf("%s%s", root, dirs[i]);
        if (S_ISLNK(st.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(dirs[i], link, sizeof(link) - 1);
            if (n < 0)
                return wr_error_set_errno(err, errno, "reading %s", dirs[i]);
            link[n] = 0;
            if (symlink(link, target) < 0)
                return wr_error_set_errno(err, errno, "creating %s", target);
        } else if (S_ISDIR(st.st_mode)) {
            int r = show_path(root, dirs[i], true, MS_NOSUID | MS_NODEV, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* /etc holds the resolver address of the VMM's network namespace and the loader's cache. */
static int make_etc(const char *root, struct wr_error **err)
{
    _cleanup_free_ char *etc = wr_path_join(root, "etc");
    if (mkdir(etc, 0755) < 0)
        return wr_error_set_errno(err, errno, "creating %s", etc);
    _cleanup_free_ char *resolv = wr_path_join(etc, "resolv.conf");
    static const char text[] = "nameserver " VMM_NET_DNS "\n";
    _cleanup_close_ int fd = open(resolv, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || wr_write_all(fd, text, sizeof(text) - 1) < 0)
        return wr_error_set_errno(err, errno, "writing %s", resolv);
    if (access("/etc/ld.so.cache", F_OK) == 0)
        return show_path(root, "/etc/ld.so.cache", true, MS_NOSUID | MS_NODEV, err);
    return 0;
}

/* Device nodes made here, not binds: /dev/kvm is then the VMM's own (0600, its uid). */
static int make_dev(const char *root, uid_t uid, struct wr_error **err)
{
    static const char *const shared[] = {"null", "zero", "full", "random", "urandom"};
    _cleanup_free_ char *dev = wr_path_join(root, "dev");
    if (mkdir(dev, 0755) < 0)
        return wr_error_set_errno(err, errno, "creating %s", dev);
    for (size_t i = 0; i < WR_ARRAY_SIZE(shared) + 1; i++) {
        bool kvm = i == WR_ARRAY_SIZE(shared);
        const char *name = kvm ? "kvm" : shared[i];
        _cleanup_free_ char *host = wr_asprintf("/dev/%s", name);
        _cleanup_free_ char *node = wr_path_join(dev, name);
        struct stat st;
        if (stat(host, &st) < 0 || !S_ISCHR(st.st_mode)) {
            if (kvm)
                continue; /* TCG: no KVM to hand over */
            return wr_error_set(err, ENODEV, "%s is not a character device", host);
        }
        if (mknod(node, S_IFCHR | (kvm ? 0600 : 0666), st.st_rdev) < 0 ||
            chmod(node, kvm ? 0600 : 0666) < 0 || (kvm && chown(node, uid, uid) < 0))
            return wr_error_set_errno(err, errno, "creating %s", node);
    }
    return 0;
}

static int show_spec_paths(const struct launch *l, const char *root, struct wr_error **err)
{
    const struct vmm_confine_spec *spec = l->spec;
    unsigned long data_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    int r = 0;
    for (size_t i = 0; r >= 0 && spec->files[i]; i++)
        r = show_path(root, spec->files[i], true, data_flags, err);
    for (size_t i = 0; r >= 0 && spec->sockets[i]; i++)
        r = show_path(root, spec->sockets[i], false, data_flags, err);
    for (size_t i = 0; r >= 0 && spec->dirs[i]; i++)
        r = show_path(root, spec->dirs[i], false, data_flags, err);
    return r;
}

static int build_root(const struct launch *l, const char *root, struct wr_error **err)
{
    if (mkdir(root, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", root);
    int r = vmm_mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=0755,size=1m,nr_inodes=4096", err);
    if (r >= 0)
        r = show_system_dirs(root, err);
    if (r >= 0)
        r = make_etc(root, err);
    if (r >= 0)
        r = make_dev(root, l->uid, err);
    _cleanup_free_ char *proc = wr_path_join(root, "proc");
    if (r >= 0 && mkdir(proc, 0555) < 0)
        r = wr_error_set_errno(err, errno, "creating %s", proc);
    /* This process is PID 1 of the new PID namespace: the proc shows that namespace. */
    if (r >= 0)
        r = vmm_mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
    if (r >= 0)
        r = show_spec_paths(l, root, err);
    /* Nothing in the root is written once it is built. */
    if (r >= 0)
        r = vmm_mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL, err);
    return r;
}

/* pivot_root(".", ".") and a lazy unmount of the old root (the jailer's way). */
static int enter_root(const char *root, struct wr_error **err)
{
    _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fchdir(fd) < 0)
        return wr_error_set_errno(err, errno, "entering %s", root);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return wr_error_set_errno(err, errno, "pivot_root to %s", root);
    if (umount2(".", MNT_DETACH) < 0)
        return wr_error_set_errno(err, errno, "detaching the old root");
    if (chdir("/") < 0)
        return wr_error_set_errno(err, errno, "chdir /");
    return 0;
}

/* ---- the child: identity and exec --------------------------------------------------------- */

/* 0-2 become /dev/null and the log, the handed fds VMM_CONFINE_FIRST_FD and up, then the
 * exit pipe; dup2 clears O_CLOEXEC on the copies, everything else stays CLOEXEC. */
static int hand_over_fds(const struct launch *l, struct wr_error **err)
{
    if (dup2(l->null_fd, 0) < 0 || dup2(l->log_fd, 1) < 0 || dup2(l->log_fd, 2) < 0)
        return wr_error_set_errno(err, errno, "redirecting the VMM's output");
    int next = VMM_CONFINE_FIRST_FD;
    for (size_t i = 0; i < l->n_handed; i++, next++)
        if (dup2(l->handed[i], next) < 0)
            return wr_error_set_errno(err, errno, "handing fd %d to the VMM", next);
    if (l->exit_fd >= 0 && dup2(l->exit_fd, next) < 0)
        return wr_error_set_errno(err, errno, "handing the exit pipe to the VMM");
    return 0;
}

/* Bounding and ambient sets emptied while still root, then the uid change clears the
 * permitted and effective sets (no SECBIT_KEEP_CAPS), and capset clears the inheritable. */
static int drop_privileges(uid_t uid, struct wr_error **err)
{
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return wr_error_set_errno(err, errno, "dropping capability %d", cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return wr_error_set_errno(err, errno, "clearing the ambient capabilities");
    if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
        return wr_error_set_errno(err, errno, "switching to uid %u", (unsigned)uid);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2] = {{0}};
    if (syscall(SYS_capset, &header, data) < 0)
        return wr_error_set_errno(err, errno, "clearing the capabilities");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return wr_error_set_errno(err, errno, "setting no_new_privs");
    return 0;
}

static int child_setup(const struct launch *l, struct wr_error **err)
{
    const struct vmm_confine_spec *spec = l->spec;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return wr_error_set_errno(err, errno, "making mounts private");
    _cleanup_free_ char *root = wr_path_join(spec->dir, ROOT_NAME);
    int r = build_root(l, root, err);
    if (r < 0)
        return r;
    static const char hostname[] = "vmm";
    if (sethostname(hostname, sizeof(hostname) - 1) < 0)
        return wr_error_set_errno(err, errno, "setting the hostname");
    struct rlimit nproc = {VMM_CONFINE_PIDS_MAX, VMM_CONFINE_PIDS_MAX};
    if (setrlimit(RLIMIT_NPROC, &nproc) < 0)
        return wr_error_set_errno(err, errno, "setting RLIMIT_NPROC");
    if ((r = enter_root(root, err)) < 0 || (r = hand_over_fds(l, err)) < 0 ||
        (r = drop_privileges(l->uid, err)) < 0)
        return r;
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(spec->argv[0], (char *const *)spec->argv, envp);
    return wr_error_set_errno(err, errno, "executing %s", spec->argv[0]);
}

static _Noreturn void run_child(const struct launch *l)
{
    close(l->sync_fd[0]);
    (void)dup2(l->log_fd, 1);
    (void)dup2(l->log_fd, 2);
    _cleanup_error_ struct wr_error *err = NULL;
    (void)child_setup(l, &err);
    const char *msg = err ? err->msg : "VMM setup failed";
    (void)wr_write_all(l->sync_fd[1], msg, strlen(msg));
    _exit(1);
}

/* ---- the launcher ----------------------------------------------------------------------- */

/* NOFILE and CORE hold for the launcher's helpers too; NPROC is per uid, so it is set in
 * the child only, where it counts the VMM's uid (root's helpers would count the host's). */
static void set_rlimits(void)
{
    struct rlimit nofile = {VMM_CONFINE_NOFILE, VMM_CONFINE_NOFILE};
    struct rlimit core = {0, 0};
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
    (void)setrlimit(RLIMIT_CORE, &core);
}

static int wait_for_child(struct launch *l, pid_t child, struct wr_error **err)
{
    close(TAKE_FD(l->sync_fd[1]));
    return wr_child_setup_wait(l->sync_fd[0], child, "the VMM", err);
}

/* The namespaces the child is born into. The network helper, forked before, stays in the
 * host's and attaches slirp4netns to the new network namespace (this process's) before
 * the VMM runs. */
static int enter_namespaces(struct launch *l, struct wr_error **err)
{
    struct vmm_net_helper net = {0};
    int exit_pipe[2] = {-1, -1};
    if (l->spec->network) {
        if (pipe2(exit_pipe, O_CLOEXEC) < 0)
            return wr_error_set_errno(err, errno, "creating a pipe");
        l->exit_fd = park_high(exit_pipe[1]);
        const int keep[] = {l->log_fd};
        int r = vmm_net_helper_start(&net, l->log_fd, exit_pipe[0], l->spec->dir, keep, 1, err);
        close(exit_pipe[0]);
        if (r < 0)
            return r;
    }
    int flags =
        CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP;
    int r = unshare(flags) < 0 ? wr_error_set_errno(err, errno, "creating namespaces") : 0;
    if (r >= 0)
        r = vmm_net_loopback_up(err);
    if (l->spec->network) {
        int nr = vmm_net_helper_finish(&net, r >= 0 ? getpid() : -1, r >= 0 ? err : NULL);
        if (r >= 0)
            r = nr;
    }
    return r;
}

static int launch(struct launch *l, pid_t *ret_pid, struct wr_error **err)
{
    set_rlimits();
    int r = open_fds(l, err);
    if (r >= 0)
        r = vmm_confine_join_cgroup(l->spec->id, l->spec->memory_bytes, l->spec->cpus, err);
    if (r >= 0)
        r = enter_namespaces(l, err);
    if (r < 0)
        return r;
    pid_t child = fork();
    if (child < 0)
        return wr_error_set_errno(err, errno, "forking the VMM");
    if (child == 0)
        run_child(l);
    r = wait_for_child(l, child, err);
    if (r < 0)
        return r;
    *ret_pid = child;
    return 0;
}

static _Noreturn void launcher_exit(int status)
{
    fflush(stdout);
    fflush(stderr);
    _exit(status);
}

int vmm_confine_main(int argc, char **argv)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    clearenv();
    umask(022);
    if (argc != 3 || strcmp(argv[1], "__confine") != 0) {
        fprintf(stderr, "usage: warren __confine SPEC.json\n");
        return 2;
    }
    struct loaded_spec *loaded = NULL;
    _cleanup_error_ struct wr_error *err = NULL;
    pid_t pid = 0;
    int r = load_spec(argv[2], &loaded, &err);
    if (r >= 0) {
        struct launch l = {.spec = &loaded->spec,
                           .uid = vmm_confine_uid(loaded->id),
                           .log_fd = -1,
                           .null_fd = -1,
                           .exit_fd = -1,
                           .sync_fd = {-1, -1}};
        r = launch(&l, &pid, &err);
        free(l.handed);
    }
    loaded_spec_free(loaded);
    if (r < 0) {
        fprintf(stderr, "%s\n", err ? err->msg : "VMM setup failed");
        launcher_exit(1);
    }
    printf("%d\n", (int)pid);
    launcher_exit(ferror(stdout) ? 1 : 0);
}

/* ---- start (server side) -------------------------------------------------------------------- */

int vmm_confine_start(uv_loop_t *loop, const struct vmm_confine_spec *spec, vmm_helper_cb cb,
                      void *data, struct wr_error **err)
{
    _cleanup_free_ char *json = spec_to_json(spec);
    _cleanup_free_ char *path = wr_path_join(spec->dir, "vmm.json");
    int r = wr_write_file_atomic(path, json, strlen(json), 0600);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s", path);
    return vmm_helper_run(loop, "__confine", path, LAUNCH_TIMEOUT_MS, "the VMM launcher", cb, data,
                          err);
}
