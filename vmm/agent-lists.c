/* Decoding the agent's list payloads: a directory listing's DIR_ENTRIES frames and a
 * PTY_LIST's RESULT. What a sandbox sends is not trusted: every TLV is bounds-checked by
 * the reader, every count and byte total is capped, and names keep no NUL. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent-lists.h"
#include "guest-init/proto.h"
#include "util/util.h"

/* Appends the entry an ENTRY TLV starts, or marks the listing cut. */
static bool dir_list_add(struct agent_dir_list *list, const struct gi_tlv *t)
{
    if (list->n >= list->max || list->bytes + t->len > AGENT_LIST_MAX_BYTES ||
        memchr(t->value, 0, t->len)) {
        list->cut = true;
        return false;
    }
    if (list->n % 256 == 0)
        list->entries = wr_realloc(list->entries, (list->n + 256) * sizeof(*list->entries));
    list->entries[list->n++] =
        (struct agent_dir_entry){.path = wr_strndup((const char *)t->value, t->len)};
    list->bytes += t->len + sizeof(struct agent_dir_entry);
    return true;
}

/* Fills in e from one of the TLVs that follow its ENTRY. */
static void dir_entry_field(struct agent_dir_list *list, struct agent_dir_entry *e,
                            const struct gi_tlv *t)
{
    uint64_t v = 0;
    if (t->tag == GI_T_LINK_TARGET && !e->link_target && t->len < 4096 &&
        list->bytes + t->len <= AGENT_LIST_MAX_BYTES && !memchr(t->value, 0, t->len)) {
        e->link_target = wr_strndup((const char *)t->value, t->len);
        list->bytes += t->len;
    } else if ((t->tag == GI_T_OWNER || t->tag == GI_T_GROUP) && t->len < 64 &&
               !memchr(t->value, 0, t->len)) {
        char *out = t->tag == GI_T_OWNER ? e->owner : e->group;
        memcpy(out, t->value, t->len);
        out[t->len] = 0;
    } else if (t->len == 8 && gi_tlv_u64(t, &v) == 0) {
        if (t->tag == GI_T_FILE_TYPE)
            e->type = (uint32_t)v;
        else if (t->tag == GI_T_SIZE)
            e->size = v;
        else if (t->tag == GI_T_MODE)
            e->mode = (uint32_t)v;
        else if (t->tag == GI_T_MTIME)
            e->mtime = (int64_t)v;
    }
}

int agent_dir_list_decode(struct agent_dir_list *list, const uint8_t *p, size_t n)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    bool current = false; /* the last ENTRY was kept: its fields go into the last entry */
    gi_reader_init(&rd, p, n);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag == GI_T_ENTRY)
            current = dir_list_add(list, &t);
        else if (current)
            dir_entry_field(list, &list->entries[list->n - 1], &t);
    }
    return r < 0 ? -EPROTO : 0;
}

void agent_dir_list_clear(struct agent_dir_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->entries[i].path);
        free(list->entries[i].link_target);
    }
    free(list->entries);
    *list = (struct agent_dir_list){.max = list->max};
}

/* One PTY_ENTRY's TLVs into e. A later TLV of a tag wins; an integer that is not 8 bytes
 * reads as 0 (as for every other result). */
static int pty_entry_decode(const uint8_t *p, size_t n, struct agent_pty_info *e)
{
    struct gi_reader rd;
    struct gi_tlv t;
    int r;
    *e = (struct agent_pty_info){0};
    gi_reader_init(&rd, p, n);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        uint64_t v = 0;
        if (t.len == 8)
            gi_tlv_u64(&t, &v);
        switch (t.tag) {
        case GI_T_PTY_ID:
            e->id = v;
            break;
        case GI_T_PID:
            e->pid = v;
            break;
        case GI_T_ROWS:
            e->rows = (unsigned)v;
            break;
        case GI_T_COLS:
            e->cols = (unsigned)v;
            break;
        case GI_T_PTY_RUNNING:
            e->running = v != 0;
            break;
        case GI_T_EXIT_CODE:
            e->exit_code = (int)(int64_t)v;
            break;
        case GI_T_SIGNAL:
            e->signal = (int)v;
            break;
        case GI_T_CREATED:
            e->created = (int64_t)v;
            break;
        case GI_T_ARG:
            snprintf(e->argv0, sizeof(e->argv0), "%.*s", (int)WR_MIN(t.len, sizeof(e->argv0)),
                     (const char *)t.value);
            break;
        case GI_T_PIPES:
            e->pipes = v != 0;
            break;
        case GI_T_TAG:
            /* A tag longer than the cap, or with a NUL, is not one: none. */
            if (t.len <= GI_PROC_TAG_MAX && !memchr(t.value, 0, t.len))
                snprintf(e->tag, sizeof(e->tag), "%.*s", (int)t.len, (const char *)t.value);
            break;
        case GI_T_HOST_DATA:
            /* Points into p: valid while the caller's payload is. */
            if (t.len <= GI_PROC_HOST_DATA_MAX) {
                e->host_data = t.value;
                e->host_data_len = t.len;
            }
            break;
        default:
            break;
        }
    }
    return r < 0 ? -EPROTO : 0;
}

int agent_pty_list_decode(const uint8_t *p, size_t n, struct agent_pty_info *list, size_t max,
                          size_t *ret_n)
{
    struct gi_reader rd;
    struct gi_tlv t;
    size_t count = 0;
    int r;
    gi_reader_init(&rd, p, n);
    while ((r = gi_reader_next(&rd, &t)) > 0) {
        if (t.tag != GI_T_PTY_ENTRY || count == max)
            continue;
        if (pty_entry_decode(t.value, t.len, &list[count++]) < 0)
            return -EPROTO;
    }
    *ret_n = count;
    return r < 0 ? -EPROTO : 0;
}
