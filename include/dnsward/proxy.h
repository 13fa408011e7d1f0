/* proxy: the life of a query, whatever transport it came by.
 *
 * A frontend hands each message it reads to proxy_query, with a struct proxy_client that
 * says how to answer. The core validates it (a bad query is answered FORMERR, NOTIMP or
 * BADVERS, or dropped, and never reaches an upstream), builds the padded query for the
 * upstream, submits it to the pool, and answers the client, by the query's deadline,
 * with the upstream's answer (the client's ID and spelling of the name, truncated to
 * what a UDP client may receive) or with SERVFAIL. The core never branches on transport:
 * the only thing it knows of one is the largest answer its client may receive.
 *
 * Ownership: the core owns every struct query it creates, from proxy_query until just
 * after it has called the client's answer callback (or the client cancelled it).
 */
#ifndef DNSWARD_PROXY_H
#define DNSWARD_PROXY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "dnsward/dns.h"
#include "dnsward/pool.h"

struct config;
struct proxy;
struct query;

struct proxy_client_ops {
    /* Send msg to the client of q. Called once for every query proxy_query took, from
     * the event loop (never from inside proxy_query); msg is valid only during the call,
     * and q is freed when the call returns. */
    void (*answer)(struct query *q, const uint8_t *msg, size_t len);
};

/* Who asked, and how to answer. Copied into the query. */
struct proxy_client {
    const struct proxy_client_ops *ops;
    void *conn; /* the frontend's listener or connection; borrowed */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    bool datagram; /* answers are limited to dns_udp_limit() and truncated */
};

struct query {
    struct proxy *proxy;
    struct proxy_client client;
    TAILQ_ENTRY(query) client_entry; /* for the frontend's own list of its queries */
    TAILQ_ENTRY(query) entry;        /* the proxy's list of queries in flight */
    struct dns_query q;              /* offsets into msg */
    struct pool_request req;
    ev_timer deadline;
    bool cancelled; /* the client left: nobody to answer */
    uint16_t len;
    uint16_t up_len;
    uint8_t *up_msg; /* the query as sent upstream (in the same allocation) */
    uint8_t msg[];   /* the client's query */
};
TAILQ_HEAD(query_list, query);

struct proxy_stats {
    uint64_t queries;   /* messages handed to proxy_query */
    uint64_t dropped;   /* dropped without an answer (not a query, too short) */
    uint64_t formerr;   /* answered FORMERR */
    uint64_t notimp;    /* answered NOTIMP */
    uint64_t badvers;   /* answered BADVERS */
    uint64_t forwarded; /* sent to the pool */
    uint64_t answered;  /* answered with an upstream's answer */
    uint64_t truncated; /* of which truncated for UDP */
    uint64_t servfail;  /* answered SERVFAIL: no upstream, deadline, overload */
    uint64_t abandoned; /* cancelled by their client before the answer */
};

/* A core over pool; cfg and pool must outlive it. Returns NULL on allocation failure. */
struct proxy *proxy_new(struct ev_loop *loop, const struct config *cfg, struct pool *pool);

/* Free the core. Queries still in flight are answered SERVFAIL first. */
void proxy_free(struct proxy *p);

enum { PROXY_PENDING = -1 };

/* Handle one message from a client.
 * Returns:
 *   > 0            an immediate answer (an error answer) of that length is in out;
 *   0              drop it silently;
 *   PROXY_PENDING  the query was taken: *qp is set, and client->ops->answer will be called
 *                  once, later, unless the frontend cancels it with proxy_query_cancel.
 * out must hold at least 512 bytes. msg is borrowed for the call. */
int proxy_query(struct proxy *p, const uint8_t *msg, size_t len, const struct proxy_client *client,
                struct query **qp, uint8_t *out, size_t cap);

/* The client of q left (its connection closed): its upstream attempt is withdrawn and q
 * is freed now. Never calls back. */
void proxy_query_cancel(struct query *q);

/* Answer every query in flight SERVFAIL now (shutdown after the grace period). */
void proxy_fail_all(struct proxy *p);

/* Queries in flight. */
size_t proxy_inflight(const struct proxy *p);

const struct proxy_stats *proxy_stats(const struct proxy *p);

#endif
