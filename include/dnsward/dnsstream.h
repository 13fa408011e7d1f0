/* dnsstream: DNS messages over a byte stream (RFC 7766), whatever carries the bytes.
 *
 * The TCP frontend (src/frontend/tcp.c) and the DNS-over-TLS frontend
 * (src/frontend/dot_server.c, RFC 7858 §3.3: the same framing inside TLS) differ only in
 * how bytes come in and go out: a raw socket, or a TLS stream. Everything else is here,
 * once:
 *   - the listening socket, its accept loop, and the connection limit (beyond
 *     cfg->tcp_max_connections accepting pauses, and pending clients wait in the kernel's
 *     backlog; out of descriptors, it pauses and retries);
 *   - the 2-byte length prefix of each message (RFC 1035 §4.2.2), each whole message
 *     handed to proxy_query, and its answer framed and queued as soon as it is ready, in
 *     any order (RFC 7766 §6.2.1.1);
 *   - the limits: cfg->tcp_max_inflight queries in flight per connection, and
 *     DNSSTREAM_WRITE_PAUSE bytes of answers the client has not read yet; beyond either,
 *     reading pauses, so that a client cannot make us buffer without end; beyond
 *     DNSSTREAM_WRITE_MAX unread bytes the connection closes;
 *   - one timer per connection: the idle timeout (RFC 7766 §6.2.3, refreshed by every
 *     read and by every write the client takes), or whatever deadline the transport sets
 *     (the DoT listener's handshake timeout);
 *   - queries in flight are cancelled when their connection closes; on shutdown reading
 *     stops, the answers owed go out, then the connection closes.
 *
 * A transport embeds struct dnsstream_listener in its listener and struct dnsstream in
 * each connection, and gives a table of struct dnsstream_ops: how to queue bytes for the
 * peer, how many are still queued, how to send them, how to pause reading, how to close.
 * It feeds in what it reads (dnsstream_read_space and dnsstream_received for a socket it
 * reads itself, dnsstream_input for bytes handed to it) and calls dnsstream_progress after
 * every event. The stream calls the transport only through its ops, and closes a
 * connection only through ops->close.
 *
 * Never: buffer more than one frame plus one read of a client's queries, or more than
 * DNSSTREAM_WRITE_MAX bytes of its answers. No I/O of its own but accept(2).
 */
#ifndef DNSWARD_DNSSTREAM_H
#define DNSWARD_DNSSTREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "dnsward/dns.h"
#include "dnsward/listener.h"
#include "dnsward/proxy.h"

enum {
    DNSSTREAM_READ_CHUNK = 16384,
    DNSSTREAM_FRAME_MAX = 2 + DNS_MAX_MSG,
    DNSSTREAM_READ_MAX = DNSSTREAM_FRAME_MAX + DNSSTREAM_READ_CHUNK, /* the read buffer's cap */
    DNSSTREAM_WRITE_PAUSE = 256 * 1024, /* answers waiting: stop reading queries */
    DNSSTREAM_WRITE_MAX = 1024 * 1024,  /* answers waiting: the client is not reading, close */
};

struct dnsstream;
struct dnsstream_listener;

struct dnsstream_ops {
    /* Append len bytes to the transport's queue for the peer. The stream has checked
     * that unread stays under DNSSTREAM_WRITE_MAX. Returns 0 or -errno (the stream then
     * closes the connection; -ENOBUFS is logged as a client leaving its answers unread).
     * Must not call back. */
    int (*write)(struct dnsstream *s, const void *data, size_t len);
    /* Bytes queued and not yet taken by the kernel: reading pauses beyond
     * DNSSTREAM_WRITE_PAUSE, and a connection is finished only when none are left. */
    size_t (*queued)(const struct dnsstream *s);
    /* Of those, the bytes the kernel was offered and refused: the client has not read
     * them. Beyond DNSSTREAM_WRITE_MAX the connection closes. A transport that writes
     * as soon as it can (TCP) offers everything at once, and this is queued; one whose
     * writes wait for the loop (TLS) must not count what it has not offered yet, or a
     * burst of answers finishing together would close a client that reads. */
    size_t (*unread)(const struct dnsstream *s);
    /* Send what can be sent now (and, when the client took some, dnsstream_touch).
     * Returns 0, or -errno if the connection broke. Must not call back. */
    int (*flush)(struct dnsstream *s);
    /* Reading should go on (true) or pause (false). Must not call back. */
    void (*want_read)(struct dnsstream *s, bool want);
    /* Close the connection now: the transport calls dnsstream_cleanup(s), releases what
     * is its own and may free the memory holding s. err says why: 0 (finished: the client
     * has sent all it will, or shutdown, and nothing is owed), -ETIMEDOUT (the timer),
     * -ENOBUFS (the client leaves its answers unread), -ENOMEM, or what write or flush
     * returned. */
    void (*close)(struct dnsstream *s, int err);
};

/* The transport's part of accepting: make a connection of fd (ownership moves, also on
 * failure) and call dnsstream_init for it. Returns 0 or -errno. */
