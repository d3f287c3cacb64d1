/* Tests of vmm/backends/guest-image.c: the initramfs is a well-formed newc cpio with the layout
 * guest-init expects, is reused while its inputs stay the same, rebuilt (and the old
 * one removed) when they change, and missing inputs give errors that say what to run.
 * The archive is parsed here by a reader written from the format, and by cpio(1) when
 * it is installed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "vmm/backends/guest-image.h"

static char tmpdir[] = "/tmp/warren-test-guest-image-XXXXXX";
static char kernel_dir[512], state_dir[512], init_path[512];

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

static void put_file(const char *path, const char *content)
{
    ASSERT_EQ(wr_write_file_atomic(path, content, strlen(content), 0644), 0);
}

/* ---- a newc reader ------------------------------------------------------------------ */

struct entry {
    char name[256];
    uint32_t mode, rdev_major, rdev_minor;
    const char *data;
    size_t size;
};

static uint32_t hex_field(const char *p)
{
    char f[9];
    memcpy(f, p, 8);
    f[8] = '\0';
    return (uint32_t)strtoul(f, NULL, 16);
}

static size_t align4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

/* Parses every entry of the archive into out (max entries); returns the count. */
static size_t parse_cpio(const char *a, size_t len, struct entry *out, size_t max)
{
    size_t pos = 0, n = 0;
    for (;;) {
        ASSERT(pos + 110 <= len);
        ASSERT(memcmp(a + pos, "070701", 6) == 0);
        const char *h = a + pos + 6;
        struct entry e = {.mode = hex_field(h + 8), .size = hex_field(h + 48)};
        e.rdev_major = hex_field(h + 72);
        e.rdev_minor = hex_field(h + 80);
        size_t name_size = hex_field(h + 88);
        ASSERT(name_size > 0 && name_size < sizeof(e.name));
        ASSERT(pos + 110 + name_size <= len);
        memcpy(e.name, a + pos + 110, name_size);
        ASSERT(e.name[name_size - 1] == '\0');
        pos = align4(pos + 110 + name_size);
        e.data = a + pos;
        ASSERT(pos + e.size <= len);
        pos = align4(pos + e.size);
        if (!strcmp(e.name, "TRAILER!!!")) {
            ASSERT(pos == len);
            return n;
        }
        ASSERT(n < max);
        out[n++] = e;
    }
}

static const struct entry *find(const struct entry *es, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(es[i].name, name))
            return &es[i];
    return NULL;
}

/* ---- setup ------------------------------------------------------------------------- */

static void make_kernel_dir(void)
{
    snprintf(kernel_dir, sizeof(kernel_dir), "%s/guest", tmpdir);
    ASSERT_EQ(wr_mkdir_p(path_in(kernel_dir, "modules"), 0755), 0);
    put_file(path_in(kernel_dir, "vmlinuz"), "not really a bzImage");
    put_file(path_in(kernel_dir, "VERSION"), "linux-image-test 1.0\n");
    put_file(path_in(kernel_dir, "modules/order"), "virtio_ring\n# comment\n\nvirtio\n");
    put_file(path_in(kernel_dir, "modules/virtio_ring.ko"), "RING");
    put_file(path_in(kernel_dir, "modules/virtio.ko"), "VIRTIO-MODULE");
    snprintf(init_path, sizeof(init_path), "%s/guest-init", tmpdir);
    put_file(init_path, "#!/bin/false\nguest-init v1\n");
    snprintf(state_dir, sizeof(state_dir), "%s/state", tmpdir);
}

