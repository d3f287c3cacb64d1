/* The jailer: `warren __jail <spec.json>` builds one sandbox and execs guest-init as its
 * PID 1 (the contract is in jailer.h). It runs as a fresh exec'd process, not a fork of
 * the threaded server, so that every step below happens in a single-threaded process
 * with nothing inherited but fds 0-2.
 *
 * The order follows Firecracker's jailer and bubblewrap: validate the spec, close fds,
 * clear the environment, set rlimits, join the cgroup, unshare the namespaces, fork the
 * sandbox's PID 1, build its root (overlays, read-only host binds with secrets masked,
 * /proc, /sys, /dev, /tmp), pivot_root, drop capabilities, no_new_privs, seccomp, exec.
 *
 * The parent learns the outcome through a CLOEXEC pipe: the child writes an error message
 * into it and exits, or execs guest-init, which closes the pipe with nothing written. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "jailer.h"
#include "vmm/backends/hostview.h"
#include "vmm/backends/net.h"
#include "vmm/disk.h"

#define SPEC_MAX_BYTES (1u << 20)
#define LAYERS_MAX 128
#define MEMORY_MIN (16ull << 20)
#define MEMORY_MAX (1ull << 50)
#define CPUS_MAX 1024
#define PIDS_MAX 4096
#define NOFILE_MAX 65536

/* ---- the spec file ------------------------------------------------------------------- */

static void cjson_deletep(cJSON **json)
{
    cJSON_Delete(*json);
}
#define _cleanup_json_ _cleanup_(cjson_deletep)

static cJSON *strv_to_json(const char *const *v)
{
    cJSON *array = cJSON_CreateArray();
    for (size_t i = 0; v && v[i]; i++)
        cJSON_AddItemToArray(array, cJSON_CreateString(v[i]));
    return array;
}

static void add_string(cJSON *obj, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
}

int vmm_jail_spec_to_json(const struct vmm_sandbox_spec *spec, char **ret_json,
                          struct wr_error **err)
{
    _cleanup_json_ cJSON *obj = cJSON_CreateObject();
    add_string(obj, "id", spec->id);
    add_string(obj, "dir", spec->dir);
    add_string(obj, "image", spec->image);
    cJSON_AddItemToObject(obj, "root_lowers", strv_to_json(spec->root_lowers));
    add_string(obj, "root_upper", spec->root_upper);
    add_string(obj, "root_work", spec->root_work);
    cJSON_AddItemToObject(obj, "ws_lowers", strv_to_json(spec->ws_lowers));
    add_string(obj, "ws_upper", spec->ws_upper);
    add_string(obj, "ws_work", spec->ws_work);
    add_string(obj, "git_objects", spec->git_objects);
    add_string(obj, "agent_socket", spec->agent_socket);
    add_string(obj, "guest_init_path", spec->guest_init_path);
    add_string(obj, "log_path", spec->log_path);
    cJSON_AddNumberToObject(obj, "cpus", spec->cpus);
    /* A double holds integers exactly up to 2^53, far above MEMORY_MAX. */
    cJSON_AddNumberToObject(obj, "memory_bytes", (double)spec->memory_bytes);
    cJSON_AddBoolToObject(obj, "network", spec->network);
    cJSON_AddBoolToObject(obj, "pooled", spec->pooled);
    add_string(obj, "hostname", spec->hostname);
    char *text = cJSON_PrintUnformatted(obj);
    if (!text)
        return wr_error_set(err, ENOMEM, "serializing the jail spec");
    *ret_json = wr_strdup(text);
    cJSON_free(text);
    return 0;
}

/* Copies obj[key] into *ret: a string, or NULL when absent or null. */
static int get_string(const cJSON *obj, const char *key, char **ret, struct wr_error **err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item))
        return wr_error_set(err, EINVAL, "jail spec: '%s' is not a string", key);
    *ret = wr_strdup(item->valuestring);
    return 0;
}

