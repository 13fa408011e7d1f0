/* doh: the DNS-over-HTTPS upstream transport. See include/dnsward/doh.h.
 *
 * nghttp2 is driven the way its examples drive it: bytes read from TLS go to
 * nghttp2_session_mem_recv, and what it has to send is pulled with
 * nghttp2_session_mem_send into the TLS stream. Sending is batched: a query only marks
 * its connection, and an ev_prepare watcher flushes every marked connection once per
 * loop iteration, so the queries of one batch of client datagrams leave in one TLS
 * record where they fit.
 *
 * nghttp2's callbacks only record what happened on a stream. A stream that closed is put
 * on its connection's finished list, and its attempt is completed (on_done) after
 * nghttp2 has returned, so that an attempt's owner, which may retry at once, never
 * re-enters nghttp2 from inside one of its callbacks.
 */
#include "dnsward/doh.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "dnsward/base64.h"
#include "dnsward/config.h"
#include "dnsward/log.h"
#include "dnsward/tls_stream.h"
#include "dnsward/util.h"

enum {
    DOH_QUERY_MAX = 1024, /* a padded upstream query is far smaller */
    DOH_BODY_MAX = DNS_MAX_MSG,
    DOH_HEADERS_MAX = 16 * 1024, /* bytes of response header fields per stream */
    DOH_WRITE_MAX = 512 * 1024,  /* queued bytes per connection */
    DOH_GET_PATH_MAX = UPSTREAM_PATH_MAX + 8 + (DOH_QUERY_MAX + 2) / 3 * 4,
};

#define DOH_MEDIA_TYPE "application/dns-message"

struct doh_conn;

/* One query's HTTP/2 stream. It lives from submission until nghttp2 closes the stream,
 * which may be after its attempt was cancelled (a is NULL then). */
struct doh_stream {
    struct attempt *a;
    struct doh_conn *c;
    LIST_ENTRY(doh_stream) entry; /* on c->streams, then c->finished */
    int32_t id;
    int status;   /* :status of the final response, 0 until seen */
    bool type_ok; /* content-type is application/dns-message */
    int err;      /* an error found before the stream closed, or its outcome */
    size_t hdr_bytes;
    uint8_t *body; /* the response body, at most DOH_BODY_MAX */
    size_t len;
    size_t cap;
    size_t sent;    /* request body bytes given to nghttp2 */
    double sent_at; /* ev_now() when it was submitted */
    uint16_t qlen;
    uint8_t query[]; /* the request body (POST) */
};
LIST_HEAD(doh_stream_list, doh_stream);

struct doh_upstream;

struct doh_conn {
    struct tls_stream ts;
    struct doh_upstream *up;
    nghttp2_session *h2;
    LIST_ENTRY(doh_conn) entry;
    struct doh_stream_list streams;  /* open streams */
    struct doh_stream_list finished; /* closed, their attempts not yet completed */
    unsigned nstreams;               /* open streams, cancelled ones included */
    unsigned nattempts;              /* open streams that carry an attempt */
    ev_timer timer;                  /* handshake, PING and idle deadlines */
    double opened;                   /* ev_now() at connect */
    double last_rx;                  /* when bytes were last received */
    double idle_since;               /* when the last stream closed */
    double last_response;            /* when a response frame last arrived, on any stream */
    double ping_deadline;            /* 0, or when an unanswered PING gives up on us */
    bool ready;
    bool goaway;  /* takes no new stream: GOAWAY received, or stream IDs ran out */
    bool dead;    /* closed: no stream may be added */
    bool in_read; /* inside a read or flush: freeing is deferred */
    bool free_pending;
    bool want_flush;
};

struct doh_upstream {
    struct upstream base;
    struct ev_loop *loop;
    const struct config *cfg;
    SSL_CTX *ctx;
    SSL_SESSION *session; /* the last one the upstream gave us, to resume */
    nghttp2_session_callbacks *callbacks;
    LIST_HEAD(, doh_conn) conns;
    unsigned nconns;
    ev_prepare flusher;
    bool flush_fed; /* the flusher is pending */
    bool draining;
};

