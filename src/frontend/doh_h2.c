/* doh_h2: the DoH frontend's HTTP/2 (RFC 9113), with nghttp2 as a server. See
 * include/dnsward/doh_server.h.
 *
 * Bytes read go to nghttp2_session_mem_recv; what it has to send is pulled with
 * nghttp2_session_mem_send by the flusher (doh_h2_output), once per loop iteration. The
 * callbacks record a request's head (the fields we need are kept as nghttp2's own
 * reference-counted buffers, not copied), collect a POST's body, and hand a complete
 * request to the shared handler, which may submit the response at once (a cache hit)
 * from inside the callback: nghttp2 allows submitting from its callbacks. A stream's
 * request is freed only in on_stream_close (or when the connection closes), after its
 * query, if any, is cancelled.
 *
 * Our SETTINGS: MAX_CONCURRENT_STREAMS = cfg->doh_max_streams; MAX_HEADER_LIST_SIZE =
 * cfg->doh_max_header_size; INITIAL_WINDOW_SIZE = 65535 (a POST body is one DNS message
 * at most, RFC 8484 §6); NO_RFC7540_PRIORITIES (no priority tree to keep, RFC 9218 §2.1).
 *
 * Concurrency beyond the limit (RFC 9113 §5.1.2): a client that opens more streams than
 * MAX_CONCURRENT_STREAMS before it has acknowledged our SETTINGS gets REFUSED_STREAM for
 * the streams beyond it (safe to retry, §8.7) and the rest are served; one that does so
 * after acknowledging them has broken the protocol, and nghttp2 ends the connection with
 * GOAWAY(PROTOCOL_ERROR). Real clients (browsers, curl, h2load) queue their requests
 * behind the limit instead.
 *
 * What a hostile client gets, each ending in a GOAWAY or a close with bounded memory and
 * CPU (nghttp2 1.52 has no rapid-reset bound of its own; Debian's build has one,
 * 1000 at once and 33 a second, that ours is well inside):
 *   - rapid reset (streams opened and reset at once, CVE-2023-44487): RST_STREAM frames
 *     are counted in a bucket of 2 x doh-max-streams, refilled at doh-max-streams a
 *     second; beyond it GOAWAY(ENHANCE_YOUR_CALM);
 *   - PING, SETTINGS, PRIORITY and empty DATA floods (CVE-2019-9512, -9515, -9518): a
 *     bucket of DOH_H2_CONTROL_BURST, DOH_H2_CONTROL_RATE a second, then the same; the
 *     acknowledgements nghttp2 owes a client that does not read them are capped too
 *     (max_outbound_ack: nghttp2 fails with NGHTTP2_ERR_FLOODED, and we end the session
 *     with the same GOAWAY);
 *   - CONTINUATION floods (CVE-2024-28182): more than DOH_H2_MAX_CONTINUATIONS of them
 *     after one HEADERS: GOAWAY(ENHANCE_YOUR_CALM) (Debian's nghttp2 stops at 8 by
 *     itself, NGHTTP2_ERR_TOO_MANY_CONTINUATIONS: the same GOAWAY);
 *   - header lists beyond cfg->doh_max_header_size (counted as RFC 9113 §6.5.2 says:
 *     name, value and 32 per field, after HPACK decoding, so an HPACK bomb of one large
 *     table entry referenced over and over is counted at its decoded size) or with more
 *     than HTTP1_MAX_FIELDS fields: a 431; at four times either, the stream is reset
 *     (INTERNAL_ERROR) and nghttp2 decodes the rest of the block without calling us. HPACK's
 * dynamic table is the default 4096 bytes each way (our encoder's bounded by
 *     max_deflate_dynamic_table_size whatever the client allows);
 *   - stream errors (malformed requests nghttp2 resets): a bucket of DOH_H2_ERRORS_BURST,
 *     then GOAWAY(ENHANCE_YOUR_CALM);
 *   - a stream opened and never finished: 408 and a reset at the header timeout
 *     (counted as a stream error); a connection that does nothing: the idle timeout.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/config.h"
#include "dnsward/doh_server.h"
#include "dnsward/dohreq.h"
#include "dnsward/http1.h"
#include "dnsward/log.h"
#include "dnsward/util.h"

enum {
    DOH_H2_CONTROL_BURST = 200,
    DOH_H2_CONTROL_RATE = 20,
    DOH_H2_ERRORS_BURST = 20,
    DOH_H2_ERRORS_RATE = 1,
    DOH_H2_MAX_CONTINUATIONS = 16,
    DOH_H2_MAX_OUTBOUND_ACK = 128,
    DOH_H2_DEFLATE_TABLE = 4096,
    DOH_H2_DRAIN = 2 * DOH_MSG_MAX, /* body bytes let finish after an early response */
};

