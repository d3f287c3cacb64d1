/* libFuzzer target for image references (vmm/images/oci.c): arbitrary text through the
 * check and normalization every image_pull and sandbox_create {image} runs first; what is
 * accepted must come out as a reference skopeo can take and warren can store. */
#include <stdint.h>
#include <string.h>

#include "vmm/images/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = wr_strndup((const char *)data, size);
    char *name = NULL;
    struct wr_error *err = NULL;
    if (oci_normalize_ref(text, &name, &err) == 0) {
        /* Accepted: no option-like start, no whitespace, a registry and a tag or digest. */
        if (name[0] == '-' || strpbrk(name, " \t\n") || !strchr(name, '/') ||
            strlen(name) > OCI_MAX_REF + 32)
            __builtin_trap();
        char *again = NULL;
        struct wr_error *e2 = NULL;
        /* Normalizing is idempotent when the result fits the cap. */
        if (strlen(name) <= OCI_MAX_REF &&
            (oci_normalize_ref(name, &again, &e2) != 0 || strcmp(again, name) != 0))
            __builtin_trap();
        free(again);
        wr_error_free(e2);
    }
    free(name);
    wr_error_free(err);
    free(text);
    return 0;
}
