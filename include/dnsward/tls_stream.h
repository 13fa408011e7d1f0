/* tls_stream: one TLS connection over a non-blocking TCP socket, driven by libev.
 *
 * This is the one place that does the OpenSSL dance (connect, handshake, want-read and
 * want-write, a bounded write queue, close_notify): the DoT and DoH upstreams use it as
 * clients, and the DoT and DoH frontends as servers.
 *
 * A client stream verifies, always: TLS 1.2 or newer, the certificate chain against the
 * context's trust store, the peer's name (a DNS name, sent as SNI too) or IP address
 * (no SNI, RFC 6066 §3), and, when pins are given, that the SHA-256 of the
 * SubjectPublicKeyInfo (RFC 7858 §4.2) or, for a pin marked so, of the to-be-signed part
 * (as DNS stamps give it) of some certificate of the verified chain is one of them. A failure
 * closes the stream with -EKEYREJECTED before any byte of the owner's is sent: tls_stream_write
 * only queues until the handshake has succeeded.
 *
 * The owner embeds struct tls_stream and recovers itself with container_of in the
 * callbacks. Callbacks may call tls_stream_write and tls_stream_close; after
 * tls_stream_close (from anywhere) no callback is made again, and the owner may free the
 * memory that holds the stream once tls_stream_close has returned, even from inside a
 * callback (the stream touches nothing of itself after a callback that closed it).
 */
#ifndef DNSWARD_TLS_STREAM_H
#define DNSWARD_TLS_STREAM_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum { TLS_PIN_LEN = 32 };

struct tls_stream;

struct tls_stream_cbs {
    /* The handshake is done and, for a client, verified. Queued writes go out next. */
    void (*on_ready)(struct tls_stream *ts);
    /* Decrypted bytes from the peer; valid only during the call. */
    void (*on_data)(struct tls_stream *ts, const uint8_t *data, size_t len);
    /* The stream is finished and no callback will follow; the owner must still call
     * tls_stream_close. err is 0 when the peer closed cleanly, else -ECONNREFUSED (TCP
     * connect failed), -EKEYREJECTED (certificate, name or pin verification failed),
     * -EPROTO (a TLS error), -ECONNRESET (the connection broke) or another -errno. */
    void (*on_close)(struct tls_stream *ts, int err);
    /* Client only, optional: a session to resume later; ownership moves to the callee. */
    void (*on_session)(struct tls_stream *ts, SSL_SESSION *session);
};

/* Who a client stream expects to talk to. All pointers are borrowed for the call. */
struct tls_peer {
    const char *name;                   /* DNS name or IP literal to verify */
    bool name_is_ip;                    /* verify name as an IP address, send no SNI */
    const uint8_t (*pins)[TLS_PIN_LEN]; /* SHA-256 pins, or NULL */
    size_t npins;
    uint32_t pins_tbs;    /* bit i: pin i is of a certificate's TBS part (DNS stamps), not
                           * of its SubjectPublicKeyInfo */
    SSL_SESSION *session; /* to resume, or NULL; not consumed */
    const char *alpn;     /* ALPN protocol list in wire format, or NULL */
    size_t alpn_len;
};

struct tls_stream {
    ev_io io;
    struct ev_loop *loop;
    SSL *ssl;
    int fd;
    const struct tls_stream_cbs *cbs;
    uint8_t *wbuf; /* bytes accepted by tls_stream_write, not yet taken by SSL_write */
    size_t wlen;
    size_t wcap;
    size_t wmax;     /* hard cap of wbuf, fixed at creation */
    size_t wpending; /* length of a retried SSL_write (OpenSSL wants the same buffer) */
    unsigned state;  /* private */
    bool *alive;     /* private: cleared by close while a callback runs */
    uint8_t pins[4][TLS_PIN_LEN];
    size_t npins;
    uint32_t pins_tbs;
    /* private, below: */
    unsigned flags;           /* TS_F_* in tls_stream.c */
    int err;                  /* a connect error known before the loop ran */
    SSL_SESSION *new_session; /* given by OpenSSL, handed to on_session from the loop */
};

/* A client context: TLS 1.2 or newer, peer verification on, trust store from ca_file or
 * (ca_file NULL or "") the system's default paths, client session caching for
 * resumption. Returns a new context (the caller frees it with SSL_CTX_free), or NULL
 * with a reason in err. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/* A server context with the certificate chain in cert_file and the key in key_file;
 * TLS 1.2 or newer. Returns a new context or NULL with a reason in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Make a server context negotiate ALPN (RFC 7301): of the n protocols in protos (each a
 * NUL-terminated name of 1 to 255 bytes), in our order of preference, the first one the
 * client offers is chosen; a client that offers none of them, or no ALPN at all, gets no
 * ALPN (the stream's tls_stream_alpn is NULL). The list is copied; a second call replaces
 * it. Returns 0, -EINVAL for an empty or malformed list, or -ENOMEM. */
int tls_server_ctx_set_alpn(SSL_CTX *ctx, const char *const *protos, size_t n);

/* Start a client stream: a non-blocking connect to addr, then the handshake with *peer.
 * wmax caps the write queue. Returns 0, or -errno if the socket could not even be created
 * (no callback then). Never calls back before returning: a connect that fails at once is
 * reported through on_close from the loop. ctx must outlive the stream. */
int tls_stream_connect(struct tls_stream *ts, struct ev_loop *loop, SSL_CTX *ctx,
                       const struct sockaddr *addr, socklen_t addrlen, const struct tls_peer *peer,
                       const struct tls_stream_cbs *cbs, size_t wmax);

/* Start a server stream on an accepted, connected socket fd (ownership of fd moves to the
 * stream, also on failure). Returns 0 or -errno. */
int tls_stream_accept(struct tls_stream *ts, struct ev_loop *loop, SSL_CTX *ctx, int fd,
                      const struct tls_stream_cbs *cbs, size_t wmax);

/* Queue len bytes to send; they are written when the handshake is done and the socket
 * can take them. Returns 0, -ENOBUFS if the queue would exceed its cap (nothing is
 * queued then), or -EPIPE if the stream is closing. Never calls back. */
int tls_stream_write(struct tls_stream *ts, const void *data, size_t len);

/* Stop (pause true) or resume (false) reading from the peer: while paused, on_data is not
 * called and the peer's bytes wait in the kernel (TCP flow control), so that a server
 * whose client sends faster than it reads its answers buffers nothing more. Data that
 * OpenSSL has already decrypted is delivered after resuming, from the loop. A close by
 * the peer is noticed only once reading resumes. Never calls back.
 * Called from on_data, a pause takes effect at once: no further on_data follows in that
 * read. Called before the handshake is done, it applies from its end (the handshake
 * itself goes on). Writing is not affected; pausing twice is pausing once. */
void tls_stream_pause_read(struct tls_stream *ts, bool pause);

/* Bytes queued and not yet handed to TLS. */
size_t tls_stream_queued(const struct tls_stream *ts);

/* Has the handshake completed? Was the session resumed? */
bool tls_stream_is_ready(const struct tls_stream *ts);
bool tls_stream_resumed(const struct tls_stream *ts);

/* The ALPN protocol the handshake agreed on, or NULL. */
const char *tls_stream_alpn(const struct tls_stream *ts, size_t *len);

/* Close: a best-effort close_notify, then the socket and the SSL object are released.
 * No callback is made afterwards. Idempotent; safe from inside a callback. */
void tls_stream_close(struct tls_stream *ts);

#endif
