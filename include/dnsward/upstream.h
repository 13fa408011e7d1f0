/* upstream: one upstream resolver, and the contract every upstream transport keeps.
 *
 * An upstream is configured by a URL (upstream_parse_url) and lives as a struct upstream
 * whose ops a transport implements (src/upstream/dot.c now; DoH later). The pool
 * (src/upstream/pool.c) decides which upstream an attempt goes to, keeps their health, and
 * owns every attempt's deadline; a transport only carries attempts and says how each
 * ended.
 *
 * A transport accepts an answer for an attempt only if it arrived on the connection the
 * attempt was sent on, with the ID the transport gave it there, parses as an answer
 * (dns_answer_parse) and asks the attempt's question (dns_question_equal). Anything else
 * is dropped and counted in upstream->stats.unmatched.
 */
#ifndef DNSWARD_UPSTREAM_H
#define DNSWARD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "dnsward/dns.h"

enum upstream_proto {
    UPSTREAM_DOT = 1, /* RFC 7858 */
};

enum {
    UPSTREAM_MAX_PINS = 4,
    UPSTREAM_URL_MAX = 512,
    UPSTREAM_NAME_MAX = 256,
    UPSTREAM_DOT_PORT = 853,
};

/* An upstream as configured. */
struct upstream_spec {
    enum upstream_proto proto;
    char url[UPSTREAM_URL_MAX]; /* as written, for messages */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char tls_name[UPSTREAM_NAME_MAX]; /* the name (or IP literal) the certificate must carry */
    bool name_is_ip;
    uint8_t pins[UPSTREAM_MAX_PINS][32]; /* SPKI SHA-256 pins, checked in addition */
    size_t npins;
};

/* Parse "tls://ADDRESS[:PORT][#NAME]" (ADDRESS an IPv4 literal or a bracketed IPv6
 * literal; port 853 by default; NAME the TLS name, else ADDRESS itself is verified).
 * Returns 0, or -EINVAL with a one-line reason in err. */
int upstream_parse_url(const char *url, struct upstream_spec *spec, char *err, size_t errlen);

/* Add a pin given as base64 of a SHA-256 digest (44 characters). Returns 0, -EINVAL if it
 * does not decode to 32 bytes, or -ENOSPC if the spec already has UPSTREAM_MAX_PINS. */
int upstream_add_pin(struct upstream_spec *spec, const char *base64);

struct attempt;

/* How an attempt ended: err 0 with a validated answer (msg, len, and its parse *ans), all
 * valid only during the call; or err < 0 (-ECONNREFUSED, -EKEYREJECTED, -ECONNRESET,
 * -EPROTO, -EBADMSG, -ETIMEDOUT, ...) with msg and ans NULL. */
typedef void (*attempt_done_cb)(struct attempt *a, int err, const uint8_t *msg, size_t len,
                                const struct dns_answer *ans);

/* One try of one query on one upstream. The pool owns it (embedded in the query); the
 * transport links it into its lists while it carries it. */
struct attempt {
    const uint8_t *wire; /* the query to send, with ID 0; borrowed, outlives the attempt */
    uint16_t len;
    attempt_done_cb on_done;
    /* transport's state */
    void *conn;
    uint16_t id;
    bool sent;
    TAILQ_ENTRY(attempt) entry;
};
TAILQ_HEAD(attempt_list, attempt);

struct upstream_stats {
    uint64_t queries;   /* attempts sent */
    uint64_t answers;   /* answers accepted */
    uint64_t failures;  /* attempts ended by a transport error */
    uint64_t timeouts;  /* attempts ended by their deadline */
    uint64_t unmatched; /* answers dropped: unknown ID or wrong question */
    uint64_t connects;  /* connections opened */
    uint64_t resumed;   /* of which resumed a TLS session */
};

struct upstream;

struct upstream_ops {
    /* Carry attempt a: queue it on a connection (opening one if needed). Returns 0, after
     * which a->on_done is called exactly once, later, unless the attempt is cancelled; or
     * -errno if it cannot be carried now (no callback then). */
    int (*send)(struct upstream *u, struct attempt *a);
    /* Forget a without calling back (its deadline passed, or its client left). */
    void (*cancel)(struct upstream *u, struct attempt *a);
    /* Close idle connections and refuse new attempts, for shutdown. Attempts in flight end
     * as usual. */
    void (*drain)(struct upstream *u);
    /* Close everything (attempts still carried are failed first) and free u. */
    void (*free)(struct upstream *u);
};

struct upstream {
    const struct upstream_ops *ops;
    const struct upstream_spec *spec; /* borrowed from the configuration */
    struct upstream_stats stats;
    /* health, kept by the pool */
    unsigned failures;       /* consecutive failure events */
    uint64_t failure_events; /* all failures ever counted: an attempt sent when this was N
                              * fails with an event already counted if it is no longer N
                              * (one broken connection fails all it carried) */
    double down_until;       /* ev_now() before which the pool avoids it */
    double backoff;          /* seconds of the last down period */
};

#endif