static struct log_limit h2_limit = LOG_LIMIT_INIT(10, 5);

static void doh_h2_log(const struct doh_conn *c, const char *what)
{
    char who[64];
    config_format_addr((const struct sockaddr *)&c->peer, who, sizeof(who));
    log_limited(&h2_limit, LOG_INFO, "%s: client %s: HTTP/2: %s", c->l->base.name, who, what);
}

/* A flood: the session is to end with GOAWAY(ENHANCE_YOUR_CALM). nghttp2 stops reading
 * at once (a callback failure); doh_h2_input then terminates the session. */
static int doh_h2_calm(struct doh_conn *c, const char *what)
{
    if (c->h2_calm == 0) {
        c->h2_calm = NGHTTP2_ENHANCE_YOUR_CALM;
        doh_h2_log(c, what);
    }
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static double doh_h2_now(const struct doh_conn *c)
{
    return ev_now(c->l->base.loop);
}

static void doh_h2_release_headers(struct doh_req *req)
{
    for (size_t i = 0; i < DOH_HDR_N; i++) {
        if (req->hdr[i] != NULL) {
            nghttp2_rcbuf_decref(req->hdr[i]);
            req->hdr[i] = NULL;
        }
    }
}

static void doh_h2_not_reading(struct doh_req *req)
{
    if (req->on_reading) {
        TAILQ_REMOVE(&req->c->reading, req, reading);
        req->on_reading = false;
    }
}

/* The request is complete (END_STREAM): a POST goes to the core now. */
static void doh_h2_end(struct doh_req *req)
{
    req->complete = true;
    doh_h2_not_reading(req);
    if (req->responded || req->method != DOHREQ_POST)
        return;
    doh_req_query(req, req->data ? req->data : req->buf, req->len);
}

/* The request's head is complete: judge it. A GET is answered from here; a POST waits
 * for its body. */
static void doh_h2_head(struct doh_conn *c, struct doh_req *req)
{
    struct doh_listener *l = c->l;
    int status = req->status;
    size_t qlen = 0;
    req->head_done = true;
    if (status == 0 && (req->hdr[DOH_HDR_METHOD] == NULL || req->hdr[DOH_HDR_PATH] == NULL)) {
        /* nghttp2 has checked the pseudo-header fields; only CONNECT has no :path. */
        status = 405;
    } else if (status == 0) {
        nghttp2_vec method = nghttp2_rcbuf_get_buf(req->hdr[DOH_HDR_METHOD]);
        nghttp2_vec path = nghttp2_rcbuf_get_buf(req->hdr[DOH_HDR_PATH]);
        nghttp2_vec ctype = {NULL, 0};
        if (req->hdr[DOH_HDR_CTYPE] != NULL)
            ctype = nghttp2_rcbuf_get_buf(req->hdr[DOH_HDR_CTYPE]);
        req->method = dohreq_method((const char *)method.base, method.len);
        if (req->hdr[DOH_HDR_XFF] != NULL) {
            nghttp2_vec xff = nghttp2_rcbuf_get_buf(req->hdr[DOH_HDR_XFF]);
            status = doh_req_forwarded(req, (const char *)xff.base, xff.len);
        }
        if (status == 0)
            status =
                dohreq_head(l->base.cfg->doh_path, req->method, (const char *)path.base, path.len,
                            (const char *)ctype.base, ctype.len, l->query, sizeof(l->query), &qlen);
        /* The length known at once: refused before a byte of the body is read. (Room
         * for the body is made as it comes, not for what content-length promises.) */
        if (status == 0 && req->method == DOHREQ_POST && req->clen > DOH_MSG_MAX)
            status = 413;
    }
    doh_h2_release_headers(req);
    if (status != 0) {
        doh_req_error(req, status);
        return;
    }
    if (req->method == DOHREQ_GET) {
        /* Answered now, even if the client has not ended its side (a GET has no body to
         * wait for): l->query holds the decoded query only for this call. */
        doh_h2_not_reading(req);
        doh_req_query(req, l->query, qlen);
    } else if (req->complete) {
        doh_h2_end(req);
    } else {
        /* The body is to come within the header timeout (doh_h2_expire). */
        doh_conn_arm(c, req->started + l->base.cfg->doh_header_timeout_ms / 1000.0);
    }
}

/* nghttp2 callbacks */

static int on_h2_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user_data)
{
    (void)session;
    struct doh_conn *c = user_data;
    double now = doh_h2_now(c);
    double streams = c->l->base.cfg->doh_max_streams;
    switch (hd->type) {
    case NGHTTP2_HEADERS:
        c->h2_conts = 0;
        break;
    case NGHTTP2_CONTINUATION:
        if (++c->h2_conts > DOH_H2_MAX_CONTINUATIONS)
            return doh_h2_calm(c, "CONTINUATION flood: GOAWAY");
        break;
    case NGHTTP2_RST_STREAM:
        if (!doh_bucket_take(&c->h2_resets, now, 2 * streams, streams))
            return doh_h2_calm(c, "too many stream resets (rapid reset): GOAWAY");
        break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (hd->flags & NGHTTP2_FLAG_ACK)
            break;
        /* fall through */
    case NGHTTP2_PRIORITY:
        if (!doh_bucket_take(&c->h2_control, now, DOH_H2_CONTROL_BURST, DOH_H2_CONTROL_RATE))
            return doh_h2_calm(c, "control frame flood: GOAWAY");
        break;
    case NGHTTP2_DATA:
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM) &&
            !doh_bucket_take(&c->h2_control, now, DOH_H2_CONTROL_BURST, DOH_H2_CONTROL_RATE))
            return doh_h2_calm(c, "empty DATA flood: GOAWAY");
        break;
    default:
        break;
    }
    return 0;
}

