/* tls_stream: see include/dnsward/tls_stream.h.
 *
 * The life of a stream: TS_CONNECTING (a client's TCP connect is in flight), then
 * TS_HANDSHAKING, TS_READY, and TS_FINISHED once on_close has been called; TS_CLOSED
 * after tls_stream_close. One ev_io watcher drives all of it: while connecting it waits
 * for writability, while handshaking for whatever OpenSSL asked for, and once ready it
 * always waits for readability (so that a peer's close is seen even on an idle stream)
 * and for writability only while something is left to send.
 *
 * Pausing reads (tls_stream_pause_read) takes EV_READ out of that set and stops the read
 * loop between two on_data calls. What OpenSSL has already taken from the socket (whole
 * records decrypted, or read ahead) no longer shows as a readable socket, so resuming
 * feeds the watcher an EV_READ of our own: the owner is called back from the loop, never
 * from inside tls_stream_pause_read.
 *
 * Reentrancy: every callback is made with a flag on the stack that tls_stream_close
 * clears through ts->alive. After each callback we look at that flag first, and if the
 * owner closed the stream we return without touching ts, whose memory may be gone.
 * Callbacks are never made from inside an OpenSSL call (OpenSSL's new-session callback
 * only parks the session), so that an owner that closes, and so SSL_frees, from a
 * callback never pulls the SSL object from under OpenSSL's feet.
 *
 * The process must ignore SIGPIPE (main.c does): OpenSSL writes to the socket with
 * write(2), and a write to a connection the peer has reset would otherwise kill us.
 */
#include "dnsward/tls_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsward/log.h"

enum {
    TS_READ_CHUNK = 16384,   /* the largest TLS record's plaintext: one SSL_read, one record */
    TS_READS_PER_EVENT = 64, /* then let other streams run: a fast peer cannot starve them */
    TS_WBUF_MIN = 4096,
    TS_WBUF_KEEP = 16384, /* an emptied write buffer larger than this is given back */
    TS_LABEL_LEN = 320,
};

enum tls_stream_state {
    TS_UNUSED = 0, /* a zeroed struct: tls_stream_close does nothing */
    TS_CONNECTING,
    TS_HANDSHAKING,
    TS_READY,
    TS_FINISHED, /* on_close has been called; waiting for tls_stream_close */
    TS_CLOSED,
};

enum {
    TS_F_VERIFIED = 1u << 0,         /* handshake done and verified: close_notify allowed */
    TS_F_FATAL = 1u << 1,            /* OpenSSL said no more I/O, not even a close_notify */
    TS_F_READ_WANTS_WRITE = 1u << 2, /* SSL_read must be retried when writable */
    TS_F_WRITE_WANTS_READ = 1u << 3, /* SSL_write must be retried when readable */
    TS_F_PAUSED = 1u << 4,           /* the owner paused reading: no SSL_read, no on_data */
};

static struct log_limit verify_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit tls_error_limit = LOG_LIMIT_INIT(10, 5);

static int alpn_index = -1;

struct alpn_list {
    size_t len;
    uint8_t wire[]; /* RFC 7301 §3.1 ProtocolNameList, without its 2-byte length */
};

static struct tls_stream *ts_of_io(ev_io *w)
{
    return (struct tls_stream *)((char *)w - offsetof(struct tls_stream, io));
}

/* Wait for events on the socket. Stopping a watcher drops the events already pending for
 * it, including one we fed ourselves, so those are fed again. */
static void ts_watch(struct tls_stream *ts, int events)
{
    if (events == 0) {
        /* Paused with nothing to send. An EV_READ fed for records OpenSSL holds is
         * dropped with the watcher: resuming feeds it again. */
        ev_io_stop(ts->loop, &ts->io);
        return;
    }
    if (ev_is_active(&ts->io) && (ts->io.events & (EV_READ | EV_WRITE)) == events)
        return;
    int fed = ev_clear_pending(ts->loop, &ts->io);
    ev_io_stop(ts->loop, &ts->io);
    ev_io_modify(&ts->io, events);
    ev_io_start(ts->loop, &ts->io);
    if (fed)
        ev_feed_event(ts->loop, &ts->io, fed);
}

