/* vmm/disk.c: mountinfo lines, and (as root, where loop devices and mkfs.ext4 are there) a
 * disk made from its template, mounted, filled to ENOSPC, measured and released. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "vmm/disk.h"

static void test_mountinfo_line(void)
{
    char *point = NULL;
    ASSERT(vmm_disk_mountinfo_line(
        "61 26 7:3 / /var/lib/warren/sandboxes/0123456789abcdef/disk rw,nosuid,nodev shared:1 - "
        "ext4 /dev/loop3 rw,discard",
        &point));
    ASSERT_STREQ(point, "/var/lib/warren/sandboxes/0123456789abcdef/disk");
    free(point);
    ASSERT(vmm_disk_mountinfo_line("70 26 7:4 / /tmp/a\\040b/layers/snap/x/disk ro - ext4 "
                                   "/dev/loop4 ro",
                                   &point));
    ASSERT_STREQ(point, "/tmp/a b/layers/snap/x/disk");
    free(point);
    /* Not a disk: another filesystem, another source, another name. */
    ASSERT(!vmm_disk_mountinfo_line("1 2 0:5 / /x/disk rw - overlay overlay rw", &point));
    ASSERT(!vmm_disk_mountinfo_line("1 2 8:1 / /x/disk rw - ext4 /dev/sda1 rw", &point));
    ASSERT(!vmm_disk_mountinfo_line("1 2 7:1 / /x/disks rw - ext4 /dev/loop1 rw", &point));
    ASSERT(!vmm_disk_mountinfo_line("garbage", &point));
}

static void test_disk_lifecycle(void)
{
    if (!vmm_disk_available(NULL)) {
        fprintf(stderr, "skipping the disk lifecycle: disks cannot be made here\n");
        return;
    }
    char dir[] = "/tmp/warren-test-disk-XXXXXX";
    ASSERT(mkdtemp(dir));
    char *templates = wr_path_join(dir, "templates");
    char *image = wr_path_join(dir, "disk.img");
    char *mount = wr_path_join(dir, "disk");
    struct wr_error *err = NULL;
    ASSERT_EQ(vmm_disk_create(templates, image, 64, &err), 0);
    ASSERT_EQ(vmm_disk_create(templates, image, 64, &err), -EEXIST);
    wr_error_free(TAKE_PTR(err));
    struct stat st;
    ASSERT_EQ(stat(image, &st), 0);
    ASSERT_EQ(st.st_size, 64 << 20);
    ASSERT((uint64_t)st.st_blocks * 512 < (8u << 20)); /* sparse */
    ASSERT_EQ(vmm_disk_mount(image, mount, false, &err), 0);
    ASSERT(vmm_disk_is_mounted(mount));
    ASSERT_EQ(vmm_disk_mount(image, mount, false, &err), 0); /* mounted already: nothing */
    /* Filled: ENOSPC before 64 MiB. */
    char *file = wr_path_join(mount, "fill");
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT(fd >= 0);
    static char block[1 << 20];
    size_t written = 0;
    int r;
    while ((r = wr_write_all(fd, block, sizeof(block))) == 0)
        written += sizeof(block);
    ASSERT_EQ(r, -ENOSPC);
    ASSERT(written > (48u << 20) && written < (64u << 20));
    close(fd);
    uint64_t used = 0;
    ASSERT_EQ(vmm_disk_used(mount, &used), 0);
    ASSERT(used >= written);
    ASSERT_EQ(vmm_disk_unmount(mount, true, &err), 0);
    ASSERT(!vmm_disk_is_mounted(mount));
    ASSERT_EQ(vmm_disk_unmount(mount, true, &err), 0); /* not mounted: nothing */
    /* Read-only, as a snapshot layer: the file is there, nothing can be written. */
    ASSERT_EQ(vmm_disk_mount(image, mount, true, &err), 0);
    ASSERT_EQ(stat(file, &st), 0);
    ASSERT_EQ((size_t)st.st_size, written);
    ASSERT(open(file, O_WRONLY | O_CLOEXEC) < 0 && errno == EROFS);
    ASSERT_EQ(vmm_disk_unmount(mount, false, &err), 0);
    ASSERT_EQ(wr_rm_rf(dir), 0);
    free(file);
    free(templates);
    free(image);
    free(mount);
}

int main(void)
{
    RUN(test_mountinfo_line);
    RUN(test_disk_lifecycle);
    return 0;
}
