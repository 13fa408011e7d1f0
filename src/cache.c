/* cache: a packet cache bounded by a memory budget. See include/dnsward/cache.h.
 *
 * The index is a power-of-two array of singly linked bucket chains; the entries are also
 * on one LRU list, most recently used first. An entry is one allocation: the entry's
 * fields, the offsets of its TTL fields, then the answer with its QNAME in lower case (so
 * that the key is compared against the entry's own question and costs no extra bytes).
 */
#include "dnsward/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>

enum {
    CACHE_MIN_BUCKETS = 64,
    CACHE_FIRST_BUCKETS = 1024,
    /* A budget smaller than this holds nothing worth an index: the cache is off. */
    CACHE_MIN_SIZE = 1024,
    /* The most records a message can hold: each takes at least 11 bytes (a root owner
     * and the fixed fields) after the header and the shortest question. */
    CACHE_MAX_RECORDS = (DNS_MAX_MSG - DNS_HEADER_LEN - 5) / 11 + 1,
    CACHE_PREFETCH_MIN_LIFETIME = 10, /* seconds */
    /* What the allocator adds to each allocation, as glibc's malloc does: 8 bytes of
     * header and rounding to 16. Counting it keeps the budget honest. */
    CACHE_MALLOC_OVERHEAD = 8,
    CACHE_MALLOC_ALIGN = 16,
};

enum {
    CACHE_E_PREFETCHED = 0x01, /* a prefetch was granted for this lifetime */
};

struct cache_entry {
    struct cache_entry *next; /* in its bucket */
    TAILQ_ENTRY(cache_entry) lru;
    uint32_t hash;
    uint32_t inserted; /* the time it was stored */
    uint32_t lifetime; /* seconds it is fresh */
    uint32_t recheck;  /* answer stale without asking upstream until then */
    uint16_t len;      /* of the answer */
    uint16_t nttl;
    uint16_t qlen; /* QNAME, QTYPE and QCLASS, from DNS_HEADER_LEN */
    uint16_t opt_off;
    uint8_t bits; /* DNS_KEY_* */
    uint8_t flags;
    uint16_t ttl_off[]; /* nttl offsets, then the answer's len bytes */
};
TAILQ_HEAD(cache_lru, cache_entry);

struct cache {
    struct cache_params params;
    struct cache_entry **buckets;
    size_t nbuckets; /* a power of two, or 0 when the cache is off */
    struct cache_lru lru;
    struct cache_stats stats;
    uint64_t secret[2]; /* SipHash key */
};

static uint8_t *entry_msg(const struct cache_entry *e)
{
    return (uint8_t *)(e->ttl_off + e->nttl);
}

static size_t entry_cost(size_t nttl, size_t len)
{
    size_t n = offsetof(struct cache_entry, ttl_off) + nttl * sizeof(uint16_t) + len +
               CACHE_MALLOC_OVERHEAD;
    return (n + CACHE_MALLOC_ALIGN - 1) & ~(size_t)(CACHE_MALLOC_ALIGN - 1);
}

static size_t index_cost(size_t nbuckets)
{
    return nbuckets * sizeof(struct cache_entry *);
}

/* SipHash-1-3 (Aumasson and Bernstein): a keyed hash, so that names chosen by a client
 * cannot all fall into one bucket. One compression round and three finalization rounds
 * are what hash tables use it with (Rust's HashMap, Python's str hash). */
#define CACHE_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define CACHE_SIPROUND                                                                             \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = CACHE_ROTL(v1, 13);                                                                   \
        v1 ^= v0;                                                                                  \
        v0 = CACHE_ROTL(v0, 32);                                                                   \
        v2 += v3;                                                                                  \
        v3 = CACHE_ROTL(v3, 16);                                                                   \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = CACHE_ROTL(v3, 21);                                                                   \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = CACHE_ROTL(v1, 17);                                                                   \
        v1 ^= v2;                                                                                  \
        v2 = CACHE_ROTL(v2, 32);                                                                   \
    } while (0)

