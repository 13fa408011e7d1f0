/* fuzz_cache: an input as an upstream's answer, through the cache and back out.
 *
 * The input is one DNS message (the corpus is fuzz_dns's). Its twin with QR cleared is
 * the client's query; when both parse, the client form of the answer is inserted, and
 * what the cache writes for a differently spelled client, fresh, aged and stale, under
 * several limits, must parse as an answer to that client's question, carry its ID, and
 * never show a TTL above what was stored or a stale TTL other than CACHE_STALE_TTL.
 * dns_answer_ttls also sees the raw input, whatever it is. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/cache.h"
#include "dnsward/dns.h"

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { FZ_MAX_TTLS = 6000 };

static uint16_t fz_offs[FZ_MAX_TTLS];
static uint8_t fz_form[DNS_MAX_MSG + 11];
static uint8_t fz_out[DNS_MAX_MSG + 11];

/* Every TTL of the answer out (n bytes) is at most max (or exactly CACHE_STALE_TTL). */
static void fz_check_ttls(const uint8_t *out, size_t n, bool stale, uint32_t max)
{
    struct dns_ttl_scan s;
    FZ_CHECK(dns_answer_ttls(out, n, fz_offs, FZ_MAX_TTLS, &s) == 0);
    for (size_t i = 0; i < s.nttl && i < FZ_MAX_TTLS; i++) {
        uint32_t ttl = dns_get32(out + fz_offs[i]);
        FZ_CHECK(stale ? ttl == CACHE_STALE_TTL : (ttl > 0 && ttl <= max));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_ttl_scan s;
    int rc = dns_answer_ttls(data, size, fz_offs, FZ_MAX_TTLS, &s);
    FZ_CHECK(rc == 0 || rc == -EBADMSG);
    if (rc == 0)
        for (size_t i = 0; i < s.nttl && i < FZ_MAX_TTLS; i++)
            FZ_CHECK(fz_offs[i] >= DNS_HEADER_LEN && (size_t)fz_offs[i] + 4 <= size);

    struct dns_answer a;
    if (size < DNS_HEADER_LEN || dns_answer_parse(data, size, &a) != 0)
        return 0;
    /* The client's query: the twin with QR and the opcode cleared, its name upper-cased. */
    uint8_t *qm = malloc(size);
    FZ_CHECK(qm != NULL);
    memcpy(qm, data, size);
    qm[2] &= 0x07;
    for (size_t i = DNS_HEADER_LEN; i < a.question_end - 4u; i++)
        if (qm[i] >= 'a' && qm[i] <= 'z')
            qm[i] = (uint8_t)(qm[i] - 32);
    struct dns_query q;
    if (dns_query_parse(qm, size, &q) != 0 || q.question_end != a.question_end) {
        free(qm);
        return 0;
    }

    struct cache_params p = {.size = 1 << 20,
                             .min_ttl = data[1] & 7,
                             .max_ttl = 3600,
                             .max_negative_ttl = 900,
                             .stale_max_age = 100};
    struct cache *c = cache_new(&p);
    FZ_CHECK(c != NULL);
    int n = dns_answer_for_client(data, &a, qm, &q, 1232, DNS_MAX_MSG, fz_form, sizeof(fz_form));
    FZ_CHECK(n > 0);
    struct cache_key k;
    cache_key_init(c, &k, qm, &q);
    int64_t life = cache_lifetime(&p, fz_form, (size_t)n);
    rc = cache_insert(c, &k, fz_form, (size_t)n, 1000);
    FZ_CHECK(rc == 0 || rc == -EINVAL);
    FZ_CHECK((rc == 0) == (life > 0));
    FZ_CHECK(cache_stats(c)->bytes <= p.size);
    if (rc == 0) {
        FZ_CHECK(life <= 3600);
        uint32_t ages[] = {0, (uint32_t)life - 1, (uint32_t)life, (uint32_t)life + 99};
        size_t limits[] = {0, 512, (size_t)n - 1, DNS_MAX_MSG};
        for (size_t t = 0; t < 4; t++) {
            struct cache_entry *e = cache_lookup(c, &k, 1000 + ages[t]);
            FZ_CHECK(e != NULL);
            bool stale = cache_entry_ttl(e, 1000 + ages[t]) == 0;
            FZ_CHECK(stale == (ages[t] >= (uint32_t)life));
            for (size_t l = 0; l < 4; l++) {
                int m =
                    cache_answer(c, e, qm, &q, 1000 + ages[t], limits[l], fz_out, sizeof(fz_out));
                FZ_CHECK(m > 0);
                struct dns_answer back;
                FZ_CHECK(dns_answer_parse(fz_out, (size_t)m, &back) == 0);
                FZ_CHECK(dns_get16(fz_out) == q.id);
                FZ_CHECK(memcmp(fz_out + DNS_HEADER_LEN, qm + DNS_HEADER_LEN,
                                q.question_end - (size_t)DNS_HEADER_LEN) == 0);
                FZ_CHECK(back.has_edns == q.has_edns);
                FZ_CHECK(((size_t)m < (size_t)n) ==
                         ((back.flags & DNS_FLAG_TC) && !(a.flags & DNS_FLAG_TC)));
                fz_check_ttls(fz_out, (size_t)m, stale, p.max_ttl);
            }
        }
        /* Past the stale window the entry is gone. */
        FZ_CHECK(cache_lookup(c, &k, 1000 + (uint32_t)life + 100) == NULL);
        FZ_CHECK(cache_stats(c)->entries == 0);
    }
    cache_free(c);
    free(qm);
    return 0;
}