static int get_strv(const cJSON *obj, const char *key, char ***ret, struct wr_error **err)
{
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(array))
        return wr_error_set(err, EINVAL, "jail spec: '%s' is not an array", key);
    int n = cJSON_GetArraySize(array);
    if (n > LAYERS_MAX)
        return wr_error_set(err, EINVAL, "jail spec: '%s' has more than %d entries", key,
                            LAYERS_MAX);
    char **v = wr_calloc((size_t)n + 1, sizeof(char *));
    *ret = v;
    const cJSON *item;
    cJSON_ArrayForEach(item, array)
    {
        if (!cJSON_IsString(item))
            return wr_error_set(err, EINVAL, "jail spec: '%s' holds a non-string", key);
        *v++ = wr_strdup(item->valuestring);
    }
    return 0;
}

static int get_number(const cJSON *obj, const char *key, double max, double *ret,
                      struct wr_error **err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > max ||
        item->valuedouble != (double)(uint64_t)item->valuedouble)
        return wr_error_set(err, EINVAL, "jail spec: '%s' is not an integer in [0, %.0f]", key,
                            max);
    *ret = item->valuedouble;
    return 0;
}

struct string_field {
    const char *key;
    size_t offset;
};

#define STRING_FIELD(name)                                                                         \
    {                                                                                              \
#name, offsetof(struct vmm_sandbox_spec, name)                                             \
    }
static const struct string_field string_fields[] = {
    STRING_FIELD(id),         STRING_FIELD(dir),          STRING_FIELD(image),
    STRING_FIELD(root_upper), STRING_FIELD(root_work),    STRING_FIELD(ws_upper),
    STRING_FIELD(ws_work),    STRING_FIELD(agent_socket), STRING_FIELD(guest_init_path),
    STRING_FIELD(log_path),   STRING_FIELD(hostname),     STRING_FIELD(git_objects),
};

static int spec_from_object(const cJSON *obj, struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    for (size_t i = 0; i < WR_ARRAY_SIZE(string_fields); i++) {
        char **field = (char **)((char *)spec + string_fields[i].offset);
        int r = get_string(obj, string_fields[i].key, field, err);
        if (r < 0)
            return r;
    }
    int r = get_strv(obj, "root_lowers", (char ***)&spec->root_lowers, err);
    if (r < 0)
        return r;
    r = get_strv(obj, "ws_lowers", (char ***)&spec->ws_lowers, err);
    if (r < 0)
        return r;
    double cpus, memory;
    r = get_number(obj, "cpus", CPUS_MAX, &cpus, err);
    if (r < 0)
        return r;
    r = get_number(obj, "memory_bytes", (double)MEMORY_MAX, &memory, err);
    if (r < 0)
        return r;
    spec->cpus = (unsigned)cpus;
    spec->memory_bytes = (uint64_t)memory;
    spec->network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "network"));
    spec->pooled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "pooled"));
    return 0;
}

int vmm_jail_spec_from_json(const char *json, size_t len, struct vmm_sandbox_spec **ret_spec,
                            struct wr_error **err)
{
    _cleanup_json_ cJSON *obj = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(obj))
        return wr_error_set(err, EINVAL, "jail spec: not a JSON object");
    struct vmm_sandbox_spec *spec = wr_calloc(1, sizeof(*spec));
    int r = spec_from_object(obj, spec, err);
    if (r < 0) {
        vmm_jail_spec_free(spec);
        return r;
    }
    *ret_spec = spec;
    return 0;
}

void vmm_jail_spec_free(struct vmm_sandbox_spec *spec)
{
    if (!spec)
        return;
    /* Specs from vmm_jail_spec_from_json own every string; the struct's fields are const
     * only because the core lends its strings to backends. */
    for (size_t i = 0; i < WR_ARRAY_SIZE(string_fields); i++)
        free(*(char **)((char *)spec + string_fields[i].offset));
    wr_strv_free((char **)spec->root_lowers);
    wr_strv_free((char **)spec->ws_lowers);
    free(spec);
}

/* ---- validation ---------------------------------------------------------------------- */

