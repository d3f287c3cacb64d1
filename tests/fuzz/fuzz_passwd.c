/* libFuzzer target for guest-init's /etc/passwd and /etc/group line parser
 * (guest-init/user.c), which reads files an image (or the agent) controls. */
#include <stdint.h>
#include <string.h>

#include "guest-init/guest-init.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = wr_strndup((const char *)data, size);
    struct gi_passwd p;
    if (gi_parse_passwd_line(line, &p) == 0 &&
        (!p.name[0] || strlen(p.name) >= sizeof(p.name) || strlen(p.home) >= sizeof(p.home) ||
         strchr(p.name, ':') || strchr(p.name, '\n')))
        __builtin_trap();
    free(line);
    return 0;
}
