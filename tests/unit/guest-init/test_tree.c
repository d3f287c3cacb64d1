/* Directory trees of LIST_DIR, MKDIR, RENAME and REMOVE (guest-init/tree.c), in a
 * temporary directory of the test's own. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-init/tree.h"
#include "test.h"

static char root[64];

static void touch(const char *rel, const char *text)
{
    _cleanup_free_ char *p = wr_path_join(root, rel);
    ASSERT_EQ(wr_write_file_replace(p, text, strlen(text), 0644), 0);
}

static char *at(const char *rel)
{
    return wr_path_join(root, rel);
}

struct collected {
    char text[4096];
    size_t n, stop_after;
};

static int collect(void *data, const struct gi_tree_entry *e)
{
    struct collected *c = data;
    if (c->stop_after && c->n == c->stop_after)
        return -1;
    c->n++;
    char kind = e->type == 4 ? 'd' : e->type == 10 ? 'l' : 'f';
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof(c->text) - len, "%c:%s%s%s;", kind, e->path,
             e->link_target ? "->" : "", e->link_target ? e->link_target : "");
    return 0;
}

static void test_list(void)
{
    _cleanup_free_ char *b = at("b"), *bc = at("b/c"), *link = at("b/link");
    ASSERT_EQ(mkdir(b, 0755), 0);
    ASSERT_EQ(mkdir(bc, 0755), 0);
    touch("a.txt", "hello");
    touch("b/c/deep.txt", "x");
    touch("b/z", "z");
    ASSERT_EQ(symlink("/etc", link), 0);
    struct collected c = {0};
    bool truncated = true;
    ASSERT_EQ(gi_tree_list(root, 1, collect, &c, &truncated), 0);
    ASSERT_STREQ(c.text, "f:a.txt;d:b;");
    ASSERT(!truncated);
    c = (struct collected){0};
    ASSERT_EQ(gi_tree_list(root, 3, collect, &c, &truncated), 0);
    ASSERT_STREQ(c.text, "f:a.txt;d:b;d:b/c;f:b/c/deep.txt;l:b/link->/etc;f:b/z;");
    c = (struct collected){0};
    ASSERT_EQ(gi_tree_list(root, 2, collect, &c, &truncated), 0);
    ASSERT_STREQ(c.text, "f:a.txt;d:b;d:b/c;l:b/link->/etc;f:b/z;");
    c = (struct collected){.stop_after = 2};
    ASSERT_EQ(gi_tree_list(root, 3, collect, &c, &truncated), 0);
    ASSERT_STREQ(c.text, "f:a.txt;d:b;");
    ASSERT(truncated);
    _cleanup_free_ char *missing = at("missing");
    ASSERT_EQ(gi_tree_list(missing, 1, collect, &c, &truncated), -ENOENT);
}

static void test_make_rename_remove(void)
{
    _cleanup_free_ char *deep = at("m/n/o"), *m = at("m"), *m2 = at("m2"), *a = at("a.txt");
    _cleanup_free_ char *b = at("b"), *link = at("b/link"), *bz = at("b/z");
    ASSERT_EQ(gi_tree_make_dir(deep, 0755, false), -ENOENT);
    ASSERT_EQ(gi_tree_make_dir(deep, 0755, true), 0);
    ASSERT_EQ(gi_tree_make_dir(deep, 0755, true), 0);
    ASSERT_EQ(gi_tree_make_dir(deep, 0755, false), -EEXIST);
    ASSERT_EQ(gi_tree_rename(m, b, false), -EEXIST);
    ASSERT_EQ(gi_tree_rename(m, m2, false), 0);
    ASSERT_EQ(access(m, F_OK), -1);
    touch("other.txt", "o");
    _cleanup_free_ char *other = at("other.txt");
    ASSERT_EQ(gi_tree_rename(other, a, false), -EEXIST);
    ASSERT_EQ(gi_tree_rename(other, a, true), 0);
    ASSERT_EQ(gi_tree_remove(m2, false), -EISDIR);
    ASSERT_EQ(gi_tree_remove(m2, true), 0);
    ASSERT_EQ(access(m2, F_OK), -1);
    ASSERT_EQ(gi_tree_remove(link, false), 0); /* the link, not /etc */
    ASSERT_EQ(access("/etc/passwd", F_OK), 0);
    ASSERT_EQ(gi_tree_remove(bz, false), 0);
    ASSERT_EQ(gi_tree_remove(bz, false), -ENOENT);
}

static void test_removable(void)
{
    ASSERT_EQ(gi_tree_removable("/", NULL), -EPERM);
    ASSERT_EQ(gi_tree_removable("//", NULL), -EPERM);
    ASSERT_EQ(gi_tree_removable("/workspace", NULL), -EPERM);
    ASSERT_EQ(gi_tree_removable("/workspace/", NULL), -EPERM);
    ASSERT_EQ(gi_tree_removable("/workspace/./.", NULL), -EPERM);
    ASSERT_EQ(gi_tree_removable("/./workspace", NULL), -EPERM);
    ASSERT_EQ(gi_tree_removable("/workspace/a/..", NULL), -EINVAL);
    ASSERT_EQ(gi_tree_removable("relative", NULL), -EINVAL);
    _cleanup_free_ char *ok = at("a.txt");
    ASSERT_EQ(gi_tree_removable(ok, NULL), 0);
    /* A symlink to / above a name: the name's real place is checked. "up/." is the link. */
    _cleanup_free_ char *up = at("up"), *via = at("up/.");
    ASSERT_EQ(symlink("/", up), 0);
    ASSERT_EQ(gi_tree_removable(via, NULL), 0);
    _cleanup_free_ char *ws = at("up/workspace");
    ASSERT_EQ(gi_tree_removable(ws, NULL), -EPERM);
    ASSERT_EQ(gi_tree_remove(via, true), 0); /* the link, not / */
    ASSERT_EQ(access("/etc/passwd", F_OK), 0);
    ASSERT_EQ(access(up, F_OK), -1);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/test_tree.XXXXXX");
    ASSERT(mkdtemp(root));
    RUN(test_list);
    RUN(test_make_rename_remove);
    RUN(test_removable);
    ASSERT_EQ(wr_rm_rf(root), 0);
    return 0;
}