/* overlay_safe: the path goes into overlay options, which split on ',' and ':' and
 * treat '\' as an escape. Refusing those is simpler and safer than escaping them. */
static int check_path(const char *name, const char *path, bool overlay_safe, struct wr_error **err)
{
    if (!path)
        return wr_error_set(err, EINVAL, "jail spec: '%s' is missing", name);
    if (path[0] != '/' || strlen(path) >= PATH_MAX || strchr(path, '\n'))
        return wr_error_set(err, EINVAL, "jail spec: '%s' is not an absolute path", name);
    if (overlay_safe && strpbrk(path, ",:\\"))
        return wr_error_set(err, EINVAL,
                            "jail spec: '%s' (%s) contains ',', ':' or '\\', which overlayfs "
                            "options cannot carry",
                            name, path);
    return 0;
}

static int check_layers(const char *name, const char *const *v, bool required,
                        struct wr_error **err)
{
    size_t n = wr_strv_len(v);
    if ((required && n == 0) || n > LAYERS_MAX)
        return wr_error_set(err, EINVAL, "jail spec: '%s' must hold %d to %d layers", name,
                            required ? 1 : 0, LAYERS_MAX);
    for (size_t i = 0; i < n; i++) {
        int r = check_path(name, v[i], true, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int check_paths(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    const struct {
        const char *name, *path;
        bool overlay;
    } paths[] = {
        {"dir", spec->dir, false},
        {"root_upper", spec->root_upper, true},
        {"root_work", spec->root_work, true},
        {"ws_upper", spec->ws_upper, true},
        {"ws_work", spec->ws_work, true},
        {"agent_socket", spec->agent_socket, false},
        {"guest_init_path", spec->guest_init_path, false},
        {"log_path", spec->log_path, false},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(paths); i++) {
        int r = check_path(paths[i].name, paths[i].path, paths[i].overlay, err);
        if (r < 0)
            return r;
    }
    int r = check_layers("root_lowers", spec->root_lowers, true, err);
    if (r >= 0 && spec->git_objects)
        r = check_path("git_objects", spec->git_objects, false, err);
    if (r < 0)
        return r;
    return check_layers("ws_lowers", spec->ws_lowers, false, err);
}

int vmm_jail_spec_validate(const struct vmm_sandbox_spec *spec, struct wr_error **err)
{
    if (!wr_id_valid(spec->id))
        return wr_error_set(err, EINVAL, "jail spec: id must be 16 lowercase hex digits");
    /* "host" or an image reference (oci_normalize_ref's characters, no newline). */
    if (!spec->image || !spec->image[0] || strlen(spec->image) > 255 ||
        strspn(spec->image,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@") !=
            strlen(spec->image))
        return wr_error_set(err, EINVAL, "jail spec: invalid image name");
    if (!spec->hostname || !wr_name_valid(spec->hostname))
        return wr_error_set(err, EINVAL, "jail spec: invalid hostname");
    if (spec->cpus < 1 || spec->cpus > CPUS_MAX)
        return wr_error_set(err, EINVAL, "jail spec: cpus must be 1 to %d", CPUS_MAX);
    if (spec->memory_bytes < MEMORY_MIN || spec->memory_bytes > MEMORY_MAX)
        return wr_error_set(err, EINVAL, "jail spec: memory must be at least %llu MiB",
                            MEMORY_MIN >> 20);
    int r = check_paths(spec, err);
    if (r < 0)
        return r;
    if (strlen(spec->agent_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return wr_error_set(err, EINVAL, "jail spec: agent socket path is too long");
    return 0;
}

/* ---- the jail's process state -------------------------------------------------------- */

struct jail {
    const struct vmm_sandbox_spec *spec;
    bool userns;    /* not root: an unprivileged user namespace maps us to root */
    int log_fd;     /* spec->log_path, appended: guest-init's stdout and stderr */
    int listen_fd;  /* the agent socket, listening */
    int init_fd;    /* guest-init, opened on the host before pivot_root */
    int null_fd;    /* the host's /dev/null, for stdin */
    int sync_fd[2]; /* child -> parent: an error message, or EOF at exec */
};

/* Moves fd above the range the exec'd guest-init is handed (0-3), keeping O_CLOEXEC. */
static int move_high(int fd)
{
    if (fd < 0 || fd > VMM_JAIL_LISTEN_FD)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 16);
    int saved = errno;
    close(fd);
    errno = saved;
    return high;
}

static int open_listen_socket(const char *path, struct wr_error **err)
{
    _cleanup_close_ int fd = move_high(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd < 0)
        return wr_error_set_errno(err, errno, "creating the agent socket");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (unlink(path) < 0 && errno != ENOENT)
        return wr_error_set_errno(err, errno, "removing stale %s", path);
    /* The umask makes the socket 0600 from birth: no window where others can connect. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (r < 0)
        return wr_error_set_errno(err, errno, "binding %s", path);
    if (listen(fd, 128) < 0)
        return wr_error_set_errno(err, errno, "listening on %s", path);
    return TAKE_FD(fd);
}

static int open_jail_fds(struct jail *jail, struct wr_error **err)
{
    const struct vmm_sandbox_spec *spec = jail->spec;
    jail->log_fd =
        move_high(open(spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
    if (jail->log_fd < 0)
        return wr_error_set_errno(err, errno, "opening %s", spec->log_path);
    jail->init_fd = move_high(open(spec->guest_init_path, O_PATH | O_CLOEXEC));
    if (jail->init_fd < 0)
        return wr_error_set_errno(err, errno, "opening guest-init %s", spec->guest_init_path);
    jail->null_fd = move_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (jail->null_fd < 0)
        return wr_error_set_errno(err, errno, "opening /dev/null");
    jail->listen_fd = open_listen_socket(spec->agent_socket, err);
    if (jail->listen_fd < 0)
        return jail->listen_fd;
    if (pipe2(jail->sync_fd, O_CLOEXEC) < 0)
        return wr_error_set_errno(err, errno, "creating the setup pipe");
    jail->sync_fd[0] = move_high(jail->sync_fd[0]);
    jail->sync_fd[1] = move_high(jail->sync_fd[1]);
    return 0;
}

/* Step 1: nothing from the server reaches the sandbox but fds 0-2 (replaced later). */
static void sanitize_process(void)
{
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    clearenv();
    umask(022);
}

static void set_rlimits(void)
{
    struct rlimit nofile = {NOFILE_MAX, NOFILE_MAX};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 && getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        /* Without CAP_SYS_RESOURCE only the soft limit can move, up to the hard one. */
        nofile.rlim_cur = WR_MIN(nofile.rlim_max, (rlim_t)NOFILE_MAX);
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }
    struct rlimit core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &core);
}

static int join_cgroup(struct jail *jail, struct wr_error **err)
{
    const struct vmm_sandbox_spec *spec = jail->spec;
    struct vmm_cgroup_limits limits = {
        .memory_bytes = spec->memory_bytes, .pids_max = PIDS_MAX, .cpus = spec->cpus};
    _cleanup_error_ struct wr_error *cg_err = NULL;
    int r = vmm_cgroup_create(spec->id, &limits, &cg_err);
    if (r >= 0)
        r = vmm_cgroup_add_pid(spec->id, getpid(), &cg_err);
    if (r >= 0)
        return 0;
    /* An unprivileged user rarely has a delegated cgroup: run without limits, say so. */
    if (jail->userns) {
        dprintf(jail->log_fd, "jail: no cgroup, running without limits: %s\n", cg_err->msg);
        return 0;
    }
    wr_error_move(err, &cg_err);
    return r;
}

/* ---- mounts -------------------------------------------------------------------------- */

static int mount_workspace(const struct jail *jail, const char *rootfs, struct wr_error **err)
{
    const struct vmm_sandbox_spec *spec = jail->spec;
    _cleanup_free_ char *target = NULL;
    int r = vmm_root_dir(rootfs, "workspace", &target, err);
    if (r < 0)
        return r;
    if (wr_strv_len(spec->ws_lowers) > 0) {
        r = vmm_mount_overlay(spec->ws_lowers, spec->ws_upper, spec->ws_work, jail->userns, target,
                              err);
        return r < 0 ? r : vmm_mount_git_objects(spec, target, err);
    }
    r = vmm_mount(spec->ws_upper, target, NULL, MS_BIND, NULL, err);
    if (r < 0)
        return r;
    return vmm_mount(NULL, target, NULL,
                     MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | vmm_mount_locked_flags(target),
                     NULL, err);
}

static int mount_proc(const char *rootfs, struct wr_error **err)
{
    static const char *const masked[] = {"kcore", "keys", "timer_list", "sched_debug"};
    static const char *const readonly[] = {"sys", "sysrq-trigger", "irq", "bus"};
    _cleanup_free_ char *proc = NULL;
    int r = vmm_root_dir(rootfs, "proc", &proc, err);
    if (r < 0)
        return r;
    r = vmm_mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
    for (size_t i = 0; r >= 0 && i < WR_ARRAY_SIZE(masked); i++) {
        _cleanup_free_ char *path = wr_path_join(proc, masked[i]);
        if (access(path, F_OK) == 0)
            r = vmm_mask_file(path, err);
    }
    for (size_t i = 0; r >= 0 && i < WR_ARRAY_SIZE(readonly); i++) {
        _cleanup_free_ char *path = wr_path_join(proc, readonly[i]);
        if (access(path, F_OK) == 0)
            r = vmm_bind_readonly(path, path, MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
    }
    return r;
}

static int mount_sys(const struct jail *jail, const char *rootfs, struct wr_error **err)
{
    _cleanup_free_ char *sys = NULL;
    int r = vmm_root_dir(rootfs, "sys", &sys, err);
    if (r < 0)
        return r;
    unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("sysfs", sys, "sysfs", flags, NULL) == 0)
        return 0;
    /* A user namespace that does not own the network namespace may not mount sysfs; a
     * non-recursive read-only bind shows the same tree without the host's cgroupfs. */
    if (errno != EPERM || !jail->spec->network)
        return wr_error_set_errno(err, errno, "mounting sysfs on %s", sys);
    return vmm_bind_readonly("/sys", sys, flags, err);
}

static int make_dev_node(const char *dev, const char *name, struct wr_error **err)
{
    _cleanup_free_ char *target = wr_path_join(dev, name);
    _cleanup_free_ char *source = wr_asprintf("/dev/%s", name);
    _cleanup_close_ int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "creating %s", target);
    return vmm_mount(source, target, NULL, MS_BIND, NULL, err);
}

static int make_dev_links(const char *dev, struct wr_error **err)
{
    static const char *const links[][2] = {
        {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
    };
    for (size_t i = 0; i < WR_ARRAY_SIZE(links); i++) {
        _cleanup_free_ char *path = wr_path_join(dev, links[i][0]);
        if (symlink(links[i][1], path) < 0)
            return wr_error_set_errno(err, errno, "creating %s", path);
    }
    return 0;
}

/* /dev: a small tmpfs holding binds of the harmless host devices. It is nodev itself, so
 * device nodes made with mknod (CAP_MKNOD is kept) cannot be opened; the binds are
 * separate mounts that keep the host devtmpfs's flags. */
static int mount_dev(const struct jail *jail, const char *rootfs, struct wr_error **err)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    _cleanup_free_ char *dev = NULL;
    int r = vmm_root_dir(rootfs, "dev", &dev, err);
    if (r < 0)
        return r;
    r = vmm_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k",
                  err);
    for (size_t i = 0; r >= 0 && i < WR_ARRAY_SIZE(nodes); i++)
        r = make_dev_node(dev, nodes[i], err);
    if (r < 0)
        return r;
    _cleanup_free_ char *pts = wr_path_join(dev, "pts");
    _cleanup_free_ char *shm = wr_path_join(dev, "shm");
    if (mkdir(pts, 0755) < 0 || mkdir(shm, 01777) < 0 || chmod(shm, 01777) < 0)
        return wr_error_set_errno(err, errno, "creating %s/{pts,shm}", dev);
    /* gid=5 (tty) only exists when the ids are not remapped. */
    r = vmm_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
                  jail->userns ? "newinstance,ptmxmode=0666,mode=0620"
                               : "newinstance,ptmxmode=0666,mode=0620,gid=5",
                  err);
    if (r >= 0)
        r = vmm_mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m", err);
    if (r >= 0)
        r = make_dev_links(dev, err);
    return r;
}

static int mount_tmp(const struct jail *jail, const char *rootfs, struct wr_error **err)
{
    _cleanup_free_ char *tmp = NULL;
    int r = vmm_root_dir(rootfs, "tmp", &tmp, err);
    if (r < 0)
        return r;
    /* Half the memory limit: tmpfs pages are charged to the sandbox's cgroup anyway, this
     * keeps a runaway file from taking all of it. */
    _cleanup_free_ char *opts =
        wr_asprintf("mode=1777,size=%llu", (unsigned long long)jail->spec->memory_bytes / 2);
    return vmm_mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, opts, err);
}

