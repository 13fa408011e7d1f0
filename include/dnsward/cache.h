/* cache: a packet cache of answers, bounded by a memory budget.
 *
 * An entry is an answer as a client receives it (the form dns_answer_for_client writes,
 * untruncated), kept as wire bytes with the offsets of its TTL fields and with its QNAME
 * in lower case. A hit is therefore a copy and three patches: the client's ID and RD bit,
 * the client's spelling of the name, and every TTL lowered by the entry's age. No parsing
 * and no allocation on a hit.
 *
 * The key is the question (QNAME without regard to ASCII case, QTYPE, QCLASS) and the
 * query's DNS_KEY_* bits (EDNS, DO, CD, AD wanted): a client without EDNS never receives
 * an entry with an OPT record, and a DNSSEC client never an answer stripped of its
 * signatures.
 *
 * Lifetime (decided at insertion, cache_insert):
 *   positive  the smallest TTL of the records (OPT excluded), clamped to [min_ttl, max_ttl];
 *   negative  NXDOMAIN and NODATA (RFC 2308): the smaller of the authority SOA's TTL and
 *             its MINIMUM (and of any other record's TTL, such as a CNAME's before it),
 *             capped by max_negative_ttl and max_ttl; without an SOA, none;
 *   never     other RCODEs (SERVFAIL, REFUSED...), truncated answers, a lifetime of 0.
 * Each stored TTL is raised to min_ttl and capped at max_ttl (a negative entry's at its
 * lifetime), so that what a client sees never outlives the entry.
 *
 * After its lifetime an entry is stale; it is kept for stale_max_age more seconds (RFC
 * 8767) and, when asked for, written with every TTL at CACHE_STALE_TTL. The proxy decides
 * when a stale answer may be given.
 *
 * Memory: every entry costs its bytes plus a fixed overhead, and the index (the bucket
 * array) counts too; bytes never exceed the budget: the least recently used entries are
 * evicted to make room, and an entry larger than the whole budget is not kept. The index
 * grows with the entries (load factor at most 1), within the budget. A budget under
 * 1 KiB holds nothing worth an index and turns the cache off, as 0 does.
 *
 * Time is whole seconds of a monotonic clock, passed in by the caller: the cache reads no
 * clock, does no I/O, and never calls back. An entry pointer is valid only until the next
 * call that may insert or evict (cache_insert, cache_lookup): never keep one across an
 * event loop iteration.
 */
#ifndef DNSWARD_CACHE_H
#define DNSWARD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsward/dns.h"

enum {
    CACHE_STALE_TTL = 30, /* RFC 8767 §4: the TTL of a stale answer */
};

struct cache_params {
    uint64_t size;             /* the memory budget in bytes; 0: nothing is cached */
    uint32_t min_ttl;          /* seconds */
    uint32_t max_ttl;          /* seconds */
    uint32_t max_negative_ttl; /* seconds */
    uint32_t stale_max_age;    /* seconds an entry is kept after it expired; 0: not at all */
};

struct cache_stats {
    uint64_t hits;       /* fresh entries found */
    uint64_t misses;     /* nothing found, or only a stale entry */
    uint64_t stale;      /* stale answers written (cache_answer of a stale entry) */
    uint64_t prefetches; /* refreshes granted by cache_entry_prefetch */
    uint64_t inserts;    /* entries stored */
    uint64_t evictions;  /* entries dropped to stay within the budget */
    uint64_t expired;    /* entries dropped because they were past stale_max_age */
    uint64_t entries;    /* entries now */
    uint64_t bytes;      /* bytes now, entries and index */
};

/* A lookup key, computed once per query (cache_key_init) and kept by whoever needs to
 * find the same entry later (the proxy's in-flight table uses it too). */
struct cache_key {
    uint32_t hash;
    uint16_t len;                       /* QNAME, QTYPE and QCLASS: the question's wire length */
    uint8_t bits;                       /* DNS_KEY_* */
    uint8_t question[DNS_MAX_NAME + 5]; /* in lower case, then the bits (hashed with it) */
};

