/* doh_h1: the DoH frontend's HTTP/1.1 (RFC 9112), with the parser of http1.h. See
 * include/dnsward/doh_server.h.
 *
 * One request at a time: the parser stops after each whole request, and what follows it
 * (pipelined requests) waits in the connection's input buffer until the request has its
 * response; responses therefore leave in the order of the requests (RFC 9112 §9.3.2).
 * While a request waits for the core, or the client leaves DOH_WRITE_PAUSE bytes of
 * responses unread, nothing more is parsed, and once DOH_H1_IN_PAUSE bytes wait in the
 * input buffer nothing more is read: the client's bytes stay in the kernel.
 *
 * Keep-alive as the client asks (HTTP/1.1 by default, HTTP/1.0 with "Connection:
 * keep-alive"); a malformed request (400), a head too large (431), a body too large (413),
 * an unknown transfer coding (501) or version (505) is answered and the connection closed
 * after it, as is a request not complete within the header timeout (408). "Expect:
 * 100-continue" gets "100 Continue" when the head is acceptable, else the final status and
 * a close (its body is not read).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/config.h"
#include "dnsward/doh_server.h"
#include "dnsward/dohreq.h"
#include "dnsward/http1.h"
#include "dnsward/log.h"

enum {
    DOH_H1_IN_MIN = 4096,
};

static struct log_limit h1_limit = LOG_LIMIT_INIT(10, 5);

int doh_h1_start(struct doh_conn *c)
{
    c->h1 = http1_parser_new(c->l->base.cfg->doh_max_header_size);
    return c->h1 != NULL ? 0 : -ENOMEM;
}

int doh_h1_input(struct doh_conn *c, const uint8_t *data, size_t len)
{
    if (c->finishing)
        return 0; /* after a response that closes: the rest is not read */
    if (c->in_len - c->in_off + len > DOH_H1_IN_MAX)
        return -ENOBUFS;
    if (c->in_len + len > c->in_cap && c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : DOH_H1_IN_MIN;
        while (cap < c->in_len + len)
            cap *= 2;
        uint8_t *nb = realloc(c->in, cap);
        if (nb == NULL)
            return -ENOMEM;
        c->in = nb;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    /* At once, so that a TLS stream delivers not one more record in this read. */
    if (c->in_len - c->in_off >= DOH_H1_IN_PAUSE)
        doh_conn_pause(c, true);
    return 0;
}

/* Read nothing more: the response just written is the last one. */
static void doh_h1_stop(struct doh_conn *c)
{
    c->finishing = true;
    c->in_off = c->in_len = 0;
    doh_conn_pause(c, true);
}

/* Write a response. keep_alive false closes the connection after it. */
static void doh_h1_write(struct doh_conn *c, int status, const char *ctype, const uint8_t *body,
                         size_t len, uint32_t max_age, bool keep_alive)
{
    struct doh_listener *l = c->l;
    char extra[48];
    const char *x = NULL;
    if (status == 200) {
        /* RFC 8484 §5.1 */
        memcpy(extra, "cache-control: max-age=", 23);
        size_t n = 23 + doh_utoa(extra + 23, max_age);
        memcpy(extra + n, "\r\n", 3);
        x = extra;
    } else if (status == 405) {
        x = "allow: GET, POST\r\n";
    }
    int n = http1_response(l->h1_out, sizeof(l->h1_out), status, ctype, x, body, len, keep_alive);
    if (n < 0 || doh_conn_write(c, l->h1_out, (size_t)n) < 0)
        c->broken = true; /* the flusher closes it */
    if (!keep_alive)
        doh_h1_stop(c);
    c->last_progress = ev_now(l->base.loop);
    doh_conn_schedule(c);
}

/* A status to answer before closing, without a request (the parser's errors). */
static void doh_h1_fail(struct doh_conn *c, int status)
{
    char who[64];
    config_format_addr((const struct sockaddr *)&c->peer, who, sizeof(who));
    log_limited(&h1_limit, LOG_INFO, "%s: client %s: HTTP/1.1 %d, closing", c->l->base.name, who,
                status);
    const char *text = doh_status_text(status);
    c->linger = true; /* the client may still be sending what we will not read */
    doh_h1_write(c, status, "text/plain", (const uint8_t *)text, strlen(text), 0, false);
}