static int build_root(const struct jail *jail, const char *rootfs, struct wr_error **err)
{
    const struct vmm_sandbox_spec *spec = jail->spec;
    if (mkdir(rootfs, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", rootfs);
    int r = vmm_mount_root(spec, rootfs, jail->userns, err);
    if (r >= 0)
        r = mount_workspace(jail, rootfs, err);
    if (r >= 0)
        r = mount_proc(rootfs, err);
    if (r >= 0)
        r = mount_sys(jail, rootfs, err);
    if (r >= 0)
        r = mount_dev(jail, rootfs, err);
    if (r >= 0)
        r = mount_tmp(jail, rootfs, err);
    /* The root holds what it needs of this sandbox's disk. The namespace's copies of every
     * disk go now: after pivot_root the detached old root stays pinned by guest-init's
     * executable, and with it whatever is still mounted below it, which would keep other
     * sandboxes' disks alive for as long as this one runs. */
    if (r >= 0)
        vmm_disk_detach_all();
    return r;
}

/* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
 * only the new root, with no directory to keep it in (bubblewrap's and runc's trick). */
static int enter_root(const char *rootfs, struct wr_error **err)
{
    _cleanup_close_ int fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fchdir(fd) < 0)
        return wr_error_set_errno(err, errno, "entering %s", rootfs);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return wr_error_set_errno(err, errno, "pivot_root to %s", rootfs);
    if (umount2(".", MNT_DETACH) < 0)
        return wr_error_set_errno(err, errno, "detaching the old root");
    if (chdir("/") < 0)
        return wr_error_set_errno(err, errno, "chdir /");
    return 0;
}

/* ---- network, identity, privileges ---------------------------------------------------- */

/* Docker's default capability set: enough for package managers and servers run as root
 * inside, none of the ones that administer the host (SYS_ADMIN, NET_ADMIN, SYS_PTRACE,
 * SYS_MODULE, DAC_READ_SEARCH, ...). */
static const int kept_caps[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
    CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,    CAP_AUDIT_WRITE,
};

static uint64_t kept_caps_mask(void)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < WR_ARRAY_SIZE(kept_caps); i++)
        mask |= 1ull << kept_caps[i];
    return mask;
}

