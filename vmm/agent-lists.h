/* vmm/agent-lists.c: decoding the agent's list payloads (a LIST_DIR's DIR_ENTRIES frames,
 * a PTY_LIST's RESULT), bytes that come from inside a sandbox. Pure functions with no
 * connection or I/O, so that a fuzzer drives them exactly as the agent client does. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "guest-init/proto.h"

/* A listing's entries kept at most: GI_LIST_MAX_BYTES from the guest, and some room. */
#define AGENT_LIST_MAX_BYTES (2u * GI_LIST_MAX_BYTES)

/* A listing as it arrives, over one or more DIR_ENTRIES frames. Set max (at most
 * GI_LIST_MAX_ENTRIES) and zero the rest before the first frame. */
struct agent_dir_list {
    struct agent_dir_entry *entries; /* owned; freed by agent_dir_list_clear */
    size_t n, max, bytes;            /* bytes: what the entries hold, capped */
    bool cut;                        /* entries were left out (a cap, or a bad name) */
};

/* Appends the entries of one DIR_ENTRIES payload (p, n): an ENTRY TLV starts an entry and
 * the TLVs after it fill it in. Entries past list->max or AGENT_LIST_MAX_BYTES, and names
 * with a NUL, are left out and list->cut is set. Returns -EPROTO on a malformed TLV list
 * (the entries decoded before it are kept). */
int agent_dir_list_decode(struct agent_dir_list *list, const uint8_t *p, size_t n);
void agent_dir_list_clear(struct agent_dir_list *list);

/* Decodes a PTY_LIST RESULT (p, n): one PTY_ENTRY TLV, itself a TLV list, per session,
 * into list (room for max); *ret_n is how many. Entries past max are ignored. Returns
 * -EPROTO on a malformed TLV list. */
int agent_pty_list_decode(const uint8_t *p, size_t n, struct agent_pty_info *list, size_t max,
                          size_t *ret_n);
