/* The USER of an EXEC (guest-init/user.c): /etc/passwd and /etc/group lines, and
 * resolving "name", "uid", "name:group", "uid:gid" in a root of the test's own (chroot). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-init/guest-init.h"
#include "test.h"

static void test_parse_lines(void)
{
    struct gi_passwd p;
    ASSERT_EQ(gi_parse_passwd_line("app:x:1000:1001:App User:/home/app:/bin/sh\n", &p), 0);
    ASSERT_STREQ(p.name, "app");
    ASSERT_EQ(p.uid, 1000u);
    ASSERT_EQ(p.gid, 1001u);
    ASSERT_STREQ(p.home, "/home/app");
    ASSERT_EQ(gi_parse_passwd_line("staff:x:50:alice,bob", &p), 0);
    ASSERT_EQ(p.uid, 50u);
    ASSERT_EQ(gi_parse_passwd_line("", &p), -1);
    ASSERT_EQ(gi_parse_passwd_line("nouid:x", &p), -1);
    ASSERT_EQ(gi_parse_passwd_line("bad:x:12a:0::/:", &p), -1);
    ASSERT_EQ(gi_parse_passwd_line(":x:1:1::/:", &p), -1);
    ASSERT_EQ(gi_parse_passwd_line("big:x:99999999999:0::/:", &p), -1);
}

/* Resolves spec inside root (a chroot in a child) and reports "uid gid home" or the error. */
static void resolve_in(const char *root, const char *spec, char *out, size_t size)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (chroot(root) < 0 || chdir("/") < 0)
            _exit(2);
        struct gi_user u;
        const char *why = NULL;
        if (gi_resolve_user(spec, &u, &why) < 0)
            dprintf(fds[1], "error: %s", why);
        else
            dprintf(fds[1], "%u %u %s", u.uid, u.gid, u.home);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], out, size - 1);
    out[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_resolve(void)
{
    if (geteuid() != 0) {
        printf("   (resolution tests need root for chroot)\n");
        return;
    }
    char root[] = "/tmp/warren-user-XXXXXX";
    ASSERT(mkdtemp(root));
    char etc[64], path[96];
    snprintf(etc, sizeof(etc), "%s/etc", root);
    ASSERT_EQ(mkdir(etc, 0755), 0);
    snprintf(path, sizeof(path), "%s/passwd", etc);
    ASSERT_EQ(
        wr_write_file_atomic(
            path, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", 64, 0644),
        0);
    snprintf(path, sizeof(path), "%s/group", etc);
    ASSERT_EQ(wr_write_file_atomic(path, "root:x:0:\nstaff:x:50:app\n", 25, 0644), 0);
    char out[256];
    resolve_in(root, "app", out, sizeof(out));
    ASSERT_STREQ(out, "1000 1000 /home/app");
    resolve_in(root, "app:staff", out, sizeof(out));
    ASSERT_STREQ(out, "1000 50 /home/app");
    resolve_in(root, "1000:7", out, sizeof(out));
    ASSERT_STREQ(out, "1000 7 /home/app");
    resolve_in(root, "4242", out, sizeof(out));
    ASSERT_STREQ(out, "4242 0 ");
    resolve_in(root, "nobody-here", out, sizeof(out));
    ASSERT(strstr(out, "error: no such user"));
    resolve_in(root, "app:nogroup", out, sizeof(out));
    ASSERT(strstr(out, "error: no such group"));
    ASSERT_EQ(wr_rm_rf(root), 0);
}

int main(void)
{
    RUN(test_parse_lines);
    RUN(test_resolve);
    return 0;
}
