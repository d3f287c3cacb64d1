/* util/fs.c: files written by replacement into directories a sandbox may write. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util/util.h"

/* Whatever sits at the temporary name (a symlink planted toward another file) is
 * replaced, never written through. */
static void test_replace_ignores_planted_tmp(void)
{
    char dir[] = "/tmp/warren-test-fs-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    _cleanup_free_ char *victim = wr_path_join(dir, "victim");
    _cleanup_free_ char *path = wr_path_join(dir, "hostname");
    ASSERT_EQ(wr_write_file_replace(victim, "keep\n", 5, 0644), 0);
    _cleanup_free_ char *tmp = wr_asprintf("%s.tmp.%d", path, (int)getpid());
    ASSERT_EQ(symlink(victim, tmp), 0);
    ASSERT_EQ(wr_write_file_replace(path, "new\n", 4, 0644), 0);
    _cleanup_free_ char *text = NULL;
    size_t len;
    ASSERT_EQ(wr_read_file(victim, 64, &text, &len), 0);
    ASSERT_STREQ(text, "keep\n");
    free(TAKE_PTR(text));
    ASSERT_EQ(wr_read_file(path, 64, &text, &len), 0);
    ASSERT_STREQ(text, "new\n");
    struct stat st;
    ASSERT_EQ(lstat(path, &st), 0);
    ASSERT(S_ISREG(st.st_mode));
    /* The same through the fsync'ing variant. */
    ASSERT_EQ(symlink(victim, tmp), 0);
    ASSERT_EQ(wr_write_file_atomic(path, "again\n", 6, 0644), 0);
    free(TAKE_PTR(text));
    ASSERT_EQ(wr_read_file(victim, 64, &text, &len), 0);
    ASSERT_STREQ(text, "keep\n");
    ASSERT_EQ(wr_rm_rf(dir), 0);
}

int main(void)
{
    RUN(test_replace_ignores_planted_tmp);
    return 0;
}
