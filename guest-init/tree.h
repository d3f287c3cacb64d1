/* Directory trees on paths (guest-init/tree.c): listing, making, renaming and removing,
 * without the connection, so that unit tests can run them. Every function returns 0 or
 * -errno. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

#define GI_TREE_WORKSPACE "/workspace"
/* Names read from one directory of a listing; a bigger directory is listed in part. */
#define GI_TREE_MAX_NAMES 100000u

struct gi_tree_entry {
    const char *path;        /* relative to the listed directory, '/'-separated */
    uint32_t type;           /* (st_mode & S_IFMT) >> 12: DT_REG 8, DT_DIR 4, DT_LNK 10 */
    uint64_t size;           /* lstat's: a symlink's is its target's length */
    uint32_t mode;           /* st_mode, type bits included */
    int64_t mtime;           /* seconds since the epoch */
    const char *link_target; /* a symlink's target, or NULL */
    uint32_t uid, gid;
};

/* Called for each entry (valid during the call); <0 stops the listing (*truncated). */
typedef int (*gi_tree_cb)(void *data, const struct gi_tree_entry *e);

/* Lists dir depth-first, each directory's names sorted (strcmp), down to depth levels
 * (1: its own entries only). Symlinks are reported, not followed. *ret_truncated tells
 * that entries were left out (cb stopped it, or a directory had more than
 * GI_TREE_MAX_NAMES). Only dir itself failing is an error; unreadable directories below
 * are listed, not entered. */
int gi_tree_list(const char *dir, unsigned depth, gi_tree_cb cb, void *data, bool *ret_truncated);

/* 0 when the absolute path may be removed: -EPERM for "/" and /workspace (also when
 * reached through symlinks of the directories above), -EINVAL for a relative path or one
 * with a ".." component. *ret_normalized (may be NULL; the caller frees it) is its
 * lexical form: no "." components, no repeated or trailing slashes. */
int gi_tree_removable(const char *path, char **ret_normalized);
/* Removes (the lexical form of) path: a file, a symlink (never its target: "link/." is
 * the link) or, with recursive, a directory and everything below it (not crossing into
 * other mounts). A directory without recursive is -EISDIR. */
int gi_tree_remove(const char *path, bool recursive);
/* mkdir, or mkdir -p with parents (an existing directory is then fine). */
int gi_tree_make_dir(const char *path, mode_t mode, bool parents);
/* rename; without overwrite an existing target is -EEXIST (RENAME_NOREPLACE, or a check
 * first where the file system lacks it). */
int gi_tree_rename(const char *from, const char *to, bool overwrite);