static int drop_capabilities(struct wr_error **err)
{
    uint64_t keep = kept_caps_mask();
    for (int cap = 0; cap <= 63; cap++) {
        if (keep & (1ull << cap))
            continue;
        /* EINVAL: past the kernel's last capability. */
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return wr_error_set_errno(err, errno, "dropping capability %d", cap);
    }
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2] = {0};
    for (int i = 0; i < 2; i++)
        data[i].effective = data[i].permitted = (uint32_t)(keep >> (32 * i));
    if (syscall(SYS_capset, &header, data) < 0)
        return wr_error_set_errno(err, errno, "setting capabilities");
    return 0;
}

/* Puts the fds guest-init is handed at 0-3; dup2 clears O_CLOEXEC on the copies. */
static int hand_over_fds(const struct jail *jail, struct wr_error **err)
{
    if (dup2(jail->null_fd, 0) < 0 || dup2(jail->log_fd, 1) < 0 || dup2(jail->log_fd, 2) < 0 ||
        dup2(jail->listen_fd, VMM_JAIL_LISTEN_FD) < 0)
        return wr_error_set_errno(err, errno, "passing fds to guest-init");
    return 0;
}

static int exec_guest_init(const struct jail *jail, struct wr_error **err)
{
    char fd_text[16];
    snprintf(fd_text, sizeof(fd_text), "%d", VMM_JAIL_LISTEN_FD);
    char *argv[] = {"guest-init", "--jail", "--listen-fd", fd_text, NULL};
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME=/root", "LANG=C.UTF-8", NULL};
    execveat(jail->init_fd, "", argv, envp, AT_EMPTY_PATH);
    return wr_error_set_errno(err, errno, "executing guest-init %s", jail->spec->guest_init_path);
}

