/* envd's process.Process service. */
#include "e2b-internal.h"

const struct e2b_method e2b_process_methods[] = {
    {NULL},
};
