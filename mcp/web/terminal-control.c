/* The terminal WebSocket's control messages: JSON objects with a "type" and that type's
 * numbers, each checked against its range before it reaches a PTY. */
#include <cjson/cJSON.h>
#include <string.h>

#include "terminal-control.h"
#include "vmm/vmm.h"

static void json_freep(cJSON **j)
{
    cJSON_Delete(*j);
}

static double number(const cJSON *m, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, key)); /* NaN if absent */
}

int mcp_term_control_parse(const char *text, size_t len, struct term_control *ret,
                           struct wr_error **err)
{
    _cleanup_(json_freep) cJSON *m = cJSON_ParseWithLength(text, len);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "type"));
    if (!cJSON_IsObject(m) || !type)
        return wr_error_set(err, EINVAL, "a control message is JSON with a type");
    if (!strcmp(type, "resize")) {
        double rows = number(m, "rows"), cols = number(m, "cols");
        if (!(rows >= 1 && rows <= VMM_PTY_DIM_MAX && cols >= 1 && cols <= VMM_PTY_DIM_MAX))
            return wr_error_set(err, EINVAL, "rows and cols are 1 to %d", VMM_PTY_DIM_MAX);
        *ret = (struct term_control){
            .type = TERM_CONTROL_RESIZE, .rows = (unsigned)rows, .cols = (unsigned)cols};
    } else if (!strcmp(type, "ack")) {
        double bytes = number(m, "bytes");
        if (!(bytes >= 0 && bytes <= VMM_PTY_WINDOW * 4.0))
            return wr_error_set(err, EINVAL, "ack takes the bytes drawn");
        *ret = (struct term_control){.type = TERM_CONTROL_ACK, .bytes = (uint64_t)bytes};
    } else if (!strcmp(type, "close")) {
        *ret = (struct term_control){.type = TERM_CONTROL_CLOSE};
    } else {
        return wr_error_set(err, EINVAL, "unknown control message '%.40s'", type);
    }
    return 0;
}