static int on_h2_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                               void *user_data)
{
    struct doh_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct doh_req *req = doh_req_new(c);
    if (req == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* this stream is reset */
    req->id = frame->hd.stream_id;
    TAILQ_INSERT_TAIL(&c->reading, req, reading);
    req->on_reading = true;
    c->last_progress = req->started;
    nghttp2_session_set_stream_user_data(session, req->id, req);
    /* A header block continued in CONTINUATION frames: it is to end within the header
     * timeout too. (A whole one is judged at once: no timer work on the hot path.) */
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_HEADERS))
        doh_conn_arm(c, req->started + c->l->base.cfg->doh_header_timeout_ms / 1000.0);
    return 0;
}

/* The value of content-length: nghttp2 has checked that it is a number. */
static int64_t doh_h2_clen(const uint8_t *v, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
        if (n > DOH_MSG_MAX)
            return DOH_MSG_MAX + 1;
    }
    return n;
}

static bool doh_h2_is(nghttp2_vec n, const char *name, size_t len)
{
    return n.len == len && memcmp(n.base, name, len) == 0;
}

static int on_h2_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                        nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    (void)flags;
    struct doh_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct doh_req *req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (req == NULL)
        return 0;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    nghttp2_vec v = nghttp2_rcbuf_get_buf(value);
    size_t max = c->l->base.cfg->doh_max_header_size;
    /* RFC 9113 §6.5.2: a field's size is its name's and its value's, plus 32. Trailers
     * count too: they are part of the same request. */
    req->hdr_bytes += n.len + v.len + 32;
    req->nfields++;
    if (req->hdr_bytes > max || req->nfields > HTTP1_MAX_FIELDS) {
        if (req->hdr_bytes > 4 * max || req->nfields > 4 * HTTP1_MAX_FIELDS)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (req->status == 0) {
            req->status = 431; /* RFC 9113 §10.5.1 */
            doh_h2_release_headers(req);
        }
        return 0;
    }
    if (req->status != 0 || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    int idx = -1;
    switch (n.len) {
    case 5:
        idx = doh_h2_is(n, ":path", 5) ? DOH_HDR_PATH : -1;
        break;
    case 7:
        idx = doh_h2_is(n, ":method", 7) ? DOH_HDR_METHOD : -1;
        break;
    case 12:
        idx = doh_h2_is(n, "content-type", 12) ? DOH_HDR_CTYPE : -1;
        break;
    case 14:
        if (doh_h2_is(n, "content-length", 14))
            req->clen = doh_h2_clen(v.base, v.len);
        break;
    case 15:
        /* Believed only from a trusted proxy; the last field is the one it added. */
        if (c->trusted && doh_h2_is(n, "x-forwarded-for", 15))
            idx = DOH_HDR_XFF;
        break;
    default:
        break;
    }
    if (idx >= 0) {
        if (req->hdr[idx] != NULL)
            nghttp2_rcbuf_decref(req->hdr[idx]);
        nghttp2_rcbuf_incref(value);
        req->hdr[idx] = value;
    }
    return 0;
}

