/* proxy: the life of a query, whatever transport it came by.
 *
 * A frontend hands each message it reads to proxy_query, with a struct proxy_client that
 * says how to answer. The core first drops what is not a query at all (a response, or
 * shorter than a header), then checks the client's address against the allow list: a
 * client outside it, or whose address the frontend did not give, gets REFUSED for
 * whatever query it sent, malformed or not, and nothing of it reaches the cache or an
 * upstream. The core then validates the query (a bad one is answered FORMERR, NOTIMP or
 * BADVERS and never reaches an upstream) and looks it up in the cache: a fresh entry is
 * the answer at once. Otherwise the query joins the flight of identical
 * queries already on their way upstream, or starts one: a flight builds the padded query
 * for the upstream, submits it to the pool, stores the answer in the cache, and answers
 * every query waiting on it (each with its own ID and spelling of the name, truncated to
 * what a UDP client may receive), by the deadline, with the answer or SERVFAIL.
 *
 * Serve-stale (RFC 8767): when the cache holds an expired entry, a flight that has no
 * answer after stale-client-timeout answers its queries from it (TTL 30) and goes on in
 * the background; so does a flight that fails. After a failed refresh the stale entry is
 * answered at once for a few seconds. Prefetch: a hit in the last tenth of an entry's
 * lifetime starts a background flight that refreshes it. The core never branches on
 * transport: the only things it knows of one are the largest answer its client may
 * receive and whether it is encrypted, in which case every answer (cached, fresh, stale or
 * an error) to a query that carried an EDNS Padding option is padded (RFC 8467 §4.1).
 *
 * Query log: with one attached (proxy_set_querylog), every answer a client is given, at
 * once or later, is one line in it, whatever its source: the cache (fresh or stale), an
 * upstream (a waiter answered from the entry the upstream's answer just made counts as
 * upstream), or the core itself (REFUSED, FORMERR, NOTIMP, BADVERS, SERVFAIL).
 *
 * Ownership: the core owns every struct query it creates, from proxy_query until just
 * after it has called the client's answer callback (or the client cancelled it), and
 * every flight.
 */
#ifndef DNSWARD_PROXY_H
#define DNSWARD_PROXY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "dnsward/cache.h"
#include "dnsward/dns.h"
#include "dnsward/pool.h"

struct config;
struct flight;
struct proxy;
struct query;
struct querylog;

struct proxy_client_ops {
    /* Send msg to the client of q. Called once for every query proxy_query took, from
     * the event loop (never from inside proxy_query); msg is valid only during the call,
     * and q is freed when the call returns. */
    void (*answer)(struct query *q, const uint8_t *msg, size_t len);
};

/* The transport a query came by: for counters and the query log only, as the core
 * never branches on it. */
enum proxy_transport { PROXY_UDP, PROXY_TCP, PROXY_DOT, PROXY_DOH, PROXY_TRANSPORTS };

/* "udp", "tcp", "dot", "doh". */
const char *proxy_transport_name(enum proxy_transport t);

/* Who asked, and how to answer. Copied into the query. */
struct proxy_client {
    const struct proxy_client_ops *ops;
    enum proxy_transport transport;
    void *conn; /* the frontend's listener or connection; borrowed */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    bool datagram;  /* answers are limited to dns_udp_limit() and truncated */
    bool encrypted; /* DoT, DoH: an answer to a query that carried an EDNS Padding option
                     * is padded to a multiple of DNS_PAD_RESPONSE (RFC 8467 §4.1) */
};

/* A client's query waiting for an answer from upstream. */
struct query {
    struct proxy_client client;
    TAILQ_ENTRY(query) client_entry; /* for the frontend's own list of its queries */
    TAILQ_ENTRY(query) entry;        /* in its flight's list of waiters */
    struct flight *flight;           /* the upstream query it waits for */
    double arrived;                  /* ev_now() when it came, for the query log's latency */
    struct dns_query q;              /* offsets into msg */
    uint16_t len;
    uint8_t msg[]; /* the client's query */
};
TAILQ_HEAD(query_list, query);

