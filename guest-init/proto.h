/* The warren agent protocol: framing and TLV encoding shared by guest-init (inside the
 * sandbox) and the host's agent client (vmm/agent.c). Dependency-free C: no libuv, no
 * cJSON, so that the static guest-init can link it. The wire format is documented in
 * guest-init/PROTOCOL.md; keep the two in step. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GI_PROTO_VERSION 1
#define GI_FRAME_HEADER_SIZE 12
/* Largest payload of one frame. A bigger length in a header is a protocol error. */
#define GI_FRAME_MAX_PAYLOAD (1u << 20)
/* Largest data chunk carried by one STDIN/STDOUT/STDERR/DATA frame. */
#define GI_CHUNK_SIZE (256u * 1024u)

/* Frame types. Direction: h = host -> guest, g = guest -> host. */
enum gi_frame_type {
    GI_HELLO = 1,        /* g: opens a connection: VERSION, AGENT, PID; h: opens a session */
    GI_ERROR = 2,        /* g: ends the request on this stream: ERRNO, MESSAGE */
    GI_RESULT = 3,       /* g: ends a non-exec request with its result fields */
    GI_EXEC = 16,        /* h: start a process: ARG..., ENV..., CWD, TIMEOUT_MS, STDIN_OPEN */
    GI_STDIN = 17,       /* h: data for the process's stdin; an empty payload closes it */
    GI_STDOUT = 18,      /* g: process output */
    GI_STDERR = 19,      /* g: process output */
    GI_EXIT = 20,        /* g: ends an exec: EXIT_CODE, SIGNAL, TIMED_OUT */
    GI_SIGNAL = 21,      /* h: send SIGNUM to the exec's process group */
    GI_READ = 32,        /* h: PATH, OFFSET, LENGTH -> DATA... then RESULT{SIZE, BYTES} */
    GI_WRITE = 33,       /* h: PATH, MODE, FLAGS -> then h sends DATA... and WRITE_END */
    GI_DATA = 34,        /* both: file data for READ / WRITE */
    GI_WRITE_END = 35,   /* h: no more DATA for this WRITE -> RESULT{BYTES} */
    GI_STAT = 36,        /* h: PATH -> RESULT{SIZE, MODE, MTIME, FILE_TYPE} */
    GI_MEMSTATS = 37,    /* h: -> RESULT{MEM_TOTAL, MEM_FREE, MEM_AVAILABLE, MEM_CACHED} */
    GI_SYNC = 38,        /* h: sync(2) -> RESULT */
    GI_SHUTDOWN = 39,    /* h: -> RESULT, then the agent kills every process and powers off */
    GI_DROP_CACHES = 40, /* h: sync + drop page cache (before reclaiming memory) -> RESULT */
    GI_ATTACH = 41,      /* h: VM only: bind PATH on /workspace, set HOSTNAME -> RESULT */
    /* Terminal sessions (PROTOCOL.md, "PTY sessions"): they outlive the connection. */
    GI_PTY_OPEN = 48,   /* h: ARG..., ENV..., CWD, USER, ROWS, COLS -> RESULT{PTY_ID, PID} */
    GI_PTY_ATTACH = 49, /* h: PTY_ID -> PTY_OUTPUT... then EXIT, RESULT{PTY_END} or ERROR */
    GI_PTY_INPUT = 50,  /* h, on an attach stream: raw bytes for the terminal; empty: detach */
    GI_PTY_OUTPUT = 51, /* g, on an attach stream: raw terminal output */
    GI_PTY_RESIZE = 52, /* h, on an attach stream: ROWS, COLS */
    GI_PTY_ACK = 53,    /* h, on an attach stream: BYTES of output consumed */
    GI_PTY_CLOSE = 54,  /* h: PTY_ID -> RESULT: the session's process group is killed */
    GI_PTY_LIST = 55,   /* h: -> RESULT{PTY_ENTRY...} */
    /* Directories and names (PROTOCOL.md, "Directories"). */
    GI_LIST_DIR = 56,    /* h: PATH, DEPTH, MAX_ENTRIES -> DIR_ENTRIES... then RESULT{TRUNCATED} */
    GI_DIR_ENTRIES = 57, /* g: entries of a LIST_DIR: ENTRY, FILE_TYPE, SIZE, MODE, MTIME... */
    GI_MKDIR = 58,       /* h: PATH, MODE, FLAGS (MKDIR_PARENTS) -> RESULT */
    GI_RENAME = 59,      /* h: PATH, NEW_PATH, FLAGS (RENAME_OVERWRITE) -> RESULT */
    GI_REMOVE = 60,      /* h: PATH, FLAGS (REMOVE_RECURSIVE) -> RESULT */
    /* Process sessions (PTY sessions generalized: pipes, tags, live attach; PROTOCOL.md). */
    GI_PROC_STDERR = 64,   /* g, on an attach stream of a pipe session: its stderr */
    GI_PROC_CONTROL = 65,  /* h: PTY_ID | PID | TAG, INPUT, CLOSE_STDIN, SIGNUM, ROWS+COLS */
    GI_PROC_ATTACHED = 66, /* g: first frame of an attach stream: PTY_ID, PID */
    /* Watching a directory (PROTOCOL.md, "Watching directories"). */
    GI_WATCH = 72,         /* h: PATH, RECURSIVE -> WATCH_STARTED, WATCH_EVENTS..., RESULT */
    GI_WATCH_STARTED = 73, /* g: the watches are in place: changes from now on are reported */
    GI_WATCH_EVENTS = 74,  /* g: EVENT_NAME, EVENT_TYPE, repeated */
    GI_WATCH_STOP = 75,    /* h, on a watch stream: stop -> RESULT */
};