struct cache;
struct cache_entry;

/* A cache with the given limits. Returns NULL on allocation failure. */
struct cache *cache_new(const struct cache_params *params);

/* Free the cache and every entry. NULL is ignored. */
void cache_free(struct cache *c);

/* Change the limits; entries over a smaller budget are evicted now. Entries keep the
 * lifetime they were given. */
void cache_set_params(struct cache *c, const struct cache_params *params);

/* The key of a parsed query (query, *q). The hash is keyed with a secret the cache drew
 * at creation, so that nobody can aim names at one bucket. */
void cache_key_init(const struct cache *c, struct cache_key *k, const uint8_t *query,
                    const struct dns_query *q);

/* Are two keys equal? */
bool cache_key_equal(const struct cache_key *a, const struct cache_key *b);

/* Find the entry of k, fresh or stale, at time now. An entry found is moved to the front
 * of the LRU order. An entry past its stale window is dropped and not returned. Counts a
 * hit (fresh) or a miss (stale or none). Returns the entry (borrowed, see above) or NULL. */
struct cache_entry *cache_lookup(struct cache *c, const struct cache_key *k, uint32_t now);

/* Find the entry of k, fresh or stale, as it is: nothing is counted, moved or dropped.
 * Returns the entry (borrowed, see above) or NULL. */
struct cache_entry *cache_peek(const struct cache *c, const struct cache_key *k);

/* Seconds of lifetime e has left at now: 0 once it is stale. */
uint32_t cache_entry_ttl(const struct cache_entry *e, uint32_t now);

/* Should a hit at now refresh e in the background (prefetch)? True once per entry, when
 * it is fresh, in the last tenth of its lifetime, and its lifetime is at least 10 s;
 * counted in stats.prefetches. */
bool cache_entry_prefetch(struct cache *c, struct cache_entry *e, uint32_t now);

/* After a failed refresh, answer from the stale e without asking upstream until `until`
 * (RFC 8767 §4, the failure recheck timer). */
void cache_entry_set_recheck(struct cache_entry *e, uint32_t until);
bool cache_entry_recheck(const struct cache_entry *e, uint32_t now);

/* Write e as the answer to the client's query (query, *q), at time now: the client's ID,
 * RD bit and spelling of QNAME, TTLs lowered by the entry's age (or CACHE_STALE_TTL if e
 * is stale, which is counted). If the answer is longer than limit (a UDP client's
 * dns_udp_limit), it is truncated as dns_answer_for_client does: header, question and
 * OPT, TC=1. q must have the key of e. Returns the length, or -ENOSPC if cap is too small
 * for even the truncated answer. Pure. */
int cache_answer(struct cache *c, const struct cache_entry *e, const uint8_t *query,
                 const struct dns_query *q, uint32_t now, size_t limit, uint8_t *out, size_t cap);

/* Store answer (len bytes, written by dns_answer_for_client for a query with key k,
 * untruncated) at time now, replacing any entry of k. The answer is copied.
 * Returns 0 when stored;
 *   -EINVAL  not to be cached: an RCODE other than NOERROR and NXDOMAIN, TC set, a
 *            negative answer without an SOA, a lifetime of 0, a question that is not k's;
 *   -EBADMSG not a valid answer;
 *   -E2BIG   larger than the budget allows (or the cache is off);
 *   -ENOMEM  allocation failed.
 * An entry of k that was there stays unless the new answer is stored. */
int cache_insert(struct cache *c, const struct cache_key *k, const uint8_t *answer, size_t len,
                 uint32_t now);

/* The lifetime insertion would give answer (seconds), or a negative error as
 * cache_insert returns it. For tests and for HTTP max-age. Pure. */
int64_t cache_lifetime(const struct cache_params *params, const uint8_t *answer, size_t len);

const struct cache_stats *cache_stats(const struct cache *c);

#endif
