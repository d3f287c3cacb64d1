/* The server name a TLS client asks for: the server_name extension (RFC 6066) of its
 * ClientHello, read from the first bytes it sends through a CONNECT tunnel. The egress
 * proxy compares it with the CONNECT host, so that a tunnel opened to an allowed name
 * cannot carry a TLS session to another one. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The most ClientHello bytes (records included) the proxy waits for. */
#define VMM_SNI_MAX_HELLO (32u * 1024u)

enum vmm_sni_result {
    VMM_SNI_FOUND = 1,      /* name holds the host name (NUL-terminated) */
    VMM_SNI_MORE = 0,       /* a complete ClientHello needs more bytes */
    VMM_SNI_NOT_TLS = -1,   /* the bytes are not a TLS handshake */
    VMM_SNI_MALFORMED = -2, /* a ClientHello that does not parse */
    VMM_SNI_NONE = -3,      /* a ClientHello without a host name */
    VMM_SNI_TOO_BIG = -4,   /* longer than VMM_SNI_MAX_HELLO */
};

/* Reads buf (everything the client sent so far) and, once the ClientHello is complete,
 * its first host_name into name (name_size bytes; a longer name is MALFORMED). */
enum vmm_sni_result vmm_sni_read(const uint8_t *buf, size_t len, char *name, size_t name_size);