static struct log_limit answer_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit conn_limit = LOG_LIMIT_INIT(10, 5);
/* A GOAWAY is routine (a server's idle close), but one that sends it on every connection
 * would otherwise log a line per reconnect. */
static struct log_limit goaway_limit = LOG_LIMIT_INIT(60, 5);

static const char doh_alpn[] = "\x02h2";

static void doh_conn_rearm(struct doh_conn *c);

/* Mark c for flushing. The flusher is fed as a pending event rather than started as a
 * prepare watcher: libev runs a fed event in the same pass of pending callbacks, right
 * after the callback that fed it (a whole batch of client datagrams), even when that
 * callback is itself a flush, so a retry submitted while flushing never waits for the
 * loop to wake up again. */
static void doh_schedule_flush(struct doh_conn *c)
{
    struct doh_upstream *up = c->up;
    if (c->dead)
        return;
    c->want_flush = true;
    if (!up->flush_fed) {
        up->flush_fed = true;
        ev_feed_event(up->loop, &up->flusher, EV_CUSTOM);
    }
}

static void doh_stream_free(struct doh_stream *st)
{
    free(st->body);
    free(st);
}

static void doh_conn_free(struct doh_conn *c)
{
    nghttp2_session_del(c->h2);
    free(c);
}

/* Hand st's outcome to its attempt, if it still has one, and free st. */
static void doh_stream_complete(struct doh_stream *st, int err)
{
    struct attempt *a = st->a;
    struct doh_conn *c = st->c;
    struct doh_upstream *up = c->up;
    if (a == NULL) {
        doh_stream_free(st);
        return;
    }
    st->a = NULL;
    a->conn = NULL;
    c->nattempts--;
    struct dns_answer ans;
    if (err == 0) {
        const char *url = up->base.spec->url;
        if (dns_answer_parse(st->body, st->len, &ans) < 0) {
            err = -EBADMSG;
            log_limited(&answer_limit, LOG_WARNING, "upstream %s: the body is not a DNS answer",
                        url);
        } else if (ans.id != 0 || !dns_question_equal(a->wire, a->len, st->body, st->len)) {
            /* RFC 8484 §4.1: we sent ID 0, and the answer must be to our question. */
            err = -EBADMSG;
            up->base.stats.unmatched++;
            log_limited(&answer_limit, LOG_WARNING,
                        "upstream %s: dropped an answer with ID %u or to another question", url,
                        ans.id);
        }
    }
    a->on_done(a, err, err ? NULL : st->body, err ? 0 : st->len, err ? NULL : &ans);
    doh_stream_free(st);
}

/* Complete the attempts of the streams nghttp2 has closed. */
static void doh_conn_complete(struct doh_conn *c)
{
    struct doh_stream *st;
    while ((st = LIST_FIRST(&c->finished)) != NULL) {
        LIST_REMOVE(st, entry);
        doh_stream_complete(st, st->err);
    }
}

/* Take c out of service: no new streams, the socket closed, every attempt it carried
 * failed with err (their owners retry elsewhere) unless its answer had already arrived.
 * c is freed here, or when the read or flush that is running returns. */
static void doh_conn_close(struct doh_conn *c, int err)
{
    if (c->dead)
        return;
    struct doh_upstream *up = c->up;
    c->dead = true;
    LIST_REMOVE(c, entry);
    up->nconns--;
    ev_timer_stop(up->loop, &c->timer);
    tls_stream_close(&c->ts);
    struct doh_stream *st;
    while ((st = LIST_FIRST(&c->streams)) != NULL) {
        LIST_REMOVE(st, entry);
        c->nstreams--;
        doh_stream_complete(st, err);
    }
    doh_conn_complete(c);
    if (c->in_read)
        c->free_pending = true;
    else
        doh_conn_free(c);
}