/* A ready stream reads unless its owner paused it, and writes while OpenSSL or the queue
 * needs it. A write that waits for a read must not arm EV_WRITE: the socket is writable,
 * and the loop would spin; it arms EV_READ even while paused (the retried SSL_write reads
 * what it needs itself, see ts_pump). A paused read that waits for a write arms nothing:
 * resuming retries it. */
static void ts_watch_ready(struct tls_stream *ts)
{
    bool paused = ts->flags & TS_F_PAUSED;
    int events = 0;
    if (!paused || (ts->flags & TS_F_WRITE_WANTS_READ))
        events |= EV_READ;
    if ((!paused && (ts->flags & TS_F_READ_WANTS_WRITE)) ||
        (ts->wlen > 0 && !(ts->flags & TS_F_WRITE_WANTS_READ)))
        events |= EV_WRITE;
    ts_watch(ts, events);
}

/* "name (address:port)" for a client stream, "client address:port" for a server one:
 * built only when a line is logged, so that a stream carries no copy of its name. */
static void ts_peer_label(struct tls_stream *ts, char *buf, size_t len)
{
    char addr[INET6_ADDRSTRLEN + 8] = "?";
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(ts->fd, (struct sockaddr *)&ss, &sl) == 0) {
        char ip[INET6_ADDRSTRLEN];
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
            snprintf(addr, sizeof(addr), "%s:%u", ip, ntohs(sin->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
            snprintf(addr, sizeof(addr), "[%s]:%u", ip, ntohs(sin6->sin6_port));
        }
    }
    if (SSL_is_server(ts->ssl)) {
        snprintf(buf, len, "client %s", addr);
        return;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(ts->ssl);
    char *ip = NULL;
    const char *name = X509_VERIFY_PARAM_get0_host(param, 0);
    if (name == NULL)
        name = ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    snprintf(buf, len, "%s (%s)", name ? name : "?", addr);
    OPENSSL_free(ip);
}

/* The callbacks. Each returns false when the owner closed the stream during the call:
 * the caller must then return at once without touching ts. */
static bool ts_call_ready(struct tls_stream *ts)
{
    if (ts->cbs->on_ready == NULL)
        return true;
    bool alive = true;
    ts->alive = &alive;
    ts->cbs->on_ready(ts);
    if (!alive)
        return false;
    ts->alive = NULL;
    return true;
}

static bool ts_call_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    if (ts->cbs->on_data == NULL)
        return true;
    bool alive = true;
    ts->alive = &alive;
    ts->cbs->on_data(ts, data, len);
    if (!alive)
        return false;
    ts->alive = NULL;
    return true;
}

/* Hand the owner the session OpenSSL parked in on_new_session. Only a ready stream does:
 * a session from a peer that then failed its pin check must never be resumed. */
static bool ts_call_session(struct tls_stream *ts)
{
    SSL_SESSION *session = ts->new_session;
    if (session == NULL || ts->state != TS_READY)
        return true;
    ts->new_session = NULL;
    bool alive = true;
    ts->alive = &alive;
    ts->cbs->on_session(ts, session);
    if (!alive)
        return false;
    ts->alive = NULL;
    return true;
}

/* The stream has ended (err 0: the peer closed cleanly). on_close is the last callback
 * and the owner may free ts from it: the caller must not touch ts afterwards. */
static void ts_finish(struct tls_stream *ts, int err)
{
    ev_io_stop(ts->loop, &ts->io);
    ts->state = TS_FINISHED;
    if (ts->cbs->on_close)
        ts->cbs->on_close(ts, err);
}

/* The error to close with after an SSL_* call failed with ssl_err (not a WANT_*);
 * sys_errno is errno as it was right after the call. */
