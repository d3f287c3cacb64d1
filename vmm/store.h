/* The state store: sqlite (WAL) in the state directory. Safe to open from several warren
 * processes at once (busy timeout, short transactions). Every function is synchronous;
 * each call is a single short transaction. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

struct store;

/* A sandbox row. Strings are owned by the struct (store_sandbox_clear frees them). */
struct store_sandbox {
    char *id;        /* 16 hex digits */
    char *name;      /* unique */
    char *backend;   /* "jail", "qemu", "cloud-hypervisor" */
    char *state;     /* "creating", "running", "stopped", "failed" */
    char *image;     /* "host" */
    char *repo;      /* host path, or NULL */
    char *ref;       /* as asked, or NULL */
    char *commit_id; /* resolved commit (40 hex), or NULL for a plain directory */
    char *ws_lower;  /* the workspace's read-only lower (checkout layer or the directory) */
    char *env_json;  /* JSON object of default env, or NULL */
    char *error;     /* why it failed/stopped, or NULL */
    /* Snapshot layers between the sandbox's own uppers and its base (the checkout or image):
     * JSON arrays of layer directories, top first; NULL when there are none. */
    char *ws_layers;
    char *root_layers;
    unsigned cpus;
    uint64_t memory_mib;
    int network;          /* enum vmm_net_mode: 0 none, 1 NAT, 2 allow-list */
    char *network_policy; /* the allow-list as JSON (vmm/net/policy.h), or NULL */
    int64_t ttl_seconds;  /* 0: none */
    int64_t created_at;  /* unix seconds */
    int64_t last_used_at;
    pid_t pid;          /* 0 when not running */
    uint64_t pid_start; /* start time of pid (wr_process_start_time), guards pid reuse */
    /* A warm pool's sandbox (vmm/pool.c): the pool it waits in; NULL for every sandbox
     * a client created or claimed. */
    char *pool;
    /* The size of its disk (vmm/disk.h); 0: none, its writes are not capped. */
    uint64_t disk_mib;
    /* What a client attached at create (E2B metadata): a JSON object of strings, or NULL. */
    char *metadata;
};

void store_sandbox_clear(struct store_sandbox *s);

/* Opens (creating and migrating) <state_dir>/warren.db. */
int store_open(const char *state_dir, struct store **ret, struct wr_error **err);
void store_close(struct store *st);

/* Inserts; EEXIST error when the id or name is taken. */
int store_sandbox_insert(struct store *st, const struct store_sandbox *s, struct wr_error **err);
/* Looks up by id or, failing that, by name (a pool's sandbox by its id only). ENOENT when
 * neither matches. */
int store_sandbox_get(struct store *st, const char *id_or_name, struct store_sandbox *ret,
                      struct wr_error **err);
/* All sandboxes (pools' not included), oldest first. *ret is an array of *ret_n entries; free each with
 * store_sandbox_clear and the array with free. */
int store_sandbox_list(struct store *st, struct store_sandbox **ret, size_t *ret_n,
                       struct wr_error **err);
/* The sandboxes waiting in pool `pool` (NULL: in every pool), oldest first; as
 * store_sandbox_list. */
int store_pool_list(struct store *st, const char *pool, struct store_sandbox **ret, size_t *ret_n,
                    struct wr_error **err);
/* Takes a pool's sandbox s->id out of its pool, giving it s's name, repo, ref, commit_id,
 * ws_lower, env_json, ttl_seconds, metadata and created_at (also last_used_at). Atomic across
 * processes: ENOENT when another claim won, EEXIST when the name is taken. */
int store_pool_claim(struct store *st, const struct store_sandbox *s, struct wr_error **err);
/* Updates state, pid, pid_start and error (NULL clears it). */
int store_sandbox_set_state(struct store *st, const char *id, const char *state, pid_t pid,
                            uint64_t pid_start, const char *error, struct wr_error **err);
int store_sandbox_touch(struct store *st, const char *id, int64_t now, struct wr_error **err);
/* The network mode and allow-list (sandbox_update). */
int store_sandbox_set_network(struct store *st, const char *id, int network, const char *policy,
                              struct wr_error **err);
/* ttl_seconds counts from created_at, as at create. */
int store_sandbox_set_ttl(struct store *st, const char *id, int64_t ttl_seconds,
                          struct wr_error **err);
int store_sandbox_delete(struct store *st, const char *id, struct wr_error **err);

/* Appends to the events table (an audit trail: created, exec, destroyed, ...). */
int store_event(struct store *st, const char *sandbox_id, const char *kind, const char *detail,
                struct wr_error **err);
