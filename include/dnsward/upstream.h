/* upstream: one upstream resolver, and the contract every upstream transport keeps.
 *
 * An upstream is configured by a URL (upstream_parse_url: tls://, https:// or an sdns://
 * stamp) and lives as a struct upstream whose ops a transport implements
 * (src/upstream/dot.c, src/upstream/doh.c). The pool (src/upstream/pool.c) decides which
 * upstream an attempt goes to, keeps their health and RTT, and owns every attempt's
 * deadline; a transport only carries attempts and says how each ended.
 *
 * Where an upstream is: the address its URL gives, or, when the URL gives a host name,
 * the addresses the bootstrap servers resolve it to (src/upstream/bootstrap.c). Those are
 * kept here (upstream_set_addrs), and a transport takes one per new connection
 * (upstream_addr), moving to the next when a connection to it fails.
 *
 * A transport accepts an answer for an attempt only if it arrived on the connection (DoT)
 * or stream (DoH) the attempt was sent on, with the ID the transport gave it there,
 * parses as an answer (dns_answer_parse) and asks the attempt's question
 * (dns_question_equal). Anything else is dropped and counted in upstream->stats.
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
    UPSTREAM_DOH = 2, /* RFC 8484 over HTTP/2 */
};

enum {
    UPSTREAM_MAX_PINS = 4,
    UPSTREAM_MAX_ADDRS = 8,
    UPSTREAM_URL_MAX = 1024, /* DNS stamps with certificate hashes are long */
    UPSTREAM_NAME_MAX = 256,
    UPSTREAM_PATH_MAX = 256,
    UPSTREAM_DOT_PORT = 853,
    UPSTREAM_DOH_PORT = 443,
};

/* An upstream as configured. */
struct upstream_spec {
    enum upstream_proto proto;
    char url[UPSTREAM_URL_MAX]; /* as written, for messages */
    /* Where to connect: addr when the URL gives an address (addrlen > 0); else host is
     * resolved through the bootstrap servers (addrlen == 0), and port applies. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint16_t port;
    char host[UPSTREAM_NAME_MAX];     /* the host as the URL (or stamp) names it, no port */
    char tls_name[UPSTREAM_NAME_MAX]; /* the name (or IP literal) the certificate must carry */
    bool name_is_ip;
    /* DoH only: the request's :authority ("host" or "host:port", IPv6 in brackets) and
     * :path ("/dns-query", perhaps with a query string of its own). */
    char authority[UPSTREAM_NAME_MAX + 8];
    char path[UPSTREAM_PATH_MAX];
    /* SHA-256 pins, checked in addition to the chain: of a certificate's
     * SubjectPublicKeyInfo (--pin-sha256), or, where bit i of pins_tbs is set, of its
     * to-be-signed part (the hashes DNS stamps carry). */
    uint8_t pins[UPSTREAM_MAX_PINS][32];
    size_t npins;
    uint32_t pins_tbs;
};

/* Parse an upstream URL:
 *   tls://HOST[:PORT][#NAME]           DoT, port 853
 *   https://HOST[:PORT][/PATH][#NAME]  DoH, port 443, PATH "/dns-query" when absent
 *   sdns://STAMP                       a DNS stamp of a DoT or DoH server
 * HOST is an IPv4 literal, a bracketed IPv6 literal or a host name (which then needs a
 * bootstrap server: addrlen is left 0). NAME, when given, is what the certificate must
 * carry (and, for DoH, the :authority), else HOST is. Returns 0, or -EINVAL with a
 * one-line reason in err. */
int upstream_parse_url(const char *url, struct upstream_spec *spec, char *err, size_t errlen);

/* Parse the text after "sdns://" (base64url of a DoH (0x02) or DoT (0x03) stamp, as
 * https://dnscrypt.info/stamps-specifications describes) into spec, url excepted: the
 * stamp's address (when it has one), host name, path and certificate hashes (as TBS
 * pins). Pure. Returns 0, or -EINVAL with a reason in err; -ENOTSUP for a stamp of
 * another protocol (DNSCrypt, plain DNS, ODoH, relays). */
int upstream_parse_stamp(const char *stamp, struct upstream_spec *spec, char *err, size_t errlen);

/* A port as written after ':' in a URL or a stamp: decimal digits only, 1-65535.
 * Returns 0 with *port set, or -EINVAL. */