static int ts_io_error(struct tls_stream *ts, int ssl_err, int sys_errno)
{
    char label[TS_LABEL_LEN];
    char reason[256];
    unsigned long e;
    switch (ssl_err) {
    case SSL_ERROR_ZERO_RETURN:
        /* The peer's close_notify: a clean end, answered with ours in tls_stream_close. */
        return 0;
    case SSL_ERROR_SYSCALL:
        ts->flags |= TS_F_FATAL;
        if (sys_errno == 0 || sys_errno == ECONNRESET || sys_errno == EPIPE)
            return -ECONNRESET;
        return -sys_errno;
    case SSL_ERROR_SSL:
        ts->flags |= TS_F_FATAL;
        /* OpenSSL 3 reports a TCP EOF without close_notify as a TLS error; it is a
         * broken connection (a truncation attack or a crashed peer), not bad TLS. */
        e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return -ECONNRESET;
        ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
        ts_peer_label(ts, label, sizeof(label));
        log_limited(&tls_error_limit, LOG_INFO, "tls: %s: %s", label, reason);
        return -EPROTO;
    default:
        ts->flags |= TS_F_FATAL;
        return -EPROTO;
    }
}

/* A resumed session skips certificate verification, so OpenSSL has no verified chain
 * to show; the session keeps the certificates the server sent when it was made. Verify
 * them again against the context's trust store to recover the chain up to its anchor,
 * so that pins hold on every connection, whoever made the session we were handed.
 * Returns a chain the caller frees, or NULL. */
static STACK_OF(X509) * ts_resumed_chain(struct tls_stream *ts)
{
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = SSL_get0_peer_certificate(ts->ssl);
    if (leaf == NULL)
        goto out;
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    if (vctx == NULL)
        goto out;
    if (X509_STORE_CTX_init(vctx, SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ts->ssl)), leaf,
                            SSL_get_peer_cert_chain(ts->ssl)) != 1)
        goto out_vctx;
    X509_STORE_CTX_set_default(vctx, "ssl_server");
    if (X509_verify_cert(vctx) == 1)
        chain = X509_STORE_CTX_get1_chain(vctx);
out_vctx:
    X509_STORE_CTX_free(vctx);
out:
    return chain;
}

/* The SHA-256 of cert's SubjectPublicKeyInfo (tbs false) or of its to-be-signed part
 * (tbs true). Returns false if it cannot be computed. */
static bool ts_cert_digest(X509 *cert, bool tbs, uint8_t md[TLS_PIN_LEN])
{
    unsigned char *der = NULL;
    int len = tbs ? i2d_re_X509_tbs(cert, &der) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len <= 0)
        return false;
    int ok = EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return ok == 1;
}

/* Does the digest of some certificate of the verified chain, the leaf up to the trust
 * anchor, equal one of the pins? (RFC 7858 §4.2, RFC 7469 §2.4; DNS stamps for TBS) */
static bool ts_pins_match(struct tls_stream *ts)
{
    bool match = false;
    STACK_OF(X509) *rebuilt = NULL;
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ts->ssl);
    if (chain == NULL && SSL_session_reused(ts->ssl))
        chain = rebuilt = ts_resumed_chain(ts);
    for (int i = 0; i < sk_X509_num(chain) && !match; i++) {
        uint8_t spki[TLS_PIN_LEN], tbs[TLS_PIN_LEN];
        X509 *cert = sk_X509_value(chain, i);
        bool have_spki = ts_cert_digest(cert, false, spki);
        bool have_tbs = ts->pins_tbs != 0 && ts_cert_digest(cert, true, tbs);
        for (size_t p = 0; p < ts->npins && !match; p++) {
            if (ts->pins_tbs & (1u << p))
                match = have_tbs && memcmp(tbs, ts->pins[p], TLS_PIN_LEN) == 0;
            else
                match = have_spki && memcmp(spki, ts->pins[p], TLS_PIN_LEN) == 0;
        }
    }
    sk_X509_pop_free(rebuilt, X509_free);
    return match;
}

/* Give OpenSSL the queued bytes. Without SSL_MODE_ENABLE_PARTIAL_WRITE an SSL_write
 * either takes all it was given or must be retried with the same length (wpending);
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets tls_stream_write realloc wbuf meanwhile,
 * which only ever appends behind those bytes. Returns false if the stream finished. */