struct store_event_row {
    int64_t id, at; /* at: unix seconds */
    char *kind, *detail;
    char *sandbox_id; /* store_events_since only */
};
void store_event_clear(struct store_event_row *e);
/* A sandbox's newest events (at most limit), oldest first; kind NULL for all, else that
 * kind and the kinds it prefixes with '-' ("egress": also "egress-refused"). Free each
 * with store_event_clear and the array with free. */
int store_event_list(struct store *st, const char *sandbox_id, const char *kind, size_t limit,
                     struct store_event_row **ret, size_t *ret_n, struct wr_error **err);
/* Every sandbox's events after after_id, oldest first, at most limit. */
int store_events_since(struct store *st, int64_t after_id, size_t limit,
                       struct store_event_row **ret, size_t *ret_n, struct wr_error **err);
/* Deletes all but the newest keep events. */
int store_events_prune(struct store *st, int64_t keep);
/* The newest event's id (0: none). */
int64_t store_event_last_id(struct store *st);

/* Replaces a sandbox's snapshot layer chains (JSON arrays, may be NULL). */
int store_sandbox_set_layers(struct store *st, const char *id, const char *ws_layers,
                             const char *root_layers, struct wr_error **err);

/* A snapshot: read-only layers that restore/fork start new sandboxes from. It outlives the
 * sandbox it was taken from. */
struct store_snapshot {
    char *id;
    char *name;       /* unique */
    char *sandbox_id; /* the sandbox it was taken from (which may be gone) */
    char *manifest;   /* JSON: the layer chains and what a restored sandbox starts from */
    bool memory;
    int64_t created_at;
};

void store_snapshot_clear(struct store_snapshot *s);
/* EEXIST error when the name is taken. */
int store_snapshot_insert(struct store *st, const struct store_snapshot *s, struct wr_error **err);
/* By id or, failing that, by name; ENOENT when neither matches. */
int store_snapshot_get(struct store *st, const char *id_or_name, struct store_snapshot *ret,
                       struct wr_error **err);
/* All snapshots, or those of one sandbox (sandbox_id non-NULL), oldest first. */
int store_snapshot_list(struct store *st, const char *sandbox_id, struct store_snapshot **ret,
                        size_t *ret_n, struct wr_error **err);
int store_snapshot_delete(struct store *st, const char *id, struct wr_error **err);

/* An OCI image pulled into the state directory (vmm/images/oci.h). */
struct store_image {
    char *name;   /* the normalized reference, unique */
    char *digest; /* of its manifest */
    char *layers; /* JSON array of layer digests, bottom first */
    char *config; /* JSON: {"env": [...], "workdir", "user"} */
    uint64_t size_bytes;
    int64_t created_at;
};

void store_image_clear(struct store_image *i);
/* Records an image, replacing one of the same name. */
int store_image_put(struct store *st, const struct store_image *i, struct wr_error **err);
/* ENOENT when there is none of that name. */
int store_image_get(struct store *st, const char *name, struct store_image *ret,
                    struct wr_error **err);
/* Every image, by name. Free entries with store_image_clear and the array with free. */
int store_image_list(struct store *st, struct store_image **ret, size_t *ret_n,
                     struct wr_error **err);
int store_image_delete(struct store *st, const char *name, struct wr_error **err);

/* An API key (vmm/apikeys.h): its hash is stored, never the key. */
struct store_api_key {
    char *id;   /* 16 hex digits */
    char *name; /* unique */
    int64_t created_at, last_used_at, revoked_at; /* unix seconds; 0: never */
};
void store_api_key_clear(struct store_api_key *k);
/* Records a key by the hex SHA-256 of its text. EEXIST when the name is taken. */
int store_api_key_insert(struct store *st, const struct store_api_key *k, const char *hash,
                         struct wr_error **err);
/* Every key, oldest first. Free entries with store_api_key_clear and the array with free. */
int store_api_key_list(struct store *st, struct store_api_key **ret, size_t *ret_n,
                       struct wr_error **err);
/* Revokes the key with that id or, failing that, that name (at now). ENOENT when none
 * matches; a key revoked already stays as it was (not an error). */
int store_api_key_revoke(struct store *st, const char *id_or_name, int64_t now,
                         struct wr_error **err);
/* Whether hash names a key that is not revoked; a valid key's last use becomes now when
 * the one recorded is older than a minute (so that each request does not write). */
int store_api_key_check(struct store *st, const char *hash, int64_t now, bool *ret_valid,
                        struct wr_error **err);
