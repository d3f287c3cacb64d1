/* envd's filesystem.Filesystem service. */
#include "e2b-internal.h"

const struct e2b_method e2b_filesystem_methods[] = {
    {NULL},
};