static bool ts_flush(struct tls_stream *ts)
{
    ts->flags &= ~TS_F_WRITE_WANTS_READ;
    while (ts->wlen > 0) {
        size_t len = ts->wpending ? ts->wpending : ts->wlen;
        if (len > INT_MAX)
            len = INT_MAX;
        ERR_clear_error();
        int n = SSL_write(ts->ssl, ts->wbuf, (int)len);
        if (n > 0) {
            memmove(ts->wbuf, ts->wbuf + n, ts->wlen - (size_t)n);
            ts->wlen -= (size_t)n;
            ts->wpending = 0;
            continue;
        }
        int sys_errno = errno;
        int e = SSL_get_error(ts->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            ts->wpending = len;
            if (e == SSL_ERROR_WANT_READ)
                ts->flags |= TS_F_WRITE_WANTS_READ;
            return true;
        }
        ts_finish(ts, ts_io_error(ts, e, sys_errno));
        return false;
    }
    /* A burst can grow the queue to wmax; an idle stream should not keep that memory. */
    if (ts->wcap > TS_WBUF_KEEP) {
        free(ts->wbuf);
        ts->wbuf = NULL;
        ts->wcap = 0;
    }
    return true;
}

/* Read and deliver what the peer sent until OpenSSL wants more from the socket. Returns
 * false if the stream finished or the owner closed it. */
static bool ts_read(struct tls_stream *ts)
{
    uint8_t buf[TS_READ_CHUNK];
    ts->flags &= ~TS_F_READ_WANTS_WRITE;
    for (int i = 0; i < TS_READS_PER_EVENT; i++) {
        ERR_clear_error();
        int n = SSL_read(ts->ssl, buf, sizeof(buf));
        /* Look at the outcome before any callback: the owner's code may change errno
         * and OpenSSL's error queue, on which SSL_get_error depends. */
        int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ts->ssl, n);
        int err = 0;
        if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            err = ts_io_error(ts, e, errno);
        /* A TLS 1.3 ticket comes after the handshake, read by this SSL_read. */
        if (!ts_call_session(ts))
            return false;
        if (e == SSL_ERROR_NONE) {
            if (!ts_call_data(ts, buf, (size_t)n))
                return false;
            /* Paused from on_data: not one more call. The rest waits, inside OpenSSL or
             * in the socket, until tls_stream_pause_read(false) asks for it again. */
            if (ts->flags & TS_F_PAUSED)
                return true;
            continue;
        }
        if (e == SSL_ERROR_WANT_READ)
            return true;
        if (e == SSL_ERROR_WANT_WRITE) {
            ts->flags |= TS_F_READ_WANTS_WRITE;
            return true;
        }
        ts_finish(ts, err);
        return false;
    }
    /* Enough for this turn of the loop. What is left in the socket, libev sees; what
     * OpenSSL has already read ahead (decrypted or not) would not wake us, so ask for it. */
    if (SSL_has_pending(ts->ssl))
        ev_feed_event(ts->loop, &ts->io, EV_READ);
    return true;
}

/* A ready stream's I/O: what the peer sent first (the owner may queue answers from
 * on_data), unless reading is paused, then what is queued. */
static void ts_pump(struct tls_stream *ts, int revents)
{
    if (!(ts->flags & TS_F_PAUSED) &&
        ((revents & EV_READ) || (ts->flags & TS_F_READ_WANTS_WRITE)) && !ts_read(ts))
        return;
    if (!ts_flush(ts))
        return;
    ts_watch_ready(ts);
}

static void ts_handshake(struct tls_stream *ts)
{
    char label[TS_LABEL_LEN];
    ERR_clear_error();
    int rc = SSL_do_handshake(ts->ssl);
    if (rc != 1) {
        int sys_errno = errno;
        int e = SSL_get_error(ts->ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
            ts_watch(ts, EV_READ);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            ts_watch(ts, EV_WRITE);
            return;
        }
        long verify = SSL_get_verify_result(ts->ssl);
        if (verify != X509_V_OK) {
            ts->flags |= TS_F_FATAL;
            ts_peer_label(ts, label, sizeof(label));
            log_limited(&verify_limit, LOG_WARNING, "tls: %s: certificate verification failed: %s",
                        label, X509_verify_cert_error_string(verify));
            ts_finish(ts, -EKEYREJECTED);
            return;
        }
        int err = ts_io_error(ts, e, sys_errno);
        /* A close_notify before the handshake is over is no clean end. */
        ts_finish(ts, err ? err : -ECONNRESET);
        return;
    }
    if (!SSL_is_server(ts->ssl) && ts->npins > 0 && !ts_pins_match(ts)) {
        ts_peer_label(ts, label, sizeof(label));
        log_limited(&verify_limit, LOG_WARNING,
                    "tls: %s: certificate verification failed: no key of the chain matches a pin",
                    label);
        ts_finish(ts, -EKEYREJECTED);
        return;
    }
    ts->state = TS_READY;
    ts->flags |= TS_F_VERIFIED;
    if (!ts_call_session(ts))
        return;
    if (!ts_call_ready(ts))
        return;
    /* Read at once: the handshake's last read may have left application data inside
     * OpenSSL, where libev cannot see it. */
    ts_pump(ts, EV_READ | EV_WRITE);
}