static uint64_t cache_siphash(const uint64_t key[2], const uint8_t *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
    uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
    uint64_t v3 = 0x7465646279746573ULL ^ key[1];
    const uint8_t *end = in + (len & ~(size_t)7);
    for (; in != end; in += 8) {
        uint64_t m;
        memcpy(&m, in, 8); /* little-endian hosts; elsewhere a different but keyed hash */
        v3 ^= m;
        CACHE_SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    CACHE_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    CACHE_SIPROUND;
    CACHE_SIPROUND;
    CACHE_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void cache_key_init(const struct cache *c, struct cache_key *k, const uint8_t *query,
                    const struct dns_query *q)
{
    k->len = (uint16_t)(q->question_end - DNS_HEADER_LEN);
    k->bits = dns_query_key_bits(q);
    const uint8_t *src = query + DNS_HEADER_LEN;
    for (size_t i = 0; i < k->len; i++)
        k->question[i] = dns_lower(src[i]);
    /* The key bits go in after the question, where the hash reads them with it. */
    k->question[k->len] = k->bits;
    k->hash = (uint32_t)cache_siphash(c->secret, k->question, (size_t)k->len + 1);
}

bool cache_key_equal(const struct cache_key *a, const struct cache_key *b)
{
    return a->hash == b->hash && a->len == b->len && a->bits == b->bits &&
           memcmp(a->question, b->question, a->len) == 0;
}

static bool entry_matches(const struct cache_entry *e, const struct cache_key *k)
{
    return e->hash == k->hash && e->qlen == k->len && e->bits == k->bits &&
           memcmp(entry_msg(e) + DNS_HEADER_LEN, k->question, k->len) == 0;
}

/* Unlink e from its bucket and the LRU list, and free it. */
static void cache_remove(struct cache *c, struct cache_entry *e)
{
    struct cache_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    TAILQ_REMOVE(&c->lru, e, lru);
    c->stats.entries--;
    c->stats.bytes -= entry_cost(e->nttl, e->len);
    free(e);
}

/* Move every entry to an index of n buckets. Returns 0 or -ENOMEM (the old index stays). */
static int cache_rehash(struct cache *c, size_t n)
{
    struct cache_entry **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    struct cache_entry *e;
    TAILQ_FOREACH(e, &c->lru, lru) {
        size_t i = e->hash & (n - 1);
        e->next = b[i];
        b[i] = e;
    }
    c->stats.bytes = c->stats.bytes - index_cost(c->nbuckets) + index_cost(n);
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
    return 0;
}

static void cache_evict_lru(struct cache *c)
{
    cache_remove(c, TAILQ_LAST(&c->lru, cache_lru));
    c->stats.evictions++;
}

/* Evict until `extra` more bytes fit the budget. Returns false if they never can. */
static bool cache_make_room(struct cache *c, size_t extra)
{
    if (index_cost(c->nbuckets) + extra > c->params.size)
        return false;
    while (c->stats.bytes + extra > c->params.size)
        cache_evict_lru(c);
    return true;
}

/* The index for a budget: small at first, grown as entries come (cache_insert). */
static size_t cache_first_buckets(uint64_t size)
{
    size_t n = CACHE_FIRST_BUCKETS;
    while (n > CACHE_MIN_BUCKETS && index_cost(n) * 16 > size)
        n /= 2;
    return n;
}

struct cache *cache_new(const struct cache_params *params)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    TAILQ_INIT(&c->lru);
    /* Without randomness the hash is still a hash; only its resistance to chosen names
     * would suffer, and getrandom does not fail for 16 bytes after boot. */
    if (getrandom(c->secret, sizeof(c->secret), 0) != sizeof(c->secret))
        c->secret[0] = (uint64_t)(uintptr_t)c;
    cache_set_params(c, params);
    if (c->params.size >= CACHE_MIN_SIZE && c->nbuckets == 0) {
        cache_free(c);
        return NULL;
    }
    return c;
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    struct cache_entry *e, *next;
    for (e = TAILQ_FIRST(&c->lru); e != NULL; e = next) {
        next = TAILQ_NEXT(e, lru);
        free(e);
    }
    free(c->buckets);
    free(c);
}

void cache_set_params(struct cache *c, const struct cache_params *params)
{
    c->params = *params;
    size_t want = cache_first_buckets(params->size);
    if (params->size < CACHE_MIN_SIZE) {
        /* Too small to hold anything worth an index: the cache is off. */
        while (!TAILQ_EMPTY(&c->lru))
            cache_evict_lru(c);
        c->stats.bytes = 0;
        free(c->buckets);
        c->buckets = NULL;
        c->nbuckets = 0;
        return;
    }
    if (c->nbuckets == 0) {
        c->buckets = calloc(want, sizeof(*c->buckets));
        if (c->buckets == NULL)
            return;
        c->nbuckets = want;
        c->stats.bytes = index_cost(want);
        return;
    }
    /* A smaller budget may need a smaller index before the entries are counted in it. */
    size_t n = c->nbuckets;
    while (n > CACHE_MIN_BUCKETS && index_cost(n) * 2 > params->size)
        n /= 2;
    if (n != c->nbuckets)
        cache_rehash(c, n);
    while (c->stats.bytes > params->size && !TAILQ_EMPTY(&c->lru))
        cache_evict_lru(c);
}

struct cache_entry *cache_peek(const struct cache *c, const struct cache_key *k)
{
    if (c->nbuckets == 0)
        return NULL;
    struct cache_entry *e = c->buckets[k->hash & (c->nbuckets - 1)];
    while (e != NULL && !entry_matches(e, k))
        e = e->next;
    return e;
}

struct cache_entry *cache_lookup(struct cache *c, const struct cache_key *k, uint32_t now)
{
    struct cache_entry *e = cache_peek(c, k);
    if (e == NULL) {
        c->stats.misses++;
        return NULL;
    }
    uint32_t age = now - e->inserted;
    if (age >= e->lifetime) {
        c->stats.misses++;
        if (age - e->lifetime >= c->params.stale_max_age) {
            c->stats.expired++;
            cache_remove(c, e);
            return NULL;
        }
    } else {
        c->stats.hits++;
    }
    if (TAILQ_FIRST(&c->lru) != e) {
        TAILQ_REMOVE(&c->lru, e, lru);
        TAILQ_INSERT_HEAD(&c->lru, e, lru);
    }
    return e;
}

uint32_t cache_entry_ttl(const struct cache_entry *e, uint32_t now)
{
    uint32_t age = now - e->inserted;
    return age < e->lifetime ? e->lifetime - age : 0;
}

bool cache_entry_prefetch(struct cache *c, struct cache_entry *e, uint32_t now)
{
    uint32_t left = cache_entry_ttl(e, now);
    if (left == 0 || e->lifetime < CACHE_PREFETCH_MIN_LIFETIME ||
        (uint64_t)left * 10 > e->lifetime || (e->flags & CACHE_E_PREFETCHED))
        return false;
    e->flags |= CACHE_E_PREFETCHED;
    c->stats.prefetches++;
    return true;
}

void cache_entry_set_recheck(struct cache_entry *e, uint32_t until)
{
    e->recheck = until;
}

bool cache_entry_recheck(const struct cache_entry *e, uint32_t now)
{
    return (int32_t)(e->recheck - now) > 0;
}

int cache_answer(struct cache *c, const struct cache_entry *e, const uint8_t *query,
                 const struct dns_query *q, uint32_t now, size_t limit, uint8_t *out, size_t cap)
{
    const uint8_t *msg = entry_msg(e);
    size_t qend = DNS_HEADER_LEN + (size_t)e->qlen;
    size_t opt = e->opt_off ? (size_t)e->len - e->opt_off : 0;
    uint16_t flags = (uint16_t)((dns_get16(msg + 2) & ~DNS_FLAG_RD) | (q->flags & DNS_FLAG_RD));
    uint32_t age = now - e->inserted;
    bool stale = age >= e->lifetime;
    if (stale)
        c->stats.stale++;
    size_t n;
    /* RFC 2181 §9, as dns_answer_for_client: what does not fit is cut to the question
     * (and OPT) with TC=1, never to a partial RRset. */
    if (e->len > limit || e->len > cap) {
        n = qend + opt;
        if (n > cap)
            return -ENOSPC;
        memcpy(out, msg, DNS_HEADER_LEN);
        dns_put16(out + 2, flags | DNS_FLAG_TC);
        dns_put16(out + 6, 0);
        dns_put16(out + 8, 0);
        dns_put16(out + 10, opt ? 1 : 0);
        memcpy(out + qend, msg + e->opt_off, opt);
    } else {
        n = e->len;
        memcpy(out, msg, n);
        dns_put16(out + 2, flags);
        if (stale) {
            /* RFC 8767 §4: a stale answer carries a short TTL, 30 s recommended. */
            for (size_t i = 0; i < e->nttl; i++)
                dns_put32(out + e->ttl_off[i], CACHE_STALE_TTL);
        } else {
            /* Every stored TTL is at least the lifetime, so none of them reaches 0. */
            for (size_t i = 0; i < e->nttl; i++)
                dns_put32(out + e->ttl_off[i], dns_get32(msg + e->ttl_off[i]) - age);
        }
    }
    dns_put16(out, q->id);
    /* The question as the client spelled it (RFC 1035 §7.3 and 0x20 clients); the entry
     * holds it in lower case. */
    memcpy(out + DNS_HEADER_LEN, query + DNS_HEADER_LEN, e->qlen);
    return (int)n;
}

/* What cache_insert and cache_lifetime share: is answer cacheable, and for how long. */
static int64_t cache_judge(const struct cache_params *p, const uint8_t *answer, size_t len,
                           uint16_t *ttl_off, size_t cap, struct dns_ttl_scan *s)
{
    if (dns_answer_ttls(answer, len, ttl_off, cap, s) < 0)
        return -EBADMSG;
    /* RFC 2181 §9: a truncated answer is incomplete and never cached. */
    if ((dns_get16(answer + 2) & DNS_FLAG_TC) ||
        (s->rcode != DNS_RCODE_NOERROR && s->rcode != DNS_RCODE_NXDOMAIN))
        return -EINVAL;
    if (s->nttl > cap)
        return -E2BIG;
    uint32_t life;
    if (s->negative) {
        /* RFC 2308 §5: a negative answer lives as long as its SOA says, and without an
         * SOA it is not cached. */
        if (!s->has_soa)
            return -EINVAL;
        life = s->soa_ttl < s->min_ttl ? s->soa_ttl : s->min_ttl;
        if (life > p->max_negative_ttl)
            life = p->max_negative_ttl;
    } else {
        life = s->min_ttl;
        if (life < p->min_ttl)
            life = p->min_ttl;
    }
    if (life > p->max_ttl)
        life = p->max_ttl;
    if (life == 0)
        return -EINVAL;
    return life;
}

int64_t cache_lifetime(const struct cache_params *params, const uint8_t *answer, size_t len)
{
    uint16_t ttl_off[CACHE_MAX_RECORDS];
    struct dns_ttl_scan s;
    return cache_judge(params, answer, len, ttl_off, CACHE_MAX_RECORDS, &s);
}

int cache_insert(struct cache *c, const struct cache_key *k, const uint8_t *answer, size_t len,
                 uint32_t now)
{
    if (c->nbuckets == 0)
        return -E2BIG;
    uint16_t ttl_off[CACHE_MAX_RECORDS];
    struct dns_ttl_scan s;
    int64_t life = cache_judge(&c->params, answer, len, ttl_off, CACHE_MAX_RECORDS, &s);
    if (life < 0)
        return (int)life;
    /* The answer must be to the question of the key (dns_answer_ttls has parsed it). */
    if (len < DNS_HEADER_LEN + (size_t)k->len)
        return -EINVAL;
    for (size_t i = 0; i < k->len; i++)
        if (dns_lower(answer[DNS_HEADER_LEN + i]) != k->question[i])
            return -EINVAL;
    size_t cost = entry_cost(s.nttl, len);
    if (index_cost(c->nbuckets) + cost > c->params.size)
        return -E2BIG;

    struct cache_entry *e = malloc(cost - CACHE_MALLOC_OVERHEAD);
    if (e == NULL)
        return -ENOMEM;
    e->hash = k->hash;
    e->inserted = now;
    e->lifetime = (uint32_t)life;
    e->recheck = now;
    e->len = (uint16_t)len;
    e->nttl = s.nttl;
    e->qlen = k->len;
    e->opt_off = s.opt_off;
    e->bits = k->bits;
    e->flags = 0;
    memcpy(e->ttl_off, ttl_off, s.nttl * sizeof(uint16_t));
    uint8_t *msg = entry_msg(e);
    memcpy(msg, answer, len);
    memcpy(msg + DNS_HEADER_LEN, k->question, k->len);
    /* Stored TTLs: raised to min-ttl and capped at max-ttl, and a negative answer's all
     * at its lifetime, so that no TTL a client sees outlives the entry nor reaches 0
     * before it expires. */
    for (size_t i = 0; i < s.nttl; i++) {
        uint32_t ttl = dns_get32(msg + ttl_off[i]);
        if (ttl > INT32_MAX)
            ttl = 0;
        if (s.negative || ttl > c->params.max_ttl)
            ttl = s.negative ? (uint32_t)life : c->params.max_ttl;
        if (ttl < life)
            ttl = (uint32_t)life;
        dns_put32(msg + ttl_off[i], ttl);
    }

    struct cache_entry **pp = &c->buckets[k->hash & (c->nbuckets - 1)];
    for (struct cache_entry *old = *pp; old != NULL; old = old->next) {
        if (entry_matches(old, k)) {
            cache_remove(c, old);
            break;
        }
    }
    cache_make_room(c, cost); /* cannot fail: the cost was checked against the index */
    e->next = c->buckets[k->hash & (c->nbuckets - 1)];
    c->buckets[k->hash & (c->nbuckets - 1)] = e;
    TAILQ_INSERT_HEAD(&c->lru, e, lru);
    c->stats.entries++;
    c->stats.inserts++;
    c->stats.bytes += cost;

    /* Keep chains short: double the index when the entries outnumber the buckets, if the
     * budget has room for it beside them. */
    if (c->stats.entries > c->nbuckets &&
        c->stats.bytes + index_cost(c->nbuckets) <= c->params.size)
        cache_rehash(c, c->nbuckets * 2);
    return 0;
}

const struct cache_stats *cache_stats(const struct cache *c)
{
    return &c->stats;
}