static size_t count_initrds(void)
{
    DIR *d = opendir(path_in(state_dir, "guest"));
    size_t n = 0;
    ASSERT(d);
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void build(char **kernel, char **initrd)
{
    struct wr_error *err = NULL;
    int r = vmm_guest_image(state_dir, init_path, kernel_dir, kernel, initrd, &err);
    if (r < 0)
        fprintf(stderr, "vmm_guest_image: %s\n", err->msg);
    ASSERT_EQ(r, 0);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_layout(void)
{
    _cleanup_free_ char *kernel = NULL, *initrd = NULL, *archive = NULL;
    build(&kernel, &initrd);
    ASSERT_STREQ(kernel, path_in(kernel_dir, "vmlinuz"));
    ASSERT(strstr(initrd, "/state/guest/initrd-") && strstr(initrd, ".cpio"));
    size_t len;
    ASSERT_EQ(wr_read_file(initrd, 1 << 20, &archive, &len), 0);
    struct entry es[32];
    size_t n = parse_cpio(archive, len, es, 32);
    const struct entry *init = find(es, n, "init");
    ASSERT(init && S_ISREG(init->mode) && (init->mode & 0777) == 0755);
    static const char init_content[] = "#!/bin/false\nguest-init v1\n";
    ASSERT(init->size == strlen(init_content) && !memcmp(init->data, init_content, init->size));
    const struct entry *ko = find(es, n, "lib/modules/virtio.ko");
    ASSERT(ko && ko->size == 13 && !memcmp(ko->data, "VIRTIO-MODULE", 13));
    ASSERT(find(es, n, "lib/modules/virtio_ring.ko"));
    const struct entry *order = find(es, n, "lib/modules/order");
    ASSERT(order && order->size == strlen("virtio_ring\n# comment\n\nvirtio\n"));
    const struct entry *console = find(es, n, "dev/console");
    ASSERT(console && S_ISCHR(console->mode) && console->rdev_major == 5 &&
           console->rdev_minor == 1);
    static const char *const dirs[] = {"dev", "proc", "sys", "newroot", "tmp", "lib/modules"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(dirs); i++) {
        const struct entry *d = find(es, n, dirs[i]);
        ASSERT(d && S_ISDIR(d->mode));
    }
}

/* cpio(1), when installed, agrees that the archive is well formed. */
static void test_cpio_tool(void)
{
    if (system("command -v cpio >/dev/null 2>&1") != 0) {
        fprintf(stderr, "   (cpio not installed: skipped)\n");
        return;
    }
    _cleanup_free_ char *kernel = NULL, *initrd = NULL;
    build(&kernel, &initrd);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cpio -it --quiet < '%s' | grep -qx lib/modules/virtio.ko", initrd);
    ASSERT_EQ(system(cmd), 0);
}

static void test_reuse_and_rebuild(void)
{
    _cleanup_free_ char *k1 = NULL, *i1 = NULL, *k2 = NULL, *i2 = NULL, *k3 = NULL, *i3 = NULL;
    build(&k1, &i1);
    struct stat st1, st2;
    ASSERT_EQ(stat(i1, &st1), 0);
    build(&k2, &i2);
    ASSERT_STREQ(i1, i2);
    ASSERT_EQ(stat(i2, &st2), 0);
    ASSERT_EQ(st1.st_ino, st2.st_ino); /* reused, not rewritten */
    /* A new guest-init is a new key; the old initramfs goes away. */
    put_file(init_path, "#!/bin/false\nguest-init v2\n");
    build(&k3, &i3);
    ASSERT(strcmp(i1, i3) != 0);
    ASSERT(access(i1, F_OK) < 0);
    ASSERT_EQ(count_initrds(), 1);
    /* So is a new kernel package. */
    _cleanup_free_ char *k4 = NULL, *i4 = NULL;
    put_file(path_in(kernel_dir, "VERSION"), "linux-image-test 2.0\n");
    build(&k4, &i4);
    ASSERT(strcmp(i3, i4) != 0);
    ASSERT_EQ(count_initrds(), 1);
}

static void expect_error(int status, const char *fragment)
{
    char *kernel = NULL, *initrd = NULL;
    struct wr_error *err = NULL;
    ASSERT(vmm_guest_image(state_dir, init_path, kernel_dir, &kernel, &initrd, &err) < 0);
    ASSERT(!kernel && !initrd);
    if (!strstr(err->msg, fragment) || err->status != status)
        fprintf(stderr, "unexpected error %d: %s\n", err->status, err->msg);
    ASSERT(strstr(err->msg, fragment));
    ASSERT_EQ(err->status, status);
    wr_error_free(err);
}

static void test_errors(void)
{
    put_file(path_in(kernel_dir, "modules/order"), "virtio\n../../etc/passwd\n");
    expect_error(EINVAL, "bad module name");
    put_file(path_in(kernel_dir, "modules/order"), "virtio\nnot_there\n");
    expect_error(ENOENT, "not_there.ko");
    put_file(path_in(kernel_dir, "modules/order"), "virtio\n");
    unlink(path_in(kernel_dir, "VERSION"));
    expect_error(ENOENT, "run tools/build-guest-kernel.sh");
    unlink(path_in(kernel_dir, "vmlinuz"));
    expect_error(ENOENT, "guest kernel not found in");
    put_file(path_in(kernel_dir, "vmlinuz"), "x");
    put_file(path_in(kernel_dir, "VERSION"), "v");
    unlink(init_path);
    expect_error(ENOENT, "guest-init");
}

static void test_kernel_dir_default(void)
{
    unsetenv("WARREN_GUEST_DIR");
    _cleanup_free_ char *a = vmm_guest_kernel_dir("/opt/warren/bin");
    ASSERT_STREQ(a, "/opt/warren/bin/guest");
    setenv("WARREN_GUEST_DIR", "/srv/guest", 1);
    _cleanup_free_ char *b = vmm_guest_kernel_dir("/opt/warren/bin");
    ASSERT_STREQ(b, "/srv/guest");
    unsetenv("WARREN_GUEST_DIR");
    /* An installed warren (in WARREN_BINDIR) uses the installed kernel directory. */
    ASSERT(vmm_binary_dir_is_installed(WARREN_BINDIR));
    ASSERT(!vmm_binary_dir_is_installed("/opt/warren/bin"));
    _cleanup_free_ char *c = vmm_guest_kernel_dir(WARREN_BINDIR);
    ASSERT_STREQ(c, WARREN_GUEST_KERNEL_DIR);
}

int main(void)
{
    ASSERT(mkdtemp(tmpdir));
    make_kernel_dir();
    RUN(test_layout);
    RUN(test_cpio_tool);
    RUN(test_reuse_and_rebuild);
    RUN(test_errors);
    RUN(test_kernel_dir_default);
    wr_rm_rf(tmpdir);
    fprintf(stderr, "all guest image tests passed\n");
    return 0;
}