int upstream_parse_port(const char *text, uint16_t *port);

/* Is name a host name that may be sent as SNI and verified (RFC 6066 §3): letters,
 * digits, hyphens and dots, in labels of 1 to 63 characters, 253 in all, no trailing
 * dot? */
bool upstream_name_valid(const char *name);

struct tls_peer;
struct ssl_session_st;

/* Fill *peer with what a connection to spec must verify (name or IP, SPKI and TBS pins)
 * and the session to resume (may be NULL), no ALPN: the one place both transports take
 * their verification from. peer borrows from spec and session. */
void upstream_tls_peer(const struct upstream_spec *spec, struct ssl_session_st *session,
                       struct tls_peer *peer);

/* Add a pin given as base64 of a SHA-256 digest (44 characters). Returns 0, -EINVAL if it
 * does not decode to 32 bytes, or -ENOSPC if the spec already has UPSTREAM_MAX_PINS. */
int upstream_add_pin(struct upstream_spec *spec, const char *base64);

struct attempt;

/* How an attempt ended: err 0 with a validated answer (msg, len, and its parse *ans), all
 * valid only during the call; or err < 0 with msg and ans NULL. The errors transports
 * give, and what they mean (upstream_fail_kind sorts them for the counters):
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH  no connection could be made
 *   -ETIMEDOUT     the connection, or a PING on it, went unanswered
 *   -EKEYREJECTED  certificate, name or pin verification failed
 *   -EPROTO        a TLS or HTTP/2 protocol error, or no "h2" by ALPN
 *   -ECONNRESET    the connection broke, or the server reset the stream
 *   -EBADMSG       the answer was not a DNS answer to the question asked
 *   -EREMOTEIO     DoH: an HTTP status other than 200
 *   -EMEDIUMTYPE   DoH: a content-type other than application/dns-message
 *   -ECONNABORTED  the server said (GOAWAY, REFUSED_STREAM) it did not process the query
 *   -EMSGSIZE      the answer was larger than a DNS message can be
 *   -ESHUTDOWN     we are shutting down */
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
    bool fresh; /* set by send: its connection is still being set up (TCP and TLS), so
                 * the wait includes a handshake: no RTT sample, no RTT-based timeout */
    TAILQ_ENTRY(attempt) entry;
};
TAILQ_HEAD(attempt_list, attempt);

/* Failure kinds, for counters and logs. */
enum upstream_fail {
    UPSTREAM_FAIL_CONNECT, /* refused, unreachable, connect timeout */
    UPSTREAM_FAIL_TLS,     /* certificate rejected, TLS or HTTP/2 protocol error */
    UPSTREAM_FAIL_CLOSED,  /* connection lost, stream reset */
    UPSTREAM_FAIL_ANSWER,  /* not a DNS answer to the question, or too large */
    UPSTREAM_FAIL_HTTP,    /* DoH: status or content-type */
    UPSTREAM_FAIL_GOAWAY,  /* not processed: GOAWAY or REFUSED_STREAM */
    UPSTREAM_FAIL_OTHER,
    UPSTREAM_FAIL_KINDS
};

/* The kind of a transport error (above). */
enum upstream_fail upstream_fail_kind(int err);

/* A short lower-case name of a kind ("connect", "tls", ...), for logs. */
const char *upstream_fail_name(enum upstream_fail kind);

/* The answer latency histogram's buckets: the upper bounds, in milliseconds, of all but
 * the last bucket (which holds every latency above the largest bound). Fixed, so that
 * every upstream and every reload counts in the same buckets, and a scrape can add them
 * up. The pool records them (src/upstream/pool.c, which defines the bounds). */
enum { UPSTREAM_LATENCY_BUCKETS = 12 };
extern const uint32_t upstream_latency_bounds_ms[UPSTREAM_LATENCY_BUCKETS];

/* Answer latencies: the time from an attempt's send to its answer, for every answer
 * accepted (fresh connections included, whose wait holds a handshake). */
struct upstream_latency {
    uint64_t buckets[UPSTREAM_LATENCY_BUCKETS + 1]; /* not cumulative: bucket i counts
                                                     * latencies in (bound[i-1], bound[i]];
                                                     * the last, those above the largest */
    uint64_t count;                                 /* answers timed */
    double sum;                                     /* seconds, all of them */
};