/* The socket is writable: the TCP connect has finished, well or not. */
static void ts_connected(struct tls_stream *ts)
{
    int err = ts->err;
    if (err == 0) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(ts->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            soerr = errno;
        err = -soerr;
    }
    if (err < 0) {
        ts_finish(ts, err);
        return;
    }
    ts->state = TS_HANDSHAKING;
    ts_handshake(ts);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct tls_stream *ts = ts_of_io(w);
    if (revents & EV_ERROR) {
        ts_finish(ts, -EIO);
        return;
    }
    switch (ts->state) {
    case TS_CONNECTING:
        ts_connected(ts);
        break;
    case TS_HANDSHAKING:
        ts_handshake(ts);
        break;
    case TS_READY:
        ts_pump(ts, revents);
        break;
    default:
        /* The watcher is stopped before any other state is entered. */
        break;
    }
}

/* OpenSSL's new-session callback runs inside SSL_read or SSL_do_handshake, where the
 * owner must not be called (it could close the stream and free the SSL object under
 * OpenSSL): the session is parked and handed over when the call has returned. A server
 * may send several tickets; the newest is kept. Returns 1 when we keep the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
    struct tls_stream *ts = SSL_get_app_data(ssl);
    if (ts == NULL || ts->cbs->on_session == NULL)
        return 0;
    SSL_SESSION_free(ts->new_session);
    ts->new_session = session;
    return 1;
}

static void set_err(char *err, size_t errlen, const char *what, const char *path)
{
    if (err == NULL || errlen == 0)
        return;
    char reason[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    if (path)
        snprintf(err, errlen, "%s %s%s%s", what, path, e ? ": " : "", reason);
    else
        snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", reason);
}

/* What both sides share: TLS 1.2 or newer, no compression (CRIME) and no renegotiation
 * (a DNS stream never needs it, and it is a DoS lever), OpenSSL 3's defaults made
 * explicit. Write buffers may move (wbuf is realloc'ed while a write is retried), and
 * idle streams give back OpenSSL's buffers: a router holds many of them. */
static bool ctx_setup(SSL_CTX *ctx)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return false;
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    /* Without read-ahead OpenSSL reads every record with two read(2) calls, its header
     * and then its body; a busy DNS stream is many small records, and reading ahead
     * takes all that arrived in one call. */
    SSL_CTX_set_read_ahead(ctx, 1);
    return true;
}

SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        set_err(err, errlen, "cannot create a TLS context", NULL);
        goto fail;
    }
    if (!ctx_setup(ctx)) {
        set_err(err, errlen, "cannot set up the TLS context", NULL);
        goto fail_ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL && ca_file[0] != '\0') {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            set_err(err, errlen, "cannot load CA file", ca_file);
            goto fail_ctx;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        set_err(err, errlen, "cannot load the system's trust store", NULL);
        goto fail_ctx;
    }
    /* The owner keeps the sessions (one per upstream, to resume): OpenSSL's internal
     * cache would only hold a second copy. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return ctx;

fail_ctx:
    SSL_CTX_free(ctx);
fail:
    ERR_clear_error();
    return NULL;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = NULL;
    if (cert_file == NULL || key_file == NULL) {
        set_err(err, errlen, "a certificate file and a key file are needed", NULL);
        goto fail;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        set_err(err, errlen, "cannot create a TLS context", NULL);
        goto fail;
    }
    if (!ctx_setup(ctx)) {
        set_err(err, errlen, "cannot set up the TLS context", NULL);
        goto fail_ctx;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        set_err(err, errlen, "cannot load certificate chain", cert_file);
        goto fail_ctx;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "cannot load private key", key_file);
        goto fail_ctx;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, errlen, "the private key does not match the certificate in", cert_file);
        goto fail_ctx;
    }
    return ctx;

fail_ctx:
    SSL_CTX_free(ctx);
fail:
    ERR_clear_error();
    return NULL;
}

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

/* Server preference (RFC 7301 §3.2 leaves the choice to the server): our first protocol
 * that the client offers. With none in common we go on without ALPN instead of the
 * fatal no_application_protocol alert, so that the frontend decides (a DoT client that
 * offers "dot" to a server configured without it must still be served). */