static int on_h2_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct doh_conn *c = user_data;
    struct doh_req *req;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            c->h2_settings = true; /* the preface is complete (RFC 9113 §3.4) */
        break;
    case NGHTTP2_HEADERS:
        req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (req == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            req->complete = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
            doh_h2_head(c, req);
        } else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            doh_h2_end(req); /* after trailers */
        }
        break;
    case NGHTTP2_DATA:
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            break;
        req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (req != NULL)
            doh_h2_end(req);
        break;
    default:
        break;
    }
    return 0;
}

/* Once a response has gone out before its request was complete, the stream is reset
 * (RST_STREAM NO_ERROR, RFC 9113 §8.1) if the client has more than req->drain bytes left
 * to send; a body shorter than that is let finish, so that a client that takes such a
 * reset for an error (curl 7.88 does) still gets its 413 or 415 cleanly. */
static void doh_h2_drained(nghttp2_session *session, struct doh_req *req, size_t len)
{
    if (!req->reset_after || req->complete)
        return;
    req->drain = len < req->drain ? req->drain - len : 0;
    if (req->drain == 0 && req->sent) {
        req->reset_after = false;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, req->id, NGHTTP2_NO_ERROR);
    }
}

static int on_h2_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    struct doh_req *req = nghttp2_session_get_stream_user_data(session, stream_id);
    if (req == NULL)
        return 0;
    req->received += len;
    /* A GET's body, and what comes after a response was decided, are dropped. */
    if (req->responded) {
        doh_h2_drained(session, req, len);
        return 0;
    }
    if (req->method != DOHREQ_POST)
        return 0;
    if (req->len + len > DOH_MSG_MAX) {
        doh_req_error(req, 413); /* the rest is not read */
        return 0;
    }
    uint8_t *dst = doh_req_reserve(req, req->len + len);
    if (dst == NULL) {
        doh_req_error(req, 503);
        return 0;
    }
    memcpy(dst + req->len, data, len);
    req->len += len;
    return 0;
}

static int on_h2_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    (void)error_code;
    struct doh_conn *c = user_data;
    struct doh_req *req = nghttp2_session_get_stream_user_data(session, stream_id);
    if (req == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    /* A stream the client reset while its query waits: the query is cancelled here. */
    doh_req_free(req);
    c->last_progress = doh_h2_now(c);
    return 0;
}

static int on_h2_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct doh_conn *c = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        /* The session ends on an error (one nghttp2 found inside mem_recv, or ours): read
         * nothing more, and linger once this GOAWAY is written, so that the client reads
         * it rather than a reset (doh_conn_linger). */
        c->finishing = true;
        c->linger = true;
        c->last_progress = doh_h2_now(c);
        return 0;
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct doh_req *req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (req != NULL) {
        req->sent = true;
        doh_h2_drained(session, req, 0);
    }
    return 0;
}

static int on_h2_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame,
                               int lib_error_code, void *user_data)
{
    (void)session;
    (void)frame;
    struct doh_conn *c = user_data;
    double now = doh_h2_now(c);
    if (lib_error_code == NGHTTP2_ERR_REFUSED_STREAM) {
        /* A stream beyond MAX_CONCURRENT_STREAMS before our SETTINGS were acknowledged:
         * not an error (§5.1.2), but a reset of ours each, counted as resets are. */
        double streams = c->l->base.cfg->doh_max_streams;
        if (!doh_bucket_take(&c->h2_resets, now, 2 * streams, streams))
            return doh_h2_calm(c, "too many refused streams: GOAWAY");
        return 0;
    }
    if (!doh_bucket_take(&c->h2_errors, now, DOH_H2_ERRORS_BURST, DOH_H2_ERRORS_RATE))
        return doh_h2_calm(c, "too many protocol errors: GOAWAY");
    return 0;
}

