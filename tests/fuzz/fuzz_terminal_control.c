/* libFuzzer target for the terminal WebSocket's control messages (mcp/web/terminal-control.c):
 * arbitrary text from a browser. A message is either refused with a reason, or one of the
 * known types with every number in its range. */
#include <stdint.h>
#include <string.h>

#include "mcp/web/terminal-control.h"
#include "vmm/vmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct term_control c = {.type = 99};
    struct wr_error *err = NULL;
    int r = mcp_term_control_parse((const char *)data, size, &c, &err);
    if (r < 0) {
        if (!err || !err->msg[0] || c.type != 99)
            __builtin_trap();
        wr_error_free(err);
        return 0;
    }
    if (err)
        __builtin_trap();
    switch (c.type) {
    case TERM_CONTROL_RESIZE:
        if (c.rows < 1 || c.rows > VMM_PTY_DIM_MAX || c.cols < 1 || c.cols > VMM_PTY_DIM_MAX)
            __builtin_trap();
        break;
    case TERM_CONTROL_ACK:
        if (c.bytes > 4ull * VMM_PTY_WINDOW)
            __builtin_trap();
        break;
    case TERM_CONTROL_CLOSE:
        break;
    default:
        __builtin_trap();
    }
    return 0;
}