typedef int dnsstream_accept_cb(struct dnsstream_listener *l, int fd, const struct sockaddr *peer,
                                socklen_t peerlen);

/* One connection. Fields are private to dnsstream.c, but for the transport to read. */
struct dnsstream {
    const struct dnsstream_ops *ops;
    struct dnsstream_listener *l;
    LIST_ENTRY(dnsstream) entry;
    struct sockaddr_storage peer; /* from accept(2): the access list's, and the logs' */
    socklen_t peerlen;
    bool encrypted; /* the client's proxy_client.encrypted */
    ev_timer timer; /* idle timeout, or the transport's deadline */
    struct query_list queries;
    unsigned inflight;
    uint8_t *rbuf; /* bytes read and not yet handed to the core: whole frames and a part */
    size_t rlen;
    size_t rcap;
    bool eof;     /* the client will send no more */
    bool stopped; /* no more reading: shutdown */
};

/* A listening socket and its connections; embed it, with base first, in the transport's
 * listener, whose listener_ops may use dnsstream_listener_stop and _connections as is. */
struct dnsstream_listener {
    struct listener base;
    ev_io io;
    int fd;
    unsigned nconns;
    bool stopped;
    ev_timer retry; /* accepting again after running out of descriptors */
    dnsstream_accept_cb *on_accept;
    LIST_HEAD(, dnsstream) conns;
    uint8_t answer[DNS_MAX_MSG]; /* an immediate answer (a cache hit), until it is queued */
};

/* Bind a stream socket to addr, listen, and start accepting, calling on_accept for each
 * client. base.name becomes "KIND ADDR:PORT" ("dot 127.0.0.1:853"); base.ops is the
 * caller's to set. Returns 0, or -errno with a reason in err (nothing to clean up then). */
int dnsstream_listener_init(struct dnsstream_listener *l, struct ev_loop *loop, struct proxy *p,
                            const struct config *cfg, const char *kind, const struct sockaddr *addr,
                            socklen_t len, dnsstream_accept_cb *on_accept, char *err,
                            size_t errlen);

/* Close every connection (ops->close with 0), stop accepting and close the socket. The
 * memory of l stays the caller's. */
void dnsstream_listener_cleanup(struct dnsstream_listener *l);

/* listener_ops.stop: stop accepting and reading; connections close once their answers
 * are out. base must be the base of a struct dnsstream_listener. */
void dnsstream_listener_stop(struct listener *base);

/* listener_ops.connections: connections open, handshaking ones included. */
size_t dnsstream_listener_connections(const struct listener *base);

/* Start a connection of l: it counts towards the limit from now on, and its timer runs
 * timeout_ms (0: none) until dnsstream_set_timeout. peer is copied. Reading is wanted
 * from the start: the transport starts it itself. Never calls back. */
void dnsstream_init(struct dnsstream *s, struct dnsstream_listener *l,
                    const struct dnsstream_ops *ops, const struct sockaddr *peer, socklen_t peerlen,
                    bool encrypted, uint32_t timeout_ms);

/* Release what the stream holds: its queries in flight are cancelled (proxy_query_cancel,
 * which never calls back), its timer stopped, its buffer freed, and l may accept again.
 * Called by the transport's close; never calls back. */
void dnsstream_cleanup(struct dnsstream *s);

/* Room to read into: returns where, with *room bytes (at least the rest of the frame
 * being read, up to DNSSTREAM_READ_MAX), or NULL if out of memory. */
uint8_t *dnsstream_read_space(struct dnsstream *s, size_t *room);

/* n (> 0) bytes were read into the room dnsstream_read_space gave. Never calls back. */
void dnsstream_received(struct dnsstream *s, size_t n);

/* Append len bytes the transport read (copied). Returns 0, -ENOMEM, or -ENOBUFS if the
 * buffer would exceed DNSSTREAM_READ_MAX (a transport that hands more than
 * DNSSTREAM_READ_CHUNK at once, or reads while dnsstream wants no reading). Never calls
 * back. */
int dnsstream_input(struct dnsstream *s, const uint8_t *data, size_t len);

/* The client has sent all it will (RFC 7766 §6.2.4): answers still owed go out first,
 * then the connection closes. Never calls back. */
void dnsstream_eof(struct dnsstream *s);

/* After any event: hand every whole message to the core (while the limits allow), send
 * what can be sent, pause or resume reading, and close (ops->close) when finished or
 * broken. Returns true if the connection was closed, after which s must not be touched. */
bool dnsstream_progress(struct dnsstream *s);

/* The client took some of its answers: it is not idle. */
void dnsstream_touch(struct dnsstream *s);

/* Run the timer for timeout_ms from now (0: stop it), and again after each read and
 * write (the idle timeout). When it fires with no query in flight, the connection
 * closes with -ETIMEDOUT. */
void dnsstream_set_timeout(struct dnsstream *s, uint32_t timeout_ms);

#endif
