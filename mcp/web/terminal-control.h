/* mcp/web/terminal-control.c: the terminal WebSocket's control messages (docs/terminal.md),
 * text from the browser, decoded by a pure function that a fuzzer drives too. */
#pragma once

#include <stdint.h>

#include "util/util.h"

enum term_control_type {
    TERM_CONTROL_RESIZE, /* rows, cols: 1..VMM_PTY_DIM_MAX */
    TERM_CONTROL_ACK,    /* bytes drawn: 0..4 * VMM_PTY_WINDOW */
    TERM_CONTROL_CLOSE,  /* end the session and the socket */
};

struct term_control {
    enum term_control_type type;
    unsigned rows, cols;
    uint64_t bytes;
};

/* Decodes one control message (text, len; need not end with NUL). On failure *err says
 * what is wrong in words the browser can show, and *ret is untouched. */
int mcp_term_control_parse(const char *text, size_t len, struct term_control *ret,
                           struct wr_error **err);