/* Everything the sandbox's PID 1 does before it becomes guest-init. Returns only on
 * failure. */
static int child_setup(struct jail *jail, struct wr_error **err)
{
    const struct vmm_sandbox_spec *spec = jail->spec;
    (void)setsid();
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return wr_error_set_errno(err, errno, "making mounts private");
    _cleanup_free_ char *rootfs = wr_path_join(spec->dir, "rootfs");
    int r = build_root(jail, rootfs, err);
    if (r < 0)
        return r;
    if (sethostname(spec->hostname, strlen(spec->hostname)) < 0)
        return wr_error_set_errno(err, errno, "setting the hostname");
    if ((r = vmm_net_loopback_up(err)) < 0)
        return r;
    if ((r = enter_root(rootfs, err)) < 0 || (r = hand_over_fds(jail, err)) < 0 ||
        (r = drop_capabilities(err)) < 0)
        return r;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return wr_error_set_errno(err, errno, "setting no_new_privs");
    if ((r = vmm_seccomp_load(err)) < 0)
        return r;
    return exec_guest_init(jail, err);
}

static _Noreturn void run_child(struct jail *jail)
{
    close(jail->sync_fd[0]);
    /* From here on our stdout/stderr must not hold the server's pipes open. */
    (void)dup2(jail->log_fd, 1);
    (void)dup2(jail->log_fd, 2);
    _cleanup_error_ struct wr_error *err = NULL;
    (void)child_setup(jail, &err);
    const char *msg = err ? err->msg : "setup failed";
    (void)wr_write_all(jail->sync_fd[1], msg, strlen(msg));
    _exit(1);
}