static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    const struct alpn_list *ours = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), alpn_index);
    if (ours == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < ours->len; i += 1 + (size_t)ours->wire[i]) {
        const uint8_t *proto = ours->wire + i;
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (in[j] == proto[0] && j + 1u + in[j] <= inlen &&
                memcmp(in + j + 1, proto + 1, proto[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int tls_server_ctx_set_alpn(SSL_CTX *ctx, const char *const *protos, size_t n)
{
    size_t total = 0;
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        size_t len = protos[i] ? strlen(protos[i]) : 0;
        if (len == 0 || len > 255)
            return -EINVAL;
        total += 1 + len;
    }
    if (total > 65535) /* the list's own 2-byte length */
        return -EINVAL;
    if (alpn_index < 0) {
        alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
        if (alpn_index < 0)
            return -ENOMEM;
    }
    struct alpn_list *list = malloc(sizeof(*list) + total);
    if (list == NULL)
        return -ENOMEM;
    list->len = total;
    uint8_t *p = list->wire;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(protos[i]);
        *p++ = (uint8_t)len;
        memcpy(p, protos[i], len);
        p += len;
    }
    free(SSL_CTX_get_ex_data(ctx, alpn_index));
    if (SSL_CTX_set_ex_data(ctx, alpn_index, list) != 1) {
        SSL_CTX_set_ex_data(ctx, alpn_index, NULL);
        free(list);
        return -ENOMEM;
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    return 0;
}

/* Whom the handshake must verify. An IP literal gets no SNI (RFC 6066 §3) and is checked
 * against the certificate's IP addresses, even when the caller did not say it is one:
 * verifying "1.1.1.1" as a DNS name would look for the wrong kind of name. */
static int ts_set_peer(struct tls_stream *ts, const struct tls_peer *peer)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ts->ssl);
    unsigned char ip[sizeof(struct in6_addr)];
    bool is_ip = peer->name_is_ip || inet_pton(AF_INET, peer->name, ip) == 1 ||
                 inet_pton(AF_INET6, peer->name, ip) == 1;
    if (is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, peer->name) != 1)
            return -EINVAL;
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(param, peer->name, 0) != 1)
            return -EINVAL;
        if (SSL_set_tlsext_host_name(ts->ssl, peer->name) != 1)
            return -EINVAL;
    }
    if (peer->npins > 0)
        memcpy(ts->pins, peer->pins, peer->npins * sizeof(ts->pins[0]));
    ts->npins = peer->npins;
    ts->pins_tbs = peer->pins_tbs;
    if (peer->session != NULL && SSL_set_session(ts->ssl, peer->session) != 1)
        return -EINVAL;
    /* SSL_set_alpn_protos returns 0 on success. */
    if (peer->alpn != NULL && peer->alpn_len > 0 &&
        (peer->alpn_len > UINT_MAX ||
         SSL_set_alpn_protos(ts->ssl, (const unsigned char *)peer->alpn,
                             (unsigned)peer->alpn_len) != 0))
        return -EINVAL;
    return 0;
}