/* Close politely: a GOAWAY if it can still leave, then the connection. */
static void doh_conn_retire(struct doh_conn *c)
{
    if (c->ready && nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR) == 0) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n > 0)
            (void)tls_stream_write(&c->ts, data, (size_t)n);
    }
    doh_conn_close(c, -ESHUTDOWN);
}

/* Give TLS what nghttp2 has to send, then complete what has finished. */
static void doh_conn_flush(struct doh_conn *c)
{
    c->want_flush = false;
    if (c->dead || !c->ready)
        return;
    c->in_read = true;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            log_limited(&conn_limit, LOG_WARNING, "upstream %s: HTTP/2: %s", c->up->base.spec->url,
                        nghttp2_strerror((int)n));
            doh_conn_close(c, -EPROTO);
            break;
        }
        if (n == 0)
            break;
        /* The queue holds at most the requests of the streams allowed at once. */
        if (tls_stream_write(&c->ts, data, (size_t)n) < 0) {
            doh_conn_close(c, -ENOBUFS);
            break;
        }
    }
    if (!c->dead)
        doh_conn_complete(c);
    c->in_read = false;
    if (c->free_pending) {
        doh_conn_free(c);
        return;
    }
    if (c->dead)
        return;
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
        doh_conn_close(c, -ECONNRESET); /* the session is over (after GOAWAY) */
        return;
    }
    if (c->up->draining && c->nattempts == 0) {
        doh_conn_retire(c); /* shutting down, and nothing is waiting for it any more */
        return;
    }
    doh_conn_rearm(c);
}

static void on_doh_flusher(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct doh_upstream *up = container_of(w, struct doh_upstream, flusher);
    up->flush_fed = false;
    struct doh_conn *c, *next;
    for (c = LIST_FIRST(&up->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, entry);
        if (c->want_flush)
            doh_conn_flush(c);
    }
}

/* The one timer of a connection fires at the earliest of: the handshake's deadline, an
 * unanswered PING's deadline, the end of idleness. */
static void doh_conn_rearm(struct doh_conn *c)
{
    struct doh_upstream *up = c->up;
    if (c->dead)
        return; /* its timer was stopped for good */
    double now = ev_now(up->loop);
    double at = 0;
    if (!c->ready)
        at = c->opened + up->cfg->attempt_timeout_ms / 1000.0;
    else if (c->ping_deadline > 0)
        at = c->ping_deadline;
    else if (c->nstreams == 0)
        at = c->idle_since + up->cfg->upstream_idle_timeout_ms / 1000.0;
    ev_timer_stop(up->loop, &c->timer);
    if (at > 0) {
        ev_timer_set(&c->timer, at > now ? at - now : 0, 0);
        ev_timer_start(up->loop, &c->timer);
    }
}

static void on_doh_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct doh_conn *c = container_of(w, struct doh_conn, timer);
    const char *url = c->up->base.spec->url;
    double now = ev_now(loop);
    if (!c->ready) {
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: connection timed out", url);
        upstream_addr_failed(&c->up->base);
        doh_conn_close(c, -ETIMEDOUT);
    } else if (c->ping_deadline > 0 && now >= c->ping_deadline) {
        log_limited(&conn_limit, LOG_WARNING,
                    "upstream %s: no answer to a PING after %.0f s of silence, reconnecting", url,
                    now - c->last_rx);
        doh_conn_close(c, -ECONNRESET); /* found dead: "closed" */
    } else if (c->nstreams == 0 &&
               now >= c->idle_since + c->up->cfg->upstream_idle_timeout_ms / 1000.0) {
        log_debug("upstream %s: closing idle connection", url);
        doh_conn_retire(c);
    } else {
        doh_conn_rearm(c);
    }
}

/* nghttp2 callbacks: they record, and never complete an attempt themselves. */