static int on_h2_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                       void *user_data)
{
    (void)session;
    (void)lib_error_code;
    char what[160];
    snprintf(what, sizeof(what), "%.*s", (int)len, msg);
    doh_h2_log(user_data, what);
    return 0;
}

static ssize_t doh_h2_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct doh_req *req = source->ptr;
    size_t n = req->out_len - req->out_off;
    if (n > length)
        n = length;
    memcpy(buf, req->out + req->out_off, n);
    req->out_off += n;
    if (req->out_off == req->out_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The session */

int doh_h2_setup(struct doh_listener *l)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_h2_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_h2_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_h2_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_h2_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_h2_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_h2_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_h2_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_h2_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_h2_error);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -ENOMEM;
    }
    /* Closed streams are not kept (no priority tree: NO_RFC7540_PRIORITIES). */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, DOH_H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, DOH_H2_DEFLATE_TABLE);
    l->h2_callbacks = cbs;
    l->h2_option = opt;
    return 0;
}

void doh_h2_teardown(struct doh_listener *l)
{
    nghttp2_session_callbacks_del(l->h2_callbacks);
    nghttp2_option_del(l->h2_option);
    l->h2_callbacks = NULL;
    l->h2_option = NULL;
}

int doh_h2_start(struct doh_conn *c)
{
    const struct config *cfg = c->l->base.cfg;
    if (nghttp2_session_server_new2(&c->h2, c->l->h2_callbacks, c, c->l->h2_option) != 0)
        return -ENOMEM;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->doh_max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->doh_max_header_size},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, DOH_MSG_MAX},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, settings, ARRAY_SIZE(settings)) != 0)
        return -ENOMEM;
    double now = doh_h2_now(c);
    double streams = cfg->doh_max_streams;
    c->h2_resets = (struct doh_bucket){.tokens = 2 * streams, .last = now};
    c->h2_control = (struct doh_bucket){.tokens = DOH_H2_CONTROL_BURST, .last = now};
    c->h2_errors = (struct doh_bucket){.tokens = DOH_H2_ERRORS_BURST, .last = now};
    return 0;
}

/* Stop reading and end the session with GOAWAY(code): nothing more is answered. */
static void doh_h2_terminate(struct doh_conn *c, uint32_t code)
{
    nghttp2_session_terminate_session(c->h2, code);
    c->h2_goaway = true;
    c->finishing = true;
    c->linger = true;
    c->last_progress = doh_h2_now(c);
    doh_conn_pause(c, true); /* from inside a read: not one more record */
    doh_conn_schedule(c);
}