struct upstream_stats {
    uint64_t queries;                     /* attempts given to the transport */
    uint64_t answers;                     /* answers accepted */
    uint64_t failures;                    /* attempts ended by a transport error */
    uint64_t failed[UPSTREAM_FAIL_KINDS]; /* the same, by kind */
    uint64_t timeouts;                    /* attempts ended by their deadline */
    uint64_t unmatched;                   /* answers dropped: unknown ID or wrong question */
    uint64_t connects;                    /* connections opened */
    uint64_t resumed;                     /* of which resumed a TLS session */
    uint64_t throttled;                   /* connections not opened: connect-rate bound */
    struct upstream_latency latency;      /* of the answers accepted */
};

struct upstream;

struct upstream_ops {
    /* Carry attempt a: queue it on a connection (opening one if needed). Returns 0, after
     * which a->on_done is called exactly once, later, unless the attempt is cancelled; or
     * -errno if it cannot be carried now (no callback then): -EAGAIN when the upstream
     * has no address yet or may not open another connection this second, -ENOBUFS when
     * its connections are full, -ESHUTDOWN when draining, or a connect error. */
    int (*send)(struct upstream *u, struct attempt *a);
    /* Forget a without calling back (its deadline passed, or its client left). */
    void (*cancel)(struct upstream *u, struct attempt *a);
    /* Close idle connections and refuse new attempts, for shutdown. Attempts in flight end
     * as usual. */
    void (*drain)(struct upstream *u);
    /* Close everything (attempts still carried are failed first) and free u. */
    void (*free)(struct upstream *u);
};

/* Where an upstream can be reached: the address of its URL, or what the bootstrap
 * servers last resolved its host name to. */
struct upstream_addrs {
    struct sockaddr_storage addr[UPSTREAM_MAX_ADDRS];
    socklen_t len[UPSTREAM_MAX_ADDRS];
    size_t n;
    size_t next; /* the one new connections use */
};

struct upstream {
    const struct upstream_ops *ops;
    const struct upstream_spec *spec; /* borrowed from the configuration */
    struct upstream_stats stats;
    struct upstream_addrs addrs;
    /* connect-rate bound: a token bucket of upstream-connect-rate per second */
    double connect_tokens;
    double connect_stamp;
    double connect_rate;
    double connect_burst;
    /* health, kept by the pool */
    unsigned failures;       /* consecutive failure events */
    uint64_t failure_events; /* all failures ever counted: an attempt sent when this was N
                              * fails with an event already counted if it is no longer N
                              * (one broken connection fails all it carried) */
    double down_until;       /* ev_now() before which the pool avoids it */
    double backoff;          /* seconds of the last down period */
    double last_answer;      /* ev_now() of the last answer accepted */
    /* RTT, kept by the pool as TCP keeps it (RFC 6298), in seconds; srtt 0: no sample */
    double srtt;
    double rttvar;
    double rto; /* the attempt timeout it gives, within the configured bounds */
};

/* Fill the transport-independent part of u: ops, spec, the address of the URL (if it
 * gives one), the connect-rate bound (rate per second; burst connections at once) and the
 * initial attempt timeout rto. Never fails. */
void upstream_init(struct upstream *u, const struct upstream_ops *ops,
                   const struct upstream_spec *spec, double rate, double burst, double rto);

/* The address a new connection should use: 0 with *sa and *len set (borrowed from u until
 * its addresses change), or -EAGAIN if none is known yet. */
int upstream_addr(const struct upstream *u, const struct sockaddr **sa, socklen_t *len);

/* A connection to the current address failed before its handshake: use the next one. */
void upstream_addr_failed(struct upstream *u);

/* Replace the addresses (n at most UPSTREAM_MAX_ADDRS; more are ignored). The one in use
 * stays in use if it is among the new ones. */
void upstream_set_addrs(struct upstream *u, const struct sockaddr_storage *addrs,
                        const socklen_t *lens, size_t n);

/* May u open a connection now (ev_now() given)? Takes a token if so; counts a throttled
 * connection if not. */
bool upstream_may_connect(struct upstream *u, double now);

/* What a transport asks before it opens a connection: the address to use (as
 * upstream_addr) if it may connect now (as upstream_may_connect). Returns 0 with *sa and
 * *len set, or -EAGAIN (no address yet, or the connect-rate bound). */
int upstream_connect_target(struct upstream *u, double now, const struct sockaddr **sa,
                            socklen_t *len);

#endif