static int on_h2_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data)
{
    (void)flags;
    struct doh_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    c->last_response = c->last_rx;
    struct doh_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    st->hdr_bytes += namelen + valuelen;
    if (st->hdr_bytes > DOH_HEADERS_MAX) {
        st->err = -EPROTO;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        /* nghttp2's HTTP messaging checks have made it three digits. */
        st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        st->type_ok = false; /* a final response after a 1xx starts afresh */
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        /* RFC 8484 §6; media types are case-insensitive and may carry parameters. */
        size_t n = sizeof(DOH_MEDIA_TYPE) - 1;
        st->type_ok = valuelen >= n && strncasecmp((const char *)value, DOH_MEDIA_TYPE, n) == 0 &&
                      (valuelen == n || value[n] == ';' || value[n] == ' ');
    }
    return 0;
}

static int on_h2_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    struct doh_conn *c = user_data;
    c->last_response = c->last_rx;
    struct doh_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL || st->a == NULL || st->err != 0)
        return 0;
    if (st->len + len > DOH_BODY_MAX) {
        st->err = -EMSGSIZE;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        return 0;
    }
    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 512;
        while (cap < st->len + len)
            cap *= 2;
        if (cap > DOH_BODY_MAX)
            cap = DOH_BODY_MAX;
        uint8_t *nb = realloc(st->body, cap);
        if (nb == NULL) {
            st->err = -ENOMEM;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
            return 0;
        }
        st->body = nb;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, len);
    st->len += len;
    return 0;
}

static int on_h2_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    struct doh_conn *c = user_data;
    struct doh_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    LIST_REMOVE(st, entry);
    c->nstreams--;
    if (c->nstreams == 0)
        c->idle_since = ev_now(c->up->loop);
    if (st->err != 0)
        ; /* what went wrong first is what counts */
    else if (error_code == NGHTTP2_REFUSED_STREAM)
        st->err = -ECONNABORTED; /* RFC 9113 §8.7: not processed, safe to retry */
    else if (error_code != NGHTTP2_NO_ERROR)
        st->err = -ECONNRESET;
    else if (st->status == 0)
        st->err = -EPROTO;
    else if (st->status != 200)
        st->err = -EREMOTEIO;
    else if (!st->type_ok)
        st->err = -EMEDIUMTYPE;
    if (st->a != NULL && st->err == -EREMOTEIO)
        log_limited(&answer_limit, LOG_WARNING, "upstream %s: HTTP status %d",
                    c->up->base.spec->url, st->status);
    else if (st->a != NULL && st->err != 0 && st->err != -ECONNABORTED)
        log_limited(
            &answer_limit, LOG_WARNING, "upstream %s: stream failed: %s", c->up->base.spec->url,
            st->err == -EMEDIUMTYPE ? "content-type is not " DOH_MEDIA_TYPE : strerror(-st->err));
    LIST_INSERT_HEAD(&c->finished, st, entry);
    return 0;
}

static int on_h2_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    struct doh_conn *c = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY && !c->goaway) {
        /* nghttp2 closes the streams above last_stream_id with REFUSED_STREAM; the rest
         * finish, and then the connection closes. */
        c->goaway = true;
        log_limited(&goaway_limit, LOG_INFO, "upstream %s: GOAWAY (error %u, last stream %d)",
                    c->up->base.spec->url, frame->goaway.error_code, frame->goaway.last_stream_id);
    }
    return 0;
}

static ssize_t doh_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct doh_stream *st = source->ptr;
    size_t n = st->qlen - st->sent;
    if (n > length)
        n = length;
    memcpy(buf, st->query + st->sent, n);
    st->sent += n;
    if (st->sent == st->qlen)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* TLS stream callbacks */

