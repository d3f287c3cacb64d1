/* Per-sandbox cgroups (see cgroup.h). All paths derive from the sandbox id, which is
 * checked to be 16 hex digits before it reaches a path. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cgroup.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_PARENT "warren"
#define CFS_PERIOD_US 100000
/* cgroup.procs of one sandbox: pids.max caps it at a few thousand short lines. */
#define PROCS_MAX_BYTES (1u << 20)

/* v1 hierarchies a sandbox joins. memory, pids and freezer are required; cpu is best
 * effort because some hosts mount it combined (cpu,cpuacct) or not at all. */
static const char *const v1_controllers[] = {"memory", "pids", "freezer", "cpu"};

bool vmm_cgroup_is_unified(void)
{
    return access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
}

static bool v2_has_controller(const char *controllers, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = controllers; (p = strstr(p, name)); p += n)
        if ((p == controllers || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
            return true;
    return false;
}

bool vmm_cgroup_check(char **ret_summary, struct wr_error **err)
{
    bool unified = vmm_cgroup_is_unified();
    /* v2: cgroup.freeze is in every cgroup, memory and pids are controllers; cpu is best
     * effort in both. */
    static const char *const v2_controllers[] = {"memory", "pids", "cpu"};
    const char *const *wanted = unified ? v2_controllers : v1_controllers;
    size_t n_wanted = unified ? WR_ARRAY_SIZE(v2_controllers) : WR_ARRAY_SIZE(v1_controllers);
    _cleanup_free_ char *controllers = NULL;
    size_t len;
    if (unified && wr_read_file(CGROUP_ROOT "/cgroup.controllers", 4096, &controllers, &len) < 0)
        controllers = wr_strdup("");
    struct wr_buf present, missing;
    wr_buf_init(&present, 256);
    wr_buf_init(&missing, 256);
    bool ok = true;
    for (size_t i = 0; i < n_wanted; i++) {
        _cleanup_free_ char *dir = wr_path_join(CGROUP_ROOT, wanted[i]);
        bool there = unified ? v2_has_controller(controllers, wanted[i]) : access(dir, F_OK) == 0;
        struct wr_buf *b = there ? &present : &missing;
        wr_buf_printf(b, "%s%s", b->len ? ", " : "", wanted[i]);
        ok = ok && (there || !strcmp(wanted[i], "cpu"));
    }
    *ret_summary = wr_asprintf("cgroup %s%s; controllers %s%s%s%s", unified ? "v2" : "v1",
                               unified ? "" : " (or hybrid)", present.len ? present.data : "none",
                               missing.len ? "; missing: " : "", missing.len ? missing.data : "",
                               ok && missing.len ? " (best effort)" : "");
    if (!ok)
        wr_error_set(err, ENODEV,
                     "the cgroup controllers the jail needs are not all available (%s)",
                     *ret_summary);
    wr_buf_free(&present);
    wr_buf_free(&missing);
    return ok;
}

/* The sandbox's directory in one hierarchy; controller is ignored on v2. */
static char *cgroup_dir(const char *controller, const char *id)
{
    if (vmm_cgroup_is_unified())
        return wr_asprintf(CGROUP_ROOT "/" CGROUP_PARENT "/%s", id);
    return wr_asprintf(CGROUP_ROOT "/%s/" CGROUP_PARENT "/%s", controller, id);
}

static int write_value(const char *dir, const char *name, const char *value)
{
    _cleanup_free_ char *path = wr_path_join(dir, name);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* cgroup files take one value per write(2); a short write is an error from the kernel. */
    if (write(fd, value, strlen(value)) < 0)
        return -errno;
    return 0;
}

static int read_value(const char *dir, const char *name, char **ret)
{
    _cleanup_free_ char *path = wr_path_join(dir, name);
    size_t len;
    return wr_read_file(path, PROCS_MAX_BYTES, ret, &len);
}

static int write_u64(const char *dir, const char *name, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
    return write_value(dir, name, text);
}

static int set_limit(const char *dir, const char *name, uint64_t value, struct wr_error **err)
{
    int r = value ? write_u64(dir, name, value) : write_value(dir, name, "max");
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s/%s", dir, name);
    return 0;
}

/* v2 delegates controllers top-down: each level must list them in subtree_control. */
static void v2_enable_controllers(const char *dir)
{
    static const char *const wanted[] = {"+memory", "+pids", "+cpu"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(wanted); i++)
        (void)write_value(dir, "cgroup.subtree_control", wanted[i]);
}

static int v2_create(const char *id, const struct vmm_cgroup_limits *limits, struct wr_error **err)
{
    v2_enable_controllers(CGROUP_ROOT);
    if (mkdir(CGROUP_ROOT "/" CGROUP_PARENT, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating " CGROUP_ROOT "/" CGROUP_PARENT);
    v2_enable_controllers(CGROUP_ROOT "/" CGROUP_PARENT);
    _cleanup_free_ char *dir = cgroup_dir("memory", id);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return wr_error_set_errno(err, errno, "creating %s", dir);
    int r = set_limit(dir, "memory.max", limits->memory_bytes, err);
    if (r < 0)
        return r;
    /* Without this the limit only moves the sandbox's memory to swap. */
    if (limits->memory_bytes)
        (void)write_value(dir, "memory.swap.max", "0");
    r = set_limit(dir, "pids.max", limits->pids_max, err);
    if (r < 0)
        return r;
    if (limits->cpus) {
        char quota[64];
        snprintf(quota, sizeof(quota), "%llu %d", (unsigned long long)limits->cpus * CFS_PERIOD_US,
                 CFS_PERIOD_US);
        (void)write_value(dir, "cpu.max", quota);
    }
    return 0;
}

static int v1_write_limits(const char *controller, const char *dir,
                           const struct vmm_cgroup_limits *limits, struct wr_error **err)
{
    if (!strcmp(controller, "memory"))
        return limits->memory_bytes
                   ? set_limit(dir, "memory.limit_in_bytes", limits->memory_bytes, err)
                   : write_value(dir, "memory.limit_in_bytes", "-1");
    if (!strcmp(controller, "pids"))
        return set_limit(dir, "pids.max", limits->pids_max, err);
    if (!strcmp(controller, "cpu") && limits->cpus) {
        (void)write_u64(dir, "cpu.cfs_period_us", CFS_PERIOD_US);
        (void)write_u64(dir, "cpu.cfs_quota_us", (uint64_t)limits->cpus * CFS_PERIOD_US);
    }
    return 0;
}

static int v1_create(const char *id, const struct vmm_cgroup_limits *limits, struct wr_error **err)
{
    for (size_t i = 0; i < WR_ARRAY_SIZE(v1_controllers); i++) {
        const char *controller = v1_controllers[i];
        bool optional = !strcmp(controller, "cpu");
        _cleanup_free_ char *dir = cgroup_dir(controller, id);
        int r = wr_mkdir_p(dir, 0755);
        if (r < 0) {
            if (optional)
                continue;
            return wr_error_set_errno(err, -r, "creating %s", dir);
        }
        r = v1_write_limits(controller, dir, limits, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int vmm_cgroup_create(const char *id, const struct vmm_cgroup_limits *limits, struct wr_error **err)
{
    if (!wr_id_valid(id))
        return wr_error_set(err, EINVAL, "invalid sandbox id for a cgroup");
    return vmm_cgroup_is_unified() ? v2_create(id, limits, err) : v1_create(id, limits, err);
}

/* Calls fn for the sandbox's directory in every hierarchy that exists. */
static int for_each_dir(const char *id, int (*fn)(const char *dir, void *data), void *data)
{
    if (!wr_id_valid(id))
        return -EINVAL;
    size_t n = vmm_cgroup_is_unified() ? 1 : WR_ARRAY_SIZE(v1_controllers);
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *dir = cgroup_dir(v1_controllers[i], id);
        if (access(dir, F_OK) < 0)
            continue;
        int r = fn(dir, data);
        if (r < 0 && ret == 0)
            ret = r;
    }
    return ret;
}

static int add_pid_to(const char *dir, void *data)
{
    return write_u64(dir, "cgroup.procs", (uint64_t) * (pid_t *)data);
}

int vmm_cgroup_add_pid(const char *id, pid_t pid, struct wr_error **err)
{
    int r = for_each_dir(id, add_pid_to, &pid);
    if (r < 0)
        return wr_error_set_errno(err, -r, "adding pid %d to cgroup " CGROUP_PARENT "/%s", (int)pid,
                                  id ? id : "");
    return 0;
}

bool vmm_cgroup_contains(const char *id, pid_t pid)
{
    if (!wr_id_valid(id) || pid <= 0)
        return false;
    _cleanup_free_ char *path = wr_asprintf("/proc/%d/cgroup", (int)pid);
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (wr_read_file(path, 65536, &text, &len) < 0)
        return false;
    _cleanup_free_ char *suffix = wr_asprintf(":/" CGROUP_PARENT "/%s\n", id);
    return strstr(text, suffix) != NULL;
}

int vmm_cgroup_memory_usage(const char *id, uint64_t *ret_bytes)
{
    if (!wr_id_valid(id))
        return -EINVAL;
    bool unified = vmm_cgroup_is_unified();
    _cleanup_free_ char *dir = cgroup_dir("memory", id);
    _cleanup_free_ char *text = NULL;
    int r = read_value(dir, unified ? "memory.current" : "memory.usage_in_bytes", &text);
    if (r < 0)
        return r;
    *ret_bytes = strtoull(text, NULL, 10);
    return 0;
}

int vmm_cgroup_cpu_usage(const char *id, uint64_t *ret_usec)
{
    if (!wr_id_valid(id))
        return -EINVAL;
    _cleanup_free_ char *text = NULL;
    if (vmm_cgroup_is_unified()) {
        _cleanup_free_ char *dir = cgroup_dir("cpu", id);
        int r = read_value(dir, "cpu.stat", &text);
        if (r < 0)
            return r;
        const char *v = strstr(text, "usage_usec ");
        if (!v)
            return -ENODATA;
        *ret_usec = strtoull(v + strlen("usage_usec "), NULL, 10);
        return 0;
    }
    _cleanup_free_ char *dir = cgroup_dir("cpu", id);
    int r = read_value(dir, "cpuacct.usage", &text); /* a combined cpu,cpuacct mount */
    if (r < 0)
        return r;
    *ret_usec = strtoull(text, NULL, 10) / 1000;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls file in dir until it contains want (the kernel applies freezing asynchronously). */
static int wait_for_value(const char *dir, const char *file, const char *want, uint64_t ms)
{
    uint64_t deadline = wr_now_ms() + ms;
    for (;;) {
        _cleanup_free_ char *text = NULL;
        int r = read_value(dir, file, &text);
        if (r < 0)
            return r;
        if (strstr(text, want))
            return 0;
        if (wr_now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(1);
    }
}

static int set_frozen(const char *id, bool frozen, struct wr_error **err)
{
    if (!wr_id_valid(id))
        return wr_error_set(err, EINVAL, "invalid sandbox id for a cgroup");
    bool unified = vmm_cgroup_is_unified();
    _cleanup_free_ char *dir = cgroup_dir("freezer", id);
    const char *file = unified ? "cgroup.freeze" : "freezer.state";
    const char *value = unified ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
    int r = write_value(dir, file, value);
    if (r < 0)
        return wr_error_set_errno(err, -r, "writing %s/%s", dir, file);
    if (unified)
        r = wait_for_value(dir, "cgroup.events", frozen ? "frozen 1" : "frozen 0", 1000);
    else
        r = wait_for_value(dir, file, value, 1000);
    if (r < 0)
        return wr_error_set_errno(err, -r, "waiting for %s to become %s", dir, value);
    return 0;
}

int vmm_cgroup_freeze(const char *id, struct wr_error **err)
{
    return set_frozen(id, true, err);
}

int vmm_cgroup_thaw(const char *id, struct wr_error **err)
{
    return set_frozen(id, false, err);
}

/* Sends SIGKILL to every pid in dir/cgroup.procs; counts them in *data. */
static int kill_members(const char *dir, void *data)
{
    _cleanup_free_ char *text = NULL;
    int r = read_value(dir, "cgroup.procs", &text);
    if (r < 0)
        return r == -ENOENT ? 0 : r;
    for (char *line = text; *line;) {
        char *end;
        long pid = strtol(line, &end, 10);
        if (end == line)
            break;
        if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
            (*(unsigned *)data)++;
        line = *end ? end + 1 : end;
    }
    return 0;
}

static int remove_dir(const char *dir, void *data)
{
    (void)data;
    if (rmdir(dir) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int vmm_cgroup_destroy(const char *id, struct wr_error **err)
{
    if (!wr_id_valid(id))
        return wr_error_set(err, EINVAL, "invalid sandbox id for a cgroup");
    /* Killed tasks of a cgroup at its memory limit exit at a crawl (each one reclaims on
     * its way out): the limit goes first. Then, where the freezer is: frozen, every task
     * gets SIGKILL, and thawed, so that none of them (a fork bomb's) forks again before
     * the signal acts (v1 frozen tasks act on it only once thawed). */
    bool unified = vmm_cgroup_is_unified();
    _cleanup_free_ char *memory = cgroup_dir("memory", id);
    (void)write_value(memory, unified ? "memory.max" : "memory.limit_in_bytes",
                      unified ? "max" : "-1");
    _cleanup_free_ char *freezer = cgroup_dir("freezer", id);
    if (access(freezer, F_OK) == 0) {
        unsigned killed = 0;
        if (set_frozen(id, true, NULL) == 0)
            (void)for_each_dir(id, kill_members, &killed);
        (void)set_frozen(id, false, NULL);
    }
    uint64_t deadline = wr_now_ms() + 10000;
    for (;;) {
        unsigned alive = 0;
        /* Killing every round also catches processes forked while we were killing. */
        (void)for_each_dir(id, kill_members, &alive);
        if (alive == 0 || wr_now_ms() >= deadline)
            break;
        sleep_ms(1);
    }
    int r = for_each_dir(id, remove_dir, NULL);
    if (r < 0 && r != -EINVAL)
        return wr_error_set_errno(err, -r, "removing cgroup " CGROUP_PARENT "/%s", id);
    return 0;
}
