/* Attaching a workspace to a running sandbox (see attach.h).
 *
 * The overlay and the read-only bind of the git objects are made here, detached
 * (fsopen/fsconfig/fsmount, open_tree), in the host's mount namespace where the layer paths
 * are. Joining the sandbox's mount namespace needs a process that shares its filesystem
 * context with no other thread, so a forked child does the rest: setns, then move_mount of
 * the detached mounts onto the target, then sethostname. The child makes system calls only
 * (the parent is multi-threaded) and reports the step that failed and its errno on a pipe. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "attach.h"

#define OBJECTS_REL ".git/repo-objects"

static int fsconfig_string(int fs, const char *key, const char *value, struct wr_error **err)
{
    if (fsconfig(fs, FSCONFIG_SET_STRING, key, value, 0) < 0)
        return wr_error_set_errno(err, errno, "overlay option %s=%.200s", key, value);
    return 0;
}

/* The workspace overlay, detached: lowers (top first) under upper. */
static int make_overlay(const struct vmm_sandbox_spec *spec, int *ret_fd, struct wr_error **err)
{
    _cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return wr_error_set_errno(err, errno, "opening an overlay filesystem context");
    _cleanup_free_ char *lowers = wr_strv_join(spec->ws_lowers, ":");
    if (fsconfig_string(fs, "lowerdir", lowers, err) < 0 ||
        fsconfig_string(fs, "upperdir", spec->ws_upper, err) < 0 ||
        fsconfig_string(fs, "workdir", spec->ws_work, err) < 0)
        return -(*err)->status;
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        return wr_error_set_errno(err, errno, "creating the workspace overlay of %s", spec->dir);
    int mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (mnt < 0)
        return wr_error_set_errno(err, errno, "mounting the workspace overlay of %s", spec->dir);
    *ret_fd = mnt;
    return 0;
}

/* The user's git objects, detached and read-only; -1 when the sandbox has none. */
static int make_objects(const struct vmm_sandbox_spec *spec, int *ret_fd, struct wr_error **err)
{
    *ret_fd = -1;
    struct stat st;
    if (!spec->git_objects || stat(spec->git_objects, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    _cleanup_close_ int fd =
        open_tree(AT_FDCWD, spec->git_objects, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return wr_error_set_errno(err, errno, "binding %s", spec->git_objects);
    struct mount_attr attr = {
        .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    };
    if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
        return wr_error_set_errno(err, errno, "making the bind of %s read-only", spec->git_objects);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* ---- the child ------------------------------------------------------------------------ */

enum step {
    STEP_SETNS_MNT = 1,
    STEP_SETNS_UTS,
    STEP_MKDIR,
    STEP_MOVE_WORKSPACE,
    STEP_OPEN_OBJECTS,
    STEP_MOVE_OBJECTS,
    STEP_HOSTNAME,
};

static const char *const step_names[] = {
    [STEP_SETNS_MNT] = "joining the sandbox's mount namespace",
    [STEP_SETNS_UTS] = "joining the sandbox's UTS namespace",
    [STEP_MKDIR] = "creating the workspace mount point",
    [STEP_MOVE_WORKSPACE] = "mounting the workspace",
    [STEP_OPEN_OBJECTS] = "finding " OBJECTS_REL " in the workspace",
    [STEP_MOVE_OBJECTS] = "mounting the git objects",
    [STEP_HOSTNAME] = "setting the hostname",
};

struct child_args {
    int mntns, utsns; /* utsns -1: keep the hostname */
    int overlay, objects;
    const char *target;
    bool under_share; /* target is made first */
    const char *hostname;
    int step, error; /* the child's report: the step that failed and its errno */
};

static int child_fail(struct child_args *a, int step)
{
    a->step = step;
    a->error = errno;
    return 1;
}

/* Runs in a child that shares the parent's memory (CLONE_VM | CLONE_VFORK) but not its
 * filesystem context, so that it may join another mount namespace: system calls only. */
static int child_run(void *arg)
{
    struct child_args *a = arg;
    if (setns(a->mntns, CLONE_NEWNS) < 0)
        return child_fail(a, STEP_SETNS_MNT);
    if (a->utsns >= 0 && setns(a->utsns, CLONE_NEWUTS) < 0)
        return child_fail(a, STEP_SETNS_UTS);
    if (a->under_share && mkdir(a->target, 0755) < 0 && errno != EEXIST)
        return child_fail(a, STEP_MKDIR);
    if (a->overlay >= 0 &&
        move_mount(a->overlay, "", AT_FDCWD, a->target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return child_fail(a, STEP_MOVE_WORKSPACE);
    if (a->objects >= 0) {
        /* The mount point comes from the checkout layer; a symlink there is refused. */
        int ws = open(a->target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV};
        int dir = ws < 0 ? -1 : (int)syscall(SYS_openat2, ws, OBJECTS_REL, &how, sizeof(how));
        if (dir < 0 && errno != ENOENT)
            return child_fail(a, STEP_OPEN_OBJECTS);
        if (dir >= 0 && move_mount(a->objects, "", dir, "",
                                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return child_fail(a, STEP_MOVE_OBJECTS);
    }
    if (a->utsns >= 0 && sethostname(a->hostname, strlen(a->hostname)) < 0)
        return child_fail(a, STEP_HOSTNAME);
    return 0;
}

static int open_ns(pid_t pid, const char *ns, int *ret, struct wr_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
    *ret = open(path, O_RDONLY | O_CLOEXEC);
    if (*ret < 0)
        return wr_error_set_errno(err, errno, "opening %s", path);
    return 0;
}

int vmm_attach_workspace(const struct vmm_sandbox_spec *spec, pid_t ns_pid, const char *target,
                         bool under_share, bool set_hostname, struct wr_error **err)
{
    _cleanup_close_ int mntns = -1, utsns = -1, overlay = -1, objects = -1;
    if (open_ns(ns_pid, "mnt", &mntns, err) < 0 ||
        (set_hostname && open_ns(ns_pid, "uts", &utsns, err) < 0))
        return -(*err)->status;
    if (wr_strv_len(spec->ws_lowers) > 0) {
        if (make_overlay(spec, &overlay, err) < 0 || make_objects(spec, &objects, err) < 0)
            return -(*err)->status;
    } else if (under_share) {
        /* An empty workspace: the upper alone. (The jail has it on /workspace already.) */
        overlay = open_tree(AT_FDCWD, spec->ws_upper, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (overlay < 0)
            return wr_error_set_errno(err, errno, "binding %s", spec->ws_upper);
    }
    struct child_args a = {
        .mntns = mntns,
        .utsns = utsns,
        .overlay = overlay,
        .objects = objects,
        .target = target,
        .under_share = under_share,
        .hostname = spec->hostname,
    };
    /* CLONE_VM | CLONE_VFORK: no copy of this process's memory (a fork costs milliseconds
     * here), and this thread waits until the child is done. */
    size_t stack_size = 64 * 1024;
    _cleanup_free_ char *stack = wr_malloc(stack_size);
    pid_t child = clone(child_run, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    if (child < 0)
        return wr_error_set_errno(err, errno, "starting a process to attach the workspace");
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (a.step > 0 && a.step < (int)WR_ARRAY_SIZE(step_names))
        return wr_error_set_errno(err, a.error, "%s of sandbox %s (%s)", step_names[a.step],
                                  spec->id, target);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return wr_error_set(err, EIO, "attaching the workspace of sandbox %s: helper status %d",
                            spec->id, status);
    return 0;
}