static void on_doh_ready(struct tls_stream *ts)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    struct doh_upstream *up = c->up;
    size_t alpn_len = 0;
    const char *alpn = tls_stream_alpn(ts, &alpn_len);
    if (alpn == NULL || alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        /* RFC 8484 §5.2: HTTP/2 is the minimum; we speak nothing else to upstreams. */
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: the server does not speak HTTP/2",
                    up->base.spec->url);
        doh_conn_close(c, -EPROTO);
        return;
    }
    c->ready = true;
    if (tls_stream_resumed(ts))
        up->base.stats.resumed++;
    log_debug("upstream %s: connected%s", up->base.spec->url,
              tls_stream_resumed(ts) ? " (session resumed)" : "");
    c->last_rx = ev_now(up->loop);
    c->idle_since = c->last_rx;
    if (up->draining && c->nattempts == 0) {
        doh_conn_close(c, -ESHUTDOWN);
        return;
    }
    doh_schedule_flush(c); /* the preface and the requests queued meanwhile */
    doh_conn_rearm(c);
}

static void on_doh_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    c->last_rx = ev_now(c->up->loop);
    c->ping_deadline = 0; /* anything received shows the connection alive */
    c->in_read = true;
    ssize_t rv = nghttp2_session_mem_recv(c->h2, data, len);
    c->in_read = false;
    if (rv < 0) {
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: HTTP/2: %s", c->up->base.spec->url,
                    nghttp2_strerror((int)rv));
        doh_conn_close(c, -EPROTO);
        return;
    }
    /* Answers complete here, and what nghttp2 owes the server (WINDOW_UPDATE, SETTINGS
     * and PING acknowledgements) leaves now. */
    doh_conn_flush(c);
}

static void on_doh_close(struct tls_stream *ts, int err)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    if (err != 0 || c->nattempts > 0)
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: connection %s: %s",
                    c->up->base.spec->url, c->ready ? "lost" : "failed",
                    err ? strerror(-err) : "closed by the upstream");
    if (!c->ready)
        upstream_addr_failed(&c->up->base);
    doh_conn_close(c, err ? err : -ECONNRESET);
}

static void on_doh_session(struct tls_stream *ts, SSL_SESSION *session)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    SSL_SESSION_free(c->up->session);
    c->up->session = session;
}

static const struct tls_stream_cbs doh_stream_cbs = {
    .on_ready = on_doh_ready,
    .on_data = on_doh_data,
    .on_close = on_doh_close,
    .on_session = on_doh_session,
};

/* Open a connection to the upstream's current address, with its HTTP/2 session and
 * SETTINGS queued. Returns it, or NULL with *err: -EAGAIN (no address yet, or the
 * connect-rate bound), -ENOMEM, or a socket error. */
static struct doh_conn *doh_conn_new(struct doh_upstream *up, int *err)
{
    const struct upstream_spec *spec = up->base.spec;
    const struct sockaddr *sa;
    socklen_t salen;
    *err = upstream_connect_target(&up->base, ev_now(up->loop), &sa, &salen);
    if (*err < 0)
        return NULL;
    *err = -ENOMEM;
    struct doh_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->up = up;
    LIST_INIT(&c->streams);
    LIST_INIT(&c->finished);
    if (nghttp2_session_client_new(&c->h2, up->callbacks, c) != 0)
        goto fail_conn;
    /* No server push (RFC 8484 §5.2 allows it, but nothing here would use it), and
     * answers bounded by a DNS message's size. */
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, DOH_HEADERS_MAX},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, settings, ARRAY_SIZE(settings)) != 0)
        goto fail_h2;
    struct tls_peer peer;
    upstream_tls_peer(spec, up->session, &peer);
    peer.alpn = doh_alpn;
    peer.alpn_len = sizeof(doh_alpn) - 1;
    *err = tls_stream_connect(&c->ts, up->loop, up->ctx, sa, salen, &peer, &doh_stream_cbs,
                              DOH_WRITE_MAX);
    if (*err < 0) {
        /* No socket for this address (no IPv6 on this host, say): try the next one. */
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: %s", spec->url, strerror(-*err));
        upstream_addr_failed(&up->base);
        goto fail_h2;
    }
    c->opened = ev_now(up->loop);
    ev_timer_init(&c->timer, on_doh_timer, 0, 0);
    LIST_INSERT_HEAD(&up->conns, c, entry);
    up->nconns++;
    up->base.stats.connects++;
    doh_conn_rearm(c);
    return c;