static void ts_set_nodelay(int fd)
{
    /* DNS messages are small and each is awaited: Nagle would only delay them. A failure
     * costs latency, not correctness, so it is ignored. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void ts_init(struct tls_stream *ts, struct ev_loop *loop, int fd,
                    const struct tls_stream_cbs *cbs, size_t wmax)
{
    memset(ts, 0, sizeof(*ts));
    ts->loop = loop;
    ts->fd = fd;
    ts->cbs = cbs;
    ts->wmax = wmax;
    ev_io_init(&ts->io, on_io, fd, 0);
}

/* Besides the header's cases, returns -EINVAL for a peer without a name, more pins than
 * the stream holds (4), a malformed IP literal or ALPN list, or an unusable session. */
int tls_stream_connect(struct tls_stream *ts, struct ev_loop *loop, SSL_CTX *ctx,
                       const struct sockaddr *addr, socklen_t addrlen, const struct tls_peer *peer,
                       const struct tls_stream_cbs *cbs, size_t wmax)
{
    int rc;
    ts_init(ts, loop, -1, cbs, wmax);
    ts->state = TS_CLOSED; /* until it works: tls_stream_close is then a no-op */
    if (peer == NULL || peer->name == NULL || peer->name[0] == '\0' ||
        peer->npins > sizeof(ts->pins) / sizeof(ts->pins[0]) ||
        (peer->npins > 0 && peer->pins == NULL)) {
        rc = -EINVAL;
        goto fail;
    }
    ts->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (ts->fd < 0) {
        rc = -errno;
        goto fail;
    }
    ts_set_nodelay(ts->fd);
    ERR_clear_error();
    ts->ssl = SSL_new(ctx);
    if (ts->ssl == NULL) {
        rc = -ENOMEM;
        goto fail_fd;
    }
    SSL_set_app_data(ts->ssl, ts);
    if (SSL_set_fd(ts->ssl, ts->fd) != 1) {
        rc = -ENOMEM;
        goto fail_ssl;
    }
    SSL_set_connect_state(ts->ssl);
    rc = ts_set_peer(ts, peer);
    if (rc < 0)
        goto fail_ssl;

    ev_io_set(&ts->io, ts->fd, 0);
    ts->state = TS_CONNECTING;
    if (connect(ts->fd, addr, addrlen) == 0) {
        /* Loopback can connect at once; the handshake still starts from the loop, so
         * that nothing calls back before we return. */
        ts->state = TS_HANDSHAKING;
        ts_watch(ts, EV_WRITE);
    } else if (errno == EINPROGRESS || errno == EINTR) {
        ts_watch(ts, EV_WRITE);
    } else {
        /* A connect that fails at once is reported like a late one, from the loop. */
        ts->err = -errno;
        ev_feed_event(loop, &ts->io, EV_WRITE);
    }
    return 0;

fail_ssl:
    SSL_free(ts->ssl);
    ts->ssl = NULL;
fail_fd:
    close(ts->fd);
    ts->fd = -1;
fail:
    ERR_clear_error();
    return rc;
}

int tls_stream_accept(struct tls_stream *ts, struct ev_loop *loop, SSL_CTX *ctx, int fd,
                      const struct tls_stream_cbs *cbs, size_t wmax)
{
    int rc;
    ts_init(ts, loop, fd, cbs, wmax);
    ts->state = TS_CLOSED;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    ts_set_nodelay(fd);
    ERR_clear_error();
    ts->ssl = SSL_new(ctx);
    if (ts->ssl == NULL) {
        rc = -ENOMEM;
        goto fail_fd;
    }
    SSL_set_app_data(ts->ssl, ts);
    if (SSL_set_fd(ts->ssl, fd) != 1) {
        rc = -ENOMEM;
        goto fail_ssl;
    }
    SSL_set_accept_state(ts->ssl);
    ts->state = TS_HANDSHAKING;
    ts_watch(ts, EV_READ); /* the ClientHello */
    return 0;

fail_ssl:
    SSL_free(ts->ssl);
    ts->ssl = NULL;
fail_fd:
    close(fd);
    ts->fd = -1;
    ERR_clear_error();
    return rc;
}

/* Also returns -ENOMEM if the queue could not grow (nothing is queued then). */
int tls_stream_write(struct tls_stream *ts, const void *data, size_t len)
{
    if (ts->state != TS_CONNECTING && ts->state != TS_HANDSHAKING && ts->state != TS_READY)
        return -EPIPE;
    if (len > ts->wmax - ts->wlen)
        return -ENOBUFS;
    if (len == 0)
        return 0;
    size_t need = ts->wlen + len;
    if (need > ts->wcap) {
        size_t cap = ts->wcap ? ts->wcap : TS_WBUF_MIN;
        while (cap < need)
            cap *= 2;
        if (cap > ts->wmax)
            cap = ts->wmax;
        uint8_t *nb = realloc(ts->wbuf, cap);
        if (nb == NULL)
            return -ENOMEM;
        ts->wbuf = nb;
        ts->wcap = cap;
    }
    memcpy(ts->wbuf + ts->wlen, data, len);
    ts->wlen += len;
    /* Before the handshake is done (and verified) nothing is sent: the handshake's end
     * flushes the queue. */
    if (ts->state == TS_READY)
        ts_watch_ready(ts);
    return 0;
}

void tls_stream_pause_read(struct tls_stream *ts, bool pause)
{
    bool paused = ts->flags & TS_F_PAUSED;
    if (pause == paused)
        return;
    if (pause)
        ts->flags |= TS_F_PAUSED;
    else
        ts->flags &= ~TS_F_PAUSED;
    /* A handshake reads what OpenSSL asks for, paused or not (no on_data comes from it);
     * its end looks at the flag. A finished or closed stream reads nothing anyway. */
    if (ts->state != TS_READY)
        return;
    ts_watch_ready(ts);
    /* Records OpenSSL already holds, and a read that waited for a write, would not make
     * the socket readable again: ask the loop for a read. What is still in the socket
     * wakes the watcher by itself. */
    if (!pause && (SSL_has_pending(ts->ssl) || (ts->flags & TS_F_READ_WANTS_WRITE)))
        ev_feed_event(ts->loop, &ts->io, EV_READ);
}

size_t tls_stream_queued(const struct tls_stream *ts)
{
    return ts->wlen;
}

bool tls_stream_is_ready(const struct tls_stream *ts)
{
    return ts->state == TS_READY;
}

bool tls_stream_resumed(const struct tls_stream *ts)
{
    return ts->ssl != NULL && (ts->state == TS_READY || ts->state == TS_FINISHED) &&
           SSL_session_reused(ts->ssl);
}

/* The name is not NUL-terminated: *len bytes. */
const char *tls_stream_alpn(const struct tls_stream *ts, size_t *len)
{
    const unsigned char *proto = NULL;
    unsigned plen = 0;
    if (ts->ssl != NULL)
        SSL_get0_alpn_selected(ts->ssl, &proto, &plen);
    if (len != NULL)
        *len = plen;
    return plen > 0 ? (const char *)proto : NULL;
}

/* Supported on any stream that tls_stream_connect or tls_stream_accept initialised
 * (also when they failed), and on a zeroed struct that was never started; a second call
 * does nothing. */
void tls_stream_close(struct tls_stream *ts)
{
    if (ts->state == TS_UNUSED || ts->state == TS_CLOSED)
        return;
    if (ts->alive != NULL) {
        *ts->alive = false;
        ts->alive = NULL;
    }
    ev_io_stop(ts->loop, &ts->io);
    if (ts->ssl != NULL) {
        /* One try at close_notify, so that the peer can tell our close from a cut
         * (RFC 8446 §6.1). Not after a fatal error, where OpenSSL forbids it, nor while
         * a record is half sent, which the alert cannot overtake. */
        if ((ts->flags & TS_F_VERIFIED) && !(ts->flags & TS_F_FATAL) && ts->wpending == 0) {
            ERR_clear_error();
            (void)SSL_shutdown(ts->ssl);
        }
        SSL_free(ts->ssl);
        ts->ssl = NULL;
        ERR_clear_error();
    }
    if (ts->fd >= 0) {
        close(ts->fd);
        ts->fd = -1;
    }
    SSL_SESSION_free(ts->new_session);
    ts->new_session = NULL;
    free(ts->wbuf);
    ts->wbuf = NULL;
    ts->wlen = ts->wcap = ts->wpending = 0;
    ts->state = TS_CLOSED;
}
