/* OCI images: pulled with skopeo into one OCI layout under <state>/images/oci (blobs stored
 * once, by digest, whatever image they belong to), each layer unpacked once with bsdtar
 * (libarchive: no path escapes, no writes through symlinks) into
 * <state>/images/layers/<digest>, its OCI whiteouts turned into overlayfs whiteouts, to be
 * a read-only lower of every sandbox, template and snapshot built on it. Blocking: call
 * from the libuv thread pool. */
#pragma once

#include <stdint.h>

#include "util/util.h"

/* The longest image reference accepted. */
#define OCI_MAX_REF 255

struct oci_pull_request {
    const char *state_dir;
    const char *name; /* normalized reference (oci_normalize_ref) */
    /* Registries ("host[:port]") that may be reached over plain HTTP; NULL-terminated. */
    const char *const *insecure_registries;
    const char *auth_file; /* a containers auth.json; NULL: skopeo's own default */
    /* Progress lines (skopeo's, then one per unpacked layer), from the worker thread. */
    void (*progress)(void *data, const char *message);
    void *data;
};

struct oci_image {
    char *digest;      /* of the manifest, "sha256:<hex>" */
    char **layers;     /* layer digests, bottom first (NULL-terminated) */
    char *config_json; /* {"env": [...], "workdir": "...", "user": "..."} */
    uint64_t size_bytes;
};
void oci_image_clear(struct oci_image *image);

/* Checks ref (a docker reference: [registry[:port]/]path[:tag][@sha256:...]) and returns it
 * in full: a missing registry is docker.io (with library/ for a single name), a missing tag
 * :latest. EINVAL with a message saying what is wrong. */
int oci_normalize_ref(const char *ref, char **ret, struct wr_error **err);

/* Copies the image into the layout and unpacks its layers that are not unpacked yet. */
int oci_pull(const struct oci_pull_request *req, struct oci_image *ret, struct wr_error **err);

/* <state>/images/layers/<hex> of a layer digest; caller frees. */
char *oci_layer_dir(const char *state_dir, const char *digest);

/* Forgets every image of the layout but the manifests in keep (digests, NULL-terminated),
 * and removes the blobs and unpacked layers none of those uses. Best effort. */
void oci_collect_garbage(const char *state_dir, const char *const *keep);