fail_h2:
    nghttp2_session_del(c->h2);
fail_conn:
    free(c);
    return NULL;
}

/* How many streams c may carry at once: the server's limit, and ours. */
static unsigned doh_conn_limit(const struct doh_conn *c)
{
    uint32_t peer =
        nghttp2_session_get_remote_settings(c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    unsigned ours = c->up->cfg->upstream_max_inflight;
    return peer < ours ? peer : ours;
}

/* The connection for the next stream: one with room, else a new one while the limit
 * allows. Returns NULL with *err set when there is none. */
static struct doh_conn *doh_pick_conn(struct doh_upstream *up, int *err)
{
    struct doh_conn *c;
    LIST_FOREACH(c, &up->conns, entry) {
        if (!c->goaway && c->nstreams < doh_conn_limit(c))
            return c;
    }
    if (up->nconns >= up->cfg->upstream_max_connections) {
        *err = -ENOBUFS;
        return NULL;
    }
    return doh_conn_new(up, err);
}

/* Submit st's request on c. Returns the stream ID or a negative nghttp2 error. */
static int32_t doh_submit(struct doh_upstream *up, struct doh_conn *c, struct doh_stream *st)
{
    const struct upstream_spec *spec = up->base.spec;
    char len_text[8];
    char path[DOH_GET_PATH_MAX];
    bool get = up->cfg->doh_method == CONFIG_DOH_GET;
#define DOH_NV(n, v, vlen)                                                                         \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE                \
    }
    if (get) {
        /* RFC 8484 §4.1: the query in base64url without padding, as the dns variable. */
        int n = snprintf(path, sizeof(path), "%s%s", spec->path,
                         strchr(spec->path, '?') ? "&dns=" : "?dns=");
        if (n < 0 || base64url_encode(st->query, st->qlen, path + n, sizeof(path) - (size_t)n) < 0)
            return NGHTTP2_ERR_INVALID_ARGUMENT;
    }
    snprintf(len_text, sizeof(len_text), "%u", (unsigned)st->qlen);
    const char *method = get ? "GET" : "POST";
    const char *p = get ? path : spec->path;
    nghttp2_nv nva[] = {
        DOH_NV(":method", method, strlen(method)),
        DOH_NV(":scheme", "https", 5),
        DOH_NV(":authority", spec->authority, strlen(spec->authority)),
        DOH_NV(":path", p, strlen(p)),
        DOH_NV("accept", DOH_MEDIA_TYPE, sizeof(DOH_MEDIA_TYPE) - 1),
        DOH_NV("content-type", DOH_MEDIA_TYPE, sizeof(DOH_MEDIA_TYPE) - 1),
        DOH_NV("content-length", len_text, strlen(len_text)),
    };
#undef DOH_NV
    nghttp2_data_provider body = {.source.ptr = st, .read_callback = doh_read_body};
    /* A GET has no body, so neither content-type nor content-length. */
    return nghttp2_submit_request(c->h2, NULL, nva, get ? 5 : ARRAY_SIZE(nva), get ? NULL : &body,
                                  st);
}