void doh_h1_respond(struct doh_req *req, int status, const char *ctype, const uint8_t *body,
                    size_t len, uint32_t max_age)
{
    struct doh_conn *c = req->c;
    bool keep_alive = req->keep_alive && !c->l->stopped;
    if (c->h1_req == req)
        c->h1_req = NULL;
    /* Written before req is freed: body may be req's own buffer. */
    doh_h1_write(c, status, ctype, body, len, max_age, keep_alive);
    doh_req_free(req);
}

/* A whole request: serve it. It is answered here (an error, a cache hit) or later, when
 * the core answers (c->h1_req waits until then). */
static void doh_h1_request(struct doh_conn *c, const struct http1_request *r)
{
    struct doh_listener *l = c->l;
    struct doh_req *req = doh_req_new(c);
    if (req == NULL) {
        doh_h1_fail(c, 503);
        return;
    }
    c->h1_req = req;
    req->complete = true;
    req->keep_alive = r->keep_alive;
    c->last_progress = req->started;
    req->method = dohreq_method(r->method, r->method_len);
    int status = 0;
    if (c->trusted && r->forwarded_for != NULL)
        status = doh_req_forwarded(req, r->forwarded_for, r->forwarded_for_len);
    size_t qlen = 0;
    if (status == 0)
        status =
            dohreq_head(l->base.cfg->doh_path, req->method, r->target, r->target_len,
                        r->content_type, r->content_type_len, l->query, sizeof(l->query), &qlen);
    if (status != 0) {
        doh_req_error(req, status);
        return;
    }
    if (req->method == DOHREQ_POST)
        doh_req_query(req, r->body, r->body_len);
    else
        doh_req_query(req, l->query, qlen);
}

/* A head with "Expect: 100-continue" (RFC 9110 §10.1.1): go on, or refuse at once. */
static void doh_h1_continue(struct doh_conn *c, const struct http1_request *r)
{
    struct doh_listener *l = c->l;
    size_t qlen;
    enum dohreq_method m = dohreq_method(r->method, r->method_len);
    int status = dohreq_head(l->base.cfg->doh_path, m, r->target, r->target_len, r->content_type,
                             r->content_type_len, l->query, sizeof(l->query), &qlen);
    if (status != 0) {
        doh_h1_fail(c, status); /* its body will not be read: close after the answer */
        return;
    }
    int n = http1_response(l->h1_out, sizeof(l->h1_out), 100, NULL, NULL, NULL, 0, true);
    if (n < 0 || doh_conn_write(c, l->h1_out, (size_t)n) < 0)
        c->broken = true;
}

int doh_h1_progress(struct doh_conn *c)
{
    double now = ev_now(c->l->base.loop);
    while (c->h1_req == NULL && !c->broken && c->in_off < c->in_len &&
           doh_conn_queued(c) < DOH_WRITE_PAUSE) {
        size_t used = 0;
        struct http1_request r;
        int rc = http1_feed(c->h1, c->in + c->in_off, c->in_len - c->in_off, &used, &r);
        c->in_off += used;
        if (rc == HTTP1_MORE)
            break;
        if (rc < 0) {
            doh_h1_fail(c, -rc);
            break;
        }
        if (rc == HTTP1_CONTINUE) {
            doh_h1_continue(c, &r);
            continue;
        }
        doh_h1_request(c, &r);
        http1_next(c->h1);
    }
    /* Stopped at the pause with pipelined requests still to parse: doh_conn_send resumes
     * us once the socket takes what is queued, as nothing else would. */
    c->more = c->h1_req == NULL && !c->broken && !c->finishing && c->in_off < c->in_len &&
              doh_conn_queued(c) >= DOH_WRITE_PAUSE;
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        if (c->in_cap > DOH_H1_IN_MIN) {
            free(c->in); /* an idle keep-alive connection keeps little */
            c->in = NULL;
            c->in_cap = 0;
        }
    }
    /* The header timeout runs from a request's first byte to its end. */
    if (!c->finishing && http1_in_request(c->h1)) {
        if (c->h1_start == 0) {
            c->h1_start = now;
            doh_conn_arm(c, now + c->l->base.cfg->doh_header_timeout_ms / 1000.0);
        }
    } else {
        c->h1_start = 0;
    }
    return 0;
}

void doh_h1_expire(struct doh_conn *c)
{
    c->h1_start = 0;
    doh_h1_fail(c, 408);
}

void doh_h1_close(struct doh_conn *c)
{
    http1_parser_free(c->h1);
    c->h1 = NULL;
}