static int write_id_map(const char *file, unsigned id, struct wr_error **err)
{
    _cleanup_free_ char *path = wr_asprintf("/proc/self/%s", file);
    _cleanup_free_ char *map = wr_asprintf("0 %u 1\n", id);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || wr_write_all(fd, map, strlen(map)) < 0)
        return wr_error_set_errno(err, errno, "writing %s", path);
    return 0;
}

/* Maps the calling user to root in a new user namespace (rootless mode). setgroups must
 * be denied before an unprivileged process may write its gid_map. */
static int map_to_root(uid_t uid, gid_t gid, struct wr_error **err)
{
    _cleanup_close_ int fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || wr_write_all(fd, "deny", 4) < 0)
        return wr_error_set_errno(err, errno, "writing /proc/self/setgroups");
    int r = write_id_map("uid_map", uid, err);
    return r < 0 ? r : write_id_map("gid_map", gid, err);
}

static int unshare_namespaces(const struct jail *jail, struct wr_error **err)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    /* Always a network namespace of its own: with network, slirp4netns joins it to the
     * host's (vmm/backends/net.h). */
    int flags =
        CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWPID | CLONE_NEWNET;
    if (jail->userns)
        flags |= CLONE_NEWUSER;
    if (unshare(flags) < 0)
        return wr_error_set_errno(err, errno, "creating namespaces");
    return jail->userns ? map_to_root(uid, gid, err) : 0;
}