static int doh_send(struct upstream *u, struct attempt *a)
{
    struct doh_upstream *up = container_of(u, struct doh_upstream, base);
    if (up->draining)
        return -ESHUTDOWN;
    if (a->len > DOH_QUERY_MAX || a->len < DNS_HEADER_LEN)
        return -EMSGSIZE;
    int rc;
    struct doh_conn *c = doh_pick_conn(up, &rc);
    if (c == NULL)
        return rc;
    struct doh_stream *st = calloc(1, sizeof(*st) + a->len);
    if (st == NULL)
        return -ENOMEM;
    st->a = a;
    st->c = c;
    st->qlen = a->len;
    st->sent_at = ev_now(up->loop);
    memcpy(st->query, a->wire, a->len);
    int32_t id = doh_submit(up, c, st);
    if (id < 0) {
        free(st);
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
            c->goaway = true; /* used up: new streams go to a new connection */
            return -ENOBUFS;
        }
        return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
    }
    st->id = id;
    LIST_INSERT_HEAD(&c->streams, st, entry);
    c->nstreams++;
    double now = st->sent_at;
    c->nattempts++;
    a->conn = st;
    a->sent = true;
    a->fresh = !c->ready;
    /* After a long silence the connection may be gone without a word (sleep, a new
     * network): a PING with this query finds out within the attempt timeout. */
    if (c->ready && c->ping_deadline == 0 && now - c->last_rx >= DOH_PING_IDLE &&
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0)
        c->ping_deadline = now + u->rto;
    doh_schedule_flush(c);
    doh_conn_rearm(c);
    return 0;
}

static void doh_cancel(struct upstream *u, struct attempt *a)
{
    struct doh_upstream *up = container_of(u, struct doh_upstream, base);
    struct doh_stream *st = a->conn;
    if (st == NULL)
        return;
    struct doh_conn *c = st->c;
    st->a = NULL;
    a->conn = NULL;
    c->nattempts--;
    if (c->dead)
        return; /* closing: its streams are being completed, and st with them */
    /* The stream stays until nghttp2 closes it; the server is told to stop. */
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    doh_schedule_flush(c);
    /* An attempt given up with no response on the connection since it was sent: a slow
     * name, or a connection that is gone without a word (the server's SETTINGS or a
     * PING reply say nothing about that). A PING tells them apart within another
     * attempt timeout; without an answer the connection is closed from its timer
     * (closing here would fail the other attempts, and cancel must not call back). */
    double now = ev_now(up->loop);
    if (c->ready && c->ping_deadline == 0 && c->last_response < st->sent_at &&
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0) {
        c->ping_deadline = now + u->rto;
        doh_conn_rearm(c);
    }
}

static void doh_drain(struct upstream *u)
{
    struct doh_upstream *up = container_of(u, struct doh_upstream, base);
    up->draining = true;
    struct doh_conn *c, *next;
    for (c = LIST_FIRST(&up->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, entry);
        if (c->nattempts == 0)
            doh_conn_retire(c);
    }
}

static void doh_free(struct upstream *u)
{
    struct doh_upstream *up = container_of(u, struct doh_upstream, base);
    up->draining = true;
    struct doh_conn *c;
    while ((c = LIST_FIRST(&up->conns)) != NULL)
        doh_conn_close(c, -ESHUTDOWN);
    ev_clear_pending(up->loop, &up->flusher);
    nghttp2_session_callbacks_del(up->callbacks);
    SSL_SESSION_free(up->session);
    free(up);
}

static const struct upstream_ops doh_ops = {
    .send = doh_send,
    .cancel = doh_cancel,
    .drain = doh_drain,
    .free = doh_free,
};

struct upstream *doh_upstream_new(struct ev_loop *loop, const struct upstream_spec *spec,
                                  const struct config *cfg, SSL_CTX *ctx)
{
    struct doh_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    if (nghttp2_session_callbacks_new(&up->callbacks) != 0) {
        free(up);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_header_callback(up->callbacks, on_h2_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(up->callbacks, on_h2_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(up->callbacks, on_h2_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(up->callbacks, on_h2_frame_recv);
    upstream_init(&up->base, &doh_ops, spec, cfg->upstream_connect_rate,
                  cfg->upstream_connect_rate + cfg->upstream_max_connections,
                  cfg->attempt_timeout_ms / 1000.0);
    up->loop = loop;
    up->cfg = cfg;
    up->ctx = ctx;
    ev_prepare_init(&up->flusher, on_doh_flusher); /* never started: fed (doh_schedule_flush) */
    LIST_INIT(&up->conns);
    return &up->base;
}