/* The core's counters; answers from the cache, fresh and stale, are counted by the cache
 * (struct cache_stats hits and stale). */
struct proxy_stats {
    uint64_t queries;    /* messages handed to proxy_query */
    uint64_t dropped;    /* dropped without an answer (not a query, too short) */
    uint64_t formerr;    /* answered FORMERR */
    uint64_t notimp;     /* answered NOTIMP */
    uint64_t badvers;    /* answered BADVERS */
    uint64_t refused;    /* answered REFUSED: the client is not in the allow list */
    uint64_t coalesced;  /* joined a flight another query had started */
    uint64_t forwarded;  /* flights sent to the pool, prefetches and refreshes included */
    uint64_t prefetched; /* of which prefetches */
    uint64_t answered;   /* answered with an upstream's answer */
    uint64_t truncated;  /* answers truncated for UDP */
    uint64_t servfail;   /* answered SERVFAIL: no upstream, deadline, overload */
    uint64_t abandoned;  /* cancelled by their client before the answer */
    uint64_t by_transport[PROXY_TRANSPORTS]; /* queries, by the transport they came by */
    uint64_t rcodes[16]; /* answers given to clients, by the RCODE of their header (an
                          * extended RCODE such as BADVERS counts by its low 4 bits) */
};

/* A core over pool, with a cache of cfg->cache_size; cfg and pool must outlive it. Returns
 * NULL on allocation failure. */
struct proxy *proxy_new(struct ev_loop *loop, const struct config *cfg, struct pool *pool);

/* A reload: from now on the core reads cfg and sends new flights to pool (both must
 * outlive it, or the next reconfigure). The cache keeps its entries under cfg's limits
 * (a smaller cache-size evicts now); flights already on their way stay with the pool
 * they were submitted to, and their queries are answered as usual. Never fails. */
void proxy_reconfigure(struct proxy *p, const struct config *cfg, struct pool *pool);

/* Write one line to ql for every answer given to a client from now on (querylog.h: its
 * source, the upstream that answered, the latency), or none when ql is NULL (the
 * default). ql is borrowed: it must outlive the core, or the next call; it may be changed
 * at any time (a reload). Off, the log costs one branch per answer. */
void proxy_set_querylog(struct proxy *p, struct querylog *ql);

/* Free the core and its cache. Queries still in flight are answered SERVFAIL first (and
 * logged to the query log, which must still exist). */
void proxy_free(struct proxy *p);

enum { PROXY_PENDING = -1 };

/* Handle one message from a client.
 * Returns:
 *   > 0            an immediate answer of that length is in out: an error answer (REFUSED
 *                  for a client outside the allow list), or an answer from the cache;
 *   0              drop it silently;
 *   PROXY_PENDING  the query was taken: *qp is set, and client->ops->answer will be called
 *                  once, later, unless the frontend cancels it with proxy_query_cancel.
 * out must hold at least 512 bytes; a cached answer longer than cap is truncated (TC=1),
 * so cap should be the largest answer the client may receive (udp-max-size for a
 * datagram client, 65535 for a stream); an answer padded for an encrypted client grows
 * within cap too. msg is borrowed for the call. */
int proxy_query(struct proxy *p, const uint8_t *msg, size_t len, const struct proxy_client *client,
                struct query **qp, uint8_t *out, size_t cap);

/* The client of q left (its connection closed): its upstream attempt is withdrawn and q
 * is freed now. Never calls back. */
void proxy_query_cancel(struct query *q);

/* Answer every query in flight SERVFAIL now and end every flight, background ones too
 * (shutdown after the grace period). */
void proxy_fail_all(struct proxy *p);

/* Client queries waiting for an upstream, plus background flights (prefetches and
 * refreshes): the work shutdown waits for. */
size_t proxy_inflight(const struct proxy *p);

const struct proxy_stats *proxy_stats(const struct proxy *p);

/* The core's cache, for its statistics. */
const struct cache *proxy_cache(const struct proxy *p);

/* Write one line of the core's and the cache's counters to the log at level. */
void proxy_log_stats(const struct proxy *p, int level);

#endif