/* Waits for the child's verdict: EOF with nothing written means guest-init was exec'd. */
static int wait_for_child(struct jail *jail, pid_t child, struct wr_error **err)
{
    close(jail->sync_fd[1]);
    return wr_child_setup_wait(jail->sync_fd[0], child, "the sandbox's init", err);
}

static int jail_run(struct jail *jail, pid_t *ret_pid, struct wr_error **err)
{
    set_rlimits();
    int r = open_jail_fds(jail, err);
    if (r < 0)
        return r;
    bool network = jail->spec->network;
    if (network && jail->userns)
        return wr_error_set(err, EPERM,
                            "network: true needs warren to run as root (the sandbox's "
                            "firewall rules are loaded by root)");
    if ((r = join_cgroup(jail, err)) < 0)
        return r;
    /* Forked before the jailer leaves the host's namespaces, inside the sandbox's cgroup
     * (slirp4netns dies with the sandbox). */
    struct vmm_net_helper net = {0};
    const int keep[] = {jail->log_fd};
    if (network &&
        (r = vmm_net_helper_start(&net, jail->log_fd, -1, jail->spec->dir, keep, 1, err)) < 0)
        return r;
    if ((r = unshare_namespaces(jail, err)) < 0) {
        if (network)
            (void)vmm_net_helper_finish(&net, -1, NULL);
        return r;
    }
    pid_t child = fork();
    if (child < 0)
        r = wr_error_set_errno(err, errno, "forking the sandbox's init");
    else if (child == 0)
        run_child(jail);
    else
        r = wait_for_child(jail, child, err);
    /* The sandbox runs nothing of its own before the jailer has answered: its network and
     * the rules are in place before the first exec. */
    if (network) {
        int nr = vmm_net_helper_finish(&net, r >= 0 ? child : -1, r >= 0 ? err : NULL);
        if (r >= 0 && nr < 0) {
            (void)kill(child, SIGKILL);
            r = nr;
        }
    }
    if (r < 0)
        return r;
    *ret_pid = child;
    return 0;
}

int vmm_jail_spec_load(const char *path, struct vmm_sandbox_spec **ret_spec, struct wr_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = wr_read_file(path, SPEC_MAX_BYTES, &text, &len);
    if (r < 0)
        return wr_error_set_errno(err, -r, "reading %s", path);
    r = vmm_jail_spec_from_json(text, len, ret_spec, err);
    if (r < 0)
        return r;
    return vmm_jail_spec_validate(*ret_spec, err);
}

/* Leaves with _exit: this process has unshared a pid namespace, and exit-time hooks of
 * the program that embeds the jailer must not run in it (LeakSanitizer's tracer, forked
 * at exit, hangs there). */
static _Noreturn void jailer_exit(int status)
{
    fflush(stdout);
    fflush(stderr);
    _exit(status);
}

int vmm_jailer_main(int argc, char **argv)
{
    sanitize_process();
    if (argc != 3 || strcmp(argv[1], "__jail") != 0) {
        fprintf(stderr, "usage: warren __jail SPEC.json\n");
        return 2;
    }
    struct vmm_sandbox_spec *spec = NULL;
    struct wr_error *err = NULL;
    struct jail jail = {
        .log_fd = -1, .listen_fd = -1, .init_fd = -1, .null_fd = -1, .sync_fd = {-1, -1}};
    pid_t pid = 0;
    int r = vmm_jail_spec_load(argv[2], &spec, &err);
    if (r >= 0) {
        jail.spec = spec;
        jail.userns = geteuid() != 0;
        r = jail_run(&jail, &pid, &err);
    }
    if (r < 0) {
        /* The agent socket must not outlive a jail that never ran. */
        if (jail.listen_fd >= 0)
            (void)unlink(spec->agent_socket);
        fprintf(stderr, "%s\n", err ? err->msg : "jail setup failed");
        jailer_exit(1);
    }
    printf("%d\n", (int)pid);
    jailer_exit(ferror(stdout) ? 1 : 0);
}