/* TLV tags inside a payload. Integers are 8-byte little-endian; strings are raw bytes
 * (no NUL). A tag may repeat where noted (ARG, ENV). Unknown tags are skipped, which is
 * how later versions add fields. */
enum gi_tag {
    GI_T_VERSION = 1,
    GI_T_AGENT = 2,
    GI_T_PID = 3,
    GI_T_ERRNO = 4,
    GI_T_MESSAGE = 5,
    GI_T_ARG = 16,
    GI_T_ENV = 17,
    GI_T_CWD = 18,
    GI_T_TIMEOUT_MS = 19,
    GI_T_STDIN_OPEN = 20,
    GI_T_EXIT_CODE = 21,
    GI_T_SIGNAL = 22,
    GI_T_TIMED_OUT = 23,
    GI_T_SIGNUM = 24,
    GI_T_USER = 25,
    GI_T_HOSTNAME = 26,
    GI_T_PATH = 32,
    GI_T_OFFSET = 33,
    GI_T_LENGTH = 34,
    GI_T_MODE = 35,
    GI_T_FLAGS = 36,
    GI_T_SIZE = 37,
    GI_T_BYTES = 38,
    GI_T_MTIME = 39,
    GI_T_FILE_TYPE = 40,
    GI_T_MEM_TOTAL = 48,
    GI_T_MEM_FREE = 49,
    GI_T_MEM_AVAILABLE = 50,
    GI_T_MEM_CACHED = 51,
    GI_T_PTY_ID = 56,      /* u64: a terminal session */
    GI_T_ROWS = 57,        /* u64: 1..1000 */
    GI_T_COLS = 58,        /* u64: 1..1000 */
    GI_T_PTY_ENTRY = 59,   /* bytes: one session of a PTY_LIST RESULT, itself a TLV list */
    GI_T_PTY_RUNNING = 60, /* u64: 1 while the session's process runs */
    GI_T_CREATED = 61,     /* i64: seconds since the epoch */
    GI_T_PTY_END = 62,     /* u64: why an attachment ended without EXIT (GI_PTY_END_*) */
    GI_T_DEPTH = 64,       /* LIST_DIR: levels below PATH to list (1: its entries only) */
    GI_T_MAX_ENTRIES = 65, /* LIST_DIR: at most this many entries */
    GI_T_ENTRY = 66,       /* DIR_ENTRIES: starts an entry: its path relative to PATH */
    GI_T_TRUNCATED = 67,   /* LIST_DIR RESULT: 1 when entries were left out */
    GI_T_LINK_TARGET = 68, /* DIR_ENTRIES: a symlink's target */
    GI_T_NEW_PATH = 69,    /* RENAME: the new name */
    GI_T_PIPES = 72,       /* u64: PTY_OPEN, PTY_ENTRY: 1 = stdin/stdout/stderr pipes, no pty */
    GI_T_TAG = 73,         /* string: a session's tag (PTY_OPEN, PTY_ENTRY, selectors) */
    GI_T_LIVE = 74,        /* u64: PTY_ATTACH: 1 = no replay of the ring (but the first) */
    GI_T_INPUT = 75,       /* bytes: PROC_CONTROL: for the terminal or the stdin pipe */
    GI_T_CLOSE_STDIN = 76, /* u64: PROC_CONTROL: 1 = close the stdin pipe once written */
    GI_T_HOST_DATA = 77,   /* bytes: PTY_OPEN, PTY_ENTRY: the host's, kept as given */
    GI_T_ATTACH = 78,      /* u64: PTY_OPEN: 1 = its stream is the session's first attachment */
    GI_T_RECURSIVE = 80,   /* WATCH: 1 = also every directory below PATH */
    GI_T_EVENT_NAME = 81,  /* WATCH_EVENTS: starts an event: its path relative to PATH */
    GI_T_EVENT_TYPE = 82,  /* WATCH_EVENTS: GI_WATCH_* */
    GI_T_OWNER = 83,       /* STAT RESULT, DIR_ENTRIES: the owner's name (else its uid) */
    GI_T_GROUP = 84,       /* STAT RESULT, DIR_ENTRIES: the group's name (else its gid) */
};