int doh_h2_input(struct doh_conn *c, const uint8_t *data, size_t len)
{
    if (c->finishing)
        return 0; /* the session is being ended: what still arrives is dropped */
    ssize_t rv = nghttp2_session_mem_recv(c->h2, data, len);
    if (rv >= 0) {
        /* A protocol error nghttp2 finds itself ends the session inside it: only a GOAWAY
         * is queued here, and want_read stays 1 until that GOAWAY is sent, so such an end
         * is seen in on_h2_frame_send. Here: the session has nothing more to read (GOAWAY
         * both ways and no stream open). */
        if (!nghttp2_session_want_read(c->h2)) {
            c->linger = true;
            doh_conn_pause(c, true);
        }
        return 0;
    }
    if (rv == NGHTTP2_ERR_CALLBACK_FAILURE && c->h2_calm != 0) {
        doh_h2_terminate(c, c->h2_calm);
        return 0;
    }
    doh_h2_log(c, nghttp2_strerror((int)rv));
    /* Floods nghttp2 caught itself (acknowledgements the client does not read; with
     * Debian's nghttp2, CONTINUATION frames beyond its own bound) still get their
     * GOAWAY: the session only stopped reading. */
    if (rv == NGHTTP2_ERR_FLOODED || rv == -905 /* NGHTTP2_ERR_TOO_MANY_CONTINUATIONS */) {
        doh_h2_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    /* Not HTTP/2 (a bad preface), or out of memory. */
    return -EPROTO;
}

int doh_h2_output(struct doh_conn *c)
{
    /* Produce no more than the queue's pause: beyond it the client is not reading, and
     * what nghttp2 still holds waits there, bounded by the open streams. c->more says
     * that we stopped there, not because nghttp2 had nothing (flow control included). */
    c->more = false;
    for (;;) {
        if (doh_conn_queued(c) >= DOH_WRITE_PAUSE) {
            c->more = true;
            break;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            doh_h2_log(c, nghttp2_strerror((int)n));
            return -EPROTO;
        }
        if (n == 0)
            break;
        int rc = doh_conn_write(c, data, (size_t)n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void doh_h2_respond(struct doh_req *req, int status, const char *ctype, const uint8_t *body,
                    size_t len, uint32_t max_age)
{
    struct doh_conn *c = req->c;
    doh_h2_not_reading(req); /* answered now or before: no longer waits for its request */
    if (req->responded)
        return;
    req->responded = true;
    /* A response before the request is complete (an error found in its head or body)
     * is followed by RST_STREAM(NO_ERROR) once sent (doh_h2_drained), so that the client
     * stops sending (RFC 9113 §8.1). Not submitted now: nghttp2 would drop the response
     * queued before it. */
    req->reset_after = !req->complete;
    req->drain = status == 408 ? 0 : DOH_H2_DRAIN;
    if (req->clen >= 0 && (uint64_t)req->clen > req->received + req->drain)
        req->drain = 0; /* it said it has more to send than we would let it finish */
    char st[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                  (char)('0' + status % 10), '\0'};
    char clen[12];
    char cache[24] = "max-age=";
    size_t clen_len = doh_utoa(clen, (uint32_t)len);
    size_t cache_len = 8 + doh_utoa(cache + 8, max_age);
#define DOH_NV(n, v, vlen)                                                                         \
    (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen),                            \
                 NGHTTP2_NV_FLAG_NO_COPY_NAME}
    nghttp2_nv nva[5];
    size_t n = 0;
    nva[n++] = DOH_NV(":status", st, 3);
    if (ctype != NULL)
        nva[n++] = DOH_NV("content-type", ctype, strlen(ctype));
    nva[n++] = DOH_NV("content-length", clen, clen_len);
    if (status == 200)
        nva[n++] = DOH_NV("cache-control", cache, cache_len);
    else if (status == 405)
        nva[n++] = DOH_NV("allow", "GET, POST", 9);
#undef DOH_NV
    req->out = body;
    req->out_len = len;
    req->out_off = 0;
    nghttp2_data_provider prd = {.source = {.ptr = req}, .read_callback = doh_h2_read_body};
    int rv =
        nghttp2_submit_response((nghttp2_session *)c->h2, req->id, nva, n, len > 0 ? &prd : NULL);
    if (rv != 0)
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, req->id, NGHTTP2_INTERNAL_ERROR);
    c->last_progress = doh_h2_now(c);
    doh_conn_schedule(c);
}

void doh_h2_goaway(struct doh_conn *c)
{
    if (c->h2_goaway)
        return;
    c->h2_goaway = true;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    doh_conn_schedule(c);
}

bool doh_h2_done(const struct doh_conn *c)
{
    nghttp2_session *s = c->h2;
    return !nghttp2_session_want_read(s) && !nghttp2_session_want_write(s);
}

bool doh_h2_want_write(const struct doh_conn *c)
{
    return nghttp2_session_want_write(c->h2);
}

void doh_h2_expire(struct doh_conn *c, double now)
{
    double hdr = c->l->base.cfg->doh_header_timeout_ms / 1000.0;
    struct doh_req *req;
    while ((req = TAILQ_FIRST(&c->reading)) != NULL && req->started + hdr <= now) {
        /* A header block still not ended holds the whole connection (no other frame may
         * come before its CONTINUATION, RFC 9113 §6.10): it ends with a GOAWAY. A stream
         * whose body does not come is answered 408 and reset, and counted as an error:
         * a client that keeps opening streams it never finishes ends up with a GOAWAY. */
        if (!req->head_done) {
            doh_h2_log(c, "a header block not ended in time: GOAWAY");
            doh_h2_terminate(c, NGHTTP2_PROTOCOL_ERROR);
            return;
        }
        if (!doh_bucket_take(&c->h2_errors, now, DOH_H2_ERRORS_BURST, DOH_H2_ERRORS_RATE)) {
            doh_h2_log(c, "too many requests not finished in time: GOAWAY");
            doh_h2_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
            return;
        }
        doh_req_error(req, 408); /* takes it off c->reading */
    }
}

void doh_h2_close(struct doh_conn *c)
{
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
}
