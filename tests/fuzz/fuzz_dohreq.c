/* fuzz_dohreq: the RFC 8484 request rules on what a client chose.
 *
 * The input is the request target, judged for each method and with a few content types,
 * and also the content type of a POST; decoded queries go into heap buffers of exactly
 * the capacity passed, so that AddressSanitizer sees a write past cap. The input is also
 * a DNS message for dohreq_check_query and dohreq_max_age. The seed corpus holds targets
 * as real clients send them. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/base64.h"
#include "dnsward/dohreq.h"

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FZ_PATH "/dns-query"

static void *fz_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    FZ_CHECK(p != NULL);
    return p;
}

/* dohreq_head for one method and content type, at capacities from 0 up. Returns the
 * status at the largest capacity. */
static int fz_head(enum dohreq_method m, const char *target, size_t len, const char *ctype,
                   size_t ctype_len)
{
    static const size_t caps[] = {0, 1, 12, 512, 65535};
    int rc = -1;
    bool accepted = false;
    size_t accepted_len = 0;
    for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
        uint8_t *out = fz_alloc(caps[k]);
        size_t outlen = (size_t)-1;
        rc = dohreq_head(FZ_PATH, m, target, len, ctype, ctype_len, out, caps[k], &outlen);
        FZ_CHECK(rc == 0 || rc == 400 || rc == 404 || rc == 405 || rc == 415);
        if (rc != 0 || m != DOHREQ_GET)
            FZ_CHECK(outlen == 0);
        else
            FZ_CHECK(outlen > 0 && outlen <= caps[k]);
        /* A larger capacity never turns an accepted query away, and decodes the same. */
        if (accepted) {
            FZ_CHECK(rc == 0 && outlen == accepted_len);
        } else if (rc == 0) {
            accepted = true;
            accepted_len = outlen;
        }
        free(out);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, not terminated: nothing may read past len. */
    char *text = fz_alloc(size);
    memcpy(text, data, size);

    int get = fz_head(DOHREQ_GET, text, size, NULL, 0);
    int post = fz_head(DOHREQ_POST, text, size, "application/dns-message", 23);
    int post_none = fz_head(DOHREQ_POST, text, size, NULL, 0);
    int other = fz_head(DOHREQ_OTHER, text, size, "application/dns-message", 23);
    /* The path is judged first and alike for every method. */
    FZ_CHECK((get == 404) == (post == 404));
    FZ_CHECK((get == 404) == (other == 404));
    FZ_CHECK((get == 404) == (post_none == 404));
    if (get != 404) {
        FZ_CHECK(other == 405);
        FZ_CHECK(post == 0);
        FZ_CHECK(post_none == 415);
        FZ_CHECK(get == 0 || get == 400);
        /* A query was found only where the target has a dns parameter. */
        if (get == 0)
            FZ_CHECK(size >= 5 && memchr(text, '?', size) != NULL);
    }

    /* The input as a POST's content type, at the right path. */
    int ct = fz_head(DOHREQ_POST, FZ_PATH, strlen(FZ_PATH), text, size);
    FZ_CHECK(ct == 0 || ct == 415);

    /* The input as a DNS message. */
    int q = dohreq_check_query(data, size);
    FZ_CHECK(q == 0 || q == 400);
    (void)dohreq_max_age(data, size);

    /* The input as a query carried by a GET: whatever the bytes, their encoding is
     * accepted and decodes back to them. */
    if (size > 0 && size <= 4096) {
        size_t elen = base64url_encoded_len(size);
        size_t tlen = strlen(FZ_PATH "?dns=") + elen;
        char *target = fz_alloc(tlen + 1);
        memcpy(target, FZ_PATH "?dns=", strlen(FZ_PATH "?dns="));
        FZ_CHECK(base64url_encode(data, size, target + strlen(FZ_PATH "?dns="), elen + 1) ==
                 (int)elen);
        uint8_t *out = fz_alloc(size);
        size_t outlen = 0;
        FZ_CHECK(dohreq_head(FZ_PATH, DOHREQ_GET, target, tlen, NULL, 0, out, size, &outlen) == 0);
        FZ_CHECK(outlen == size && memcmp(out, data, size) == 0);
        FZ_CHECK(dohreq_head(FZ_PATH, DOHREQ_GET, target, tlen, NULL, 0, out, size - 1, &outlen) ==
                 400);
        free(out);
        free(target);
    }
    free(text);
    return 0;
}