/* GI_T_PTY_END values. */
#define GI_PTY_END_DETACHED 1 /* the host sent an empty PTY_INPUT */
#define GI_PTY_END_REPLACED 2 /* another PTY_ATTACH took the session over */
#define GI_PTY_END_CLOSED 3   /* PTY_CLOSE ended the session */

/* Terminal sessions: at most this many per sandbox, each keeping this much recent output,
 * and sending at most a window of output the host has not acknowledged. */
#define GI_PTY_MAX 64
#define GI_PTY_RING_SIZE (64u * 1024u)
#define GI_PTY_WINDOW (256u * 1024u)
#define GI_PTY_DIM_MAX 1000
/* The largest TAG and HOST_DATA of a session (a PTY_LIST answer holds GI_PTY_MAX of them
 * within one frame). */
#define GI_PROC_TAG_MAX 256u
#define GI_PROC_HOST_DATA_MAX (8u * 1024u)

/* The highest tag this version knows (receivers index fields by tag below it). */
#define GI_T_LAST 87

/* GI_T_EVENT_TYPE values (envd's EventType). */
#define GI_WATCH_CREATE 1u /* created, or moved in */
#define GI_WATCH_WRITE 2u
#define GI_WATCH_REMOVE 3u
#define GI_WATCH_RENAME 4u /* moved away (the new name, if watched, comes as CREATE) */
#define GI_WATCH_CHMOD 5u  /* attributes changed */
/* Watches: at most GI_WATCH_MAX at once in one guest-init (all connections), each
 * following at most GI_WATCH_DIRS_MAX directories (recursive), and events are dropped,
 * ending the watch with EOVERFLOW, when the host does not take them (the connection's
 * output past GI_OUT_HIGH) or the kernel's queue overflows. */
#define GI_WATCH_MAX 32u
#define GI_WATCH_DIRS_MAX 4096u

/* GI_T_FLAGS bits of a WRITE. */
#define GI_WRITE_APPEND 1u
#define GI_WRITE_CREATE_DIRS 2u
/* GI_T_FLAGS bits of MKDIR, RENAME and REMOVE. */
#define GI_MKDIR_PARENTS 1u
#define GI_RENAME_OVERWRITE 1u
#define GI_REMOVE_RECURSIVE 1u
/* LIST_DIR limits: DEPTH and MAX_ENTRIES are capped at these, and the entries sent at
 * GI_LIST_MAX_BYTES of payload in all (RESULT then says TRUNCATED). */
#define GI_LIST_MAX_DEPTH 5u
#define GI_LIST_MAX_ENTRIES 10000u
#define GI_LIST_MAX_BYTES (8u << 20)

struct gi_frame_header {
    uint32_t length; /* payload bytes that follow the header */
    uint16_t type;
    uint16_t flags;  /* reserved, 0 */
    uint32_t stream; /* request id chosen by the host; 0 for HELLO */
};

void gi_header_encode(const struct gi_frame_header *h, uint8_t out[GI_FRAME_HEADER_SIZE]);
/* Returns 0, or -EPROTO when the length is over GI_FRAME_MAX_PAYLOAD. */
int gi_header_decode(const uint8_t in[GI_FRAME_HEADER_SIZE], struct gi_frame_header *h);

/* A growable encoder for one frame: header space first, then TLVs. */
struct gi_writer {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool overflow; /* set when the payload would pass GI_FRAME_MAX_PAYLOAD */
};

/* Starts a frame of the given type and stream. The writer must be zeroed before its first
 * use; later starts reuse its allocation (gi_writer_free releases it). */
void gi_writer_start(struct gi_writer *w, uint16_t type, uint32_t stream);
void gi_writer_u64(struct gi_writer *w, uint16_t tag, uint64_t v);
void gi_writer_bytes(struct gi_writer *w, uint16_t tag, const void *p, size_t n);
void gi_writer_str(struct gi_writer *w, uint16_t tag, const char *s);
/* Appends raw payload bytes (STDOUT/STDIN/DATA frames carry raw data, not TLVs). */
void gi_writer_raw(struct gi_writer *w, const void *p, size_t n);
/* Fills in the header's length. Returns 0, or -EMSGSIZE on overflow. The frame is
 * w->data[0 .. w->len). */
int gi_writer_finish(struct gi_writer *w);
void gi_writer_free(struct gi_writer *w);

/* A TLV reader over one payload. */
struct gi_tlv {
    uint16_t tag;
    uint32_t len;
    const uint8_t *value;
};
struct gi_reader {
    const uint8_t *p;
    size_t left;
};

void gi_reader_init(struct gi_reader *r, const void *payload, size_t len);
/* Returns 1 and fills t for the next TLV, 0 at the end, -EPROTO when malformed. */
int gi_reader_next(struct gi_reader *r, struct gi_tlv *t);
/* Reads an integer TLV value; -EPROTO when it is not 8 bytes. */
int gi_tlv_u64(const struct gi_tlv *t, uint64_t *ret);
