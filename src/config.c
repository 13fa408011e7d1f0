/* config: see include/dnsward/config.h.
 *
 * One table (config_keys) names every setting once: the file's keys, the long flags, the
 * parser of each value and the usage text all come from it, so a key cannot exist in one
 * place and be missing in another. Defaults live in config_init and the two default lists
 * below; the usage text prints them from there, and conf/dnsward.conf repeats them.
 */
#include "dnsward/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "dnsward/dns.h"
#include "dnsward/util.h"

#define CONFIG_CMDLINE "command line"
#define CONFIG_SECTION "dnsward"
#define CONFIG_DNS_PORT 53
#define CONFIG_MAX_DURATION_MS (3600u * 1000u)
#define CONFIG_LISTEN_FORM "ADDR[:PORT], [V6ADDR]:PORT or V6ADDR"

/* Applied by config_finish when neither the file nor the command line gives any. */
static const char *const config_default_listen[] = {"127.0.0.1:53", "[::1]:53"};
static const char *const config_default_allow[] = {"127.0.0.0/8", "::1/128"};
static const char *const config_default_upstreams[] = {
    "tls://1.1.1.1#cloudflare-dns.com",
    "tls://9.9.9.9#dns.quad9.net",
    "tls://8.8.8.8#dns.google",
};

static const char *const config_strategies[] = {
    [CONFIG_STRATEGY_FAILOVER] = "failover",
    [CONFIG_STRATEGY_ROUND_ROBIN] = "round-robin",
    [CONFIG_STRATEGY_FASTEST] = "fastest",
};

static const char *const config_doh_methods[] = {
    [CONFIG_DOH_POST] = "post",
    [CONFIG_DOH_GET] = "get",
};

static const struct {
    const char *name;
    int level;
} config_log_levels[] = {
    {"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
    {"info", LOG_INFO}, {"debug", LOG_DEBUG},
};

enum config_type {
    CONFIG_T_LISTEN,
    CONFIG_T_UPSTREAM,
    CONFIG_T_PIN,
    CONFIG_T_PATH,
    CONFIG_T_LOG_LEVEL,
    CONFIG_T_DURATION, /* a uint32_t field, in milliseconds */
    CONFIG_T_NUMBER,   /* an unsigned field of any width, between min and max */
    CONFIG_T_BOOL_PAD,
    CONFIG_T_ECS,
    CONFIG_T_BOOL,    /* a bool field: yes or no */
    CONFIG_T_SIZE,    /* an unsigned field of any width, bytes with an optional k, M or G;
                       * between min and max when max is not 0 */
    CONFIG_T_SECONDS, /* a uint32_t field, seconds with an optional s, m, h or d */
    CONFIG_T_BOOTSTRAP,
    CONFIG_T_STRATEGY,
    CONFIG_T_DOH_METHOD,
    CONFIG_T_SERVER_LISTEN, /* a list of struct config_listen at offset, its count after it */
    CONFIG_T_ACL,           /* a struct acl field */
    CONFIG_T_HTTP_PATH,     /* a char array field holding an absolute HTTP path */
    CONFIG_T_STRING,        /* a char array field; an absolute path when min is 1 */
};

struct config_key {
    const char *name;
    char short_flag; /* 0: a long flag only */
    enum config_type type;
    size_t offset; /* the field in struct config, for the types that have one */
    size_t size;
    unsigned long min, max; /* CONFIG_T_NUMBER, CONFIG_T_SECONDS, CONFIG_T_SIZE; the default
                             * port of CONFIG_T_SERVER_LISTEN in min */
    const char *arg;        /* the value's form, for the usage text */
    const char *help;       /* what it sets, for the usage text */
};

#define CONFIG_FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct config_key config_keys[] = {
    {"listen", 'l', CONFIG_T_LISTEN, 0, 0, 0, 0, "ADDR[:PORT]",
     "answer plain DNS on UDP and TCP at this address (port 53 if none); repeatable"},
    {"upstream", 'u', CONFIG_T_UPSTREAM, 0, 0, 0, 0, "URL",
     "forward to this resolver: tls://HOST[:PORT][#NAME], https://HOST[:PORT]/PATH[#NAME] or "
     "sdns://STAMP; repeatable"},
    {"bootstrap", 0, CONFIG_T_BOOTSTRAP, 0, 0, 0, 0, "ADDR[:PORT]",
     "resolve upstream host names through this plain DNS server, and nothing else; "
     "repeatable"},
    {"strategy", 0, CONFIG_T_STRATEGY, 0, 0, 0, 0, "NAME",
     "choose upstreams by failover (in order), round-robin or fastest"},
    {"doh-method", 0, CONFIG_T_DOH_METHOD, 0, 0, 0, 0, "post|get",
     "send DoH queries as POST, or as GET with ?dns= (cacheable by HTTP caches)"},
    {"pin-sha256", 0, CONFIG_T_PIN, 0, 0, 0, 0, "BASE64",
     "also require this SPKI SHA-256 pin of the upstream given just before; repeatable"},
    {"ca-file", 0, CONFIG_T_PATH, CONFIG_FIELD(ca_file), 0, 0, "FILE",
     "verify upstreams against the CA certificates in FILE"},
    {"allow", 0, CONFIG_T_ACL, CONFIG_FIELD(allow), 0, 0, "CIDR",
     "answer clients from this network, on every listener; others get REFUSED (HTTP 403); "
     "repeatable"},
    {"doh-listen", 0, CONFIG_T_SERVER_LISTEN, CONFIG_FIELD(doh_listen), 443, 0, "ADDR[:PORT]",
     "serve DNS-over-HTTPS (HTTP/2 and HTTP/1.1) at this address (port 443 if none); "
     "repeatable"},
    {"dot-listen", 0, CONFIG_T_SERVER_LISTEN, CONFIG_FIELD(dot_listen), 853, 0, "ADDR[:PORT]",
     "serve DNS-over-TLS at this address (port 853 if none); repeatable"},
    {"doh-plain-listen", 0, CONFIG_T_SERVER_LISTEN, CONFIG_FIELD(doh_plain_listen), 80, 0,
     "ADDR[:PORT]",
     "serve DoH without TLS (h2c with prior knowledge and HTTP/1.1), for a reverse proxy in "
     "front (port 80 if none); repeatable"},
    {"cert", 0, CONFIG_T_PATH, CONFIG_FIELD(cert_file), 0, 0, "FILE",
     "the certificate chain (PEM) of doh-listen and dot-listen; re-read on SIGHUP"},
    {"key", 0, CONFIG_T_PATH, CONFIG_FIELD(key_file), 0, 0, "FILE",
     "the private key (PEM) of cert; re-read on SIGHUP"},
    {"trusted-proxy", 0, CONFIG_T_ACL, CONFIG_FIELD(trusted_proxies), 0, 0, "CIDR",
     "believe X-Forwarded-For from these peers of doh-plain-listen; repeatable"},
    {"doh-path", 0, CONFIG_T_HTTP_PATH, CONFIG_FIELD(doh_path), 0, 0, "PATH",
     "the path of DoH requests"},
    {"doh-max-streams", 0, CONFIG_T_NUMBER, CONFIG_FIELD(doh_max_streams), 1, 1000, "N",
     "requests at once per DoH connection"},
    {"doh-max-header-size", 0, CONFIG_T_SIZE, CONFIG_FIELD(doh_max_header_size), 1024, 1024 * 1024,
     "BYTES", "bytes of header fields in a DoH request"},
    {"doh-idle-timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(doh_idle_timeout_ms), 0, 0, "DURATION",
     "close a DoH connection that has had no request open this long"},
    {"doh-header-timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(doh_header_timeout_ms), 0, 0,
     "DURATION", "close a connection whose TLS handshake or request header takes longer than this"},
    {"log-level", 0, CONFIG_T_LOG_LEVEL, 0, 0, 0, 0, "LEVEL",
     "error, warning, notice, info or debug"},
    {"timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(timeout_ms), 0, 0, "DURATION",
     "a query's deadline; then the client gets SERVFAIL"},
    {"attempt-timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(attempt_timeout_ms), 0, 0, "DURATION",
     "wait at most this long for one upstream before trying the next (the timeout follows "
     "the upstream's RTT below that)"},
    {"attempt-timeout-min", 0, CONFIG_T_DURATION, CONFIG_FIELD(attempt_timeout_min_ms), 0, 0,
     "DURATION", "the shortest RTT-derived wait for one upstream"},
    {"max-attempts", 0, CONFIG_T_NUMBER, CONFIG_FIELD(max_attempts), 1, 10, "N",
     "upstream attempts per query"},
    {"udp-max-size", 0, CONFIG_T_NUMBER, CONFIG_FIELD(udp_max_size), 512, 4096, "BYTES",
     "largest UDP answer sent, and the EDNS size advertised"},
    {"tcp-max-connections", 0, CONFIG_T_NUMBER, CONFIG_FIELD(tcp_max_connections), 1, 65535, "N",
     "TCP clients per listener"},
    {"tcp-max-inflight", 0, CONFIG_T_NUMBER, CONFIG_FIELD(tcp_max_inflight), 1, 65535, "N",
     "queries in flight per TCP client"},
    {"tcp-idle-timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(tcp_idle_timeout_ms), 0, 0, "DURATION",
     "close a TCP client that is idle this long"},
    {"upstream-idle-timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(upstream_idle_timeout_ms), 0, 0,
     "DURATION", "close an upstream connection that is idle this long"},
    {"upstream-max-connections", 0, CONFIG_T_NUMBER, CONFIG_FIELD(upstream_max_connections), 1, 64,
     "N", "connections per upstream"},
    {"upstream-max-inflight", 0, CONFIG_T_NUMBER, CONFIG_FIELD(upstream_max_inflight), 1, 4096, "N",
     "queries in flight per upstream connection"},
    {"upstream-connect-rate", 0, CONFIG_T_NUMBER, CONFIG_FIELD(upstream_connect_rate), 1, 1000, "N",
     "new connections per second per upstream, at most"},
    {"padding", 0, CONFIG_T_BOOL_PAD, 0, 0, 0, 0, "yes|no",
     "pad upstream queries to blocks of 128 bytes, as RFC 8467 advises"},
    {"edns-client-subnet", 0, CONFIG_T_ECS, 0, 0, 0, 0, "CIDR|none",
     "tell upstreams this client subnet, as RFC 7871 allows"},
    {"max-queries", 0, CONFIG_T_NUMBER, CONFIG_FIELD(max_queries), 1, 1000000, "N",
     "queries in flight in the whole process"},
    {"cache-size", 0, CONFIG_T_SIZE, CONFIG_FIELD(cache_size), 0, 0, "BYTES",
     "memory for cached answers, with k, M or G; 0 turns the cache off"},
    {"min-ttl", 0, CONFIG_T_SECONDS, CONFIG_FIELD(min_ttl), 0, 86400, "SECONDS",
     "keep answers at least this long, whatever their TTL"},
    {"max-ttl", 0, CONFIG_T_SECONDS, CONFIG_FIELD(max_ttl), 1, 7 * 86400, "SECONDS",
     "keep answers at most this long"},
    {"max-negative-ttl", 0, CONFIG_T_SECONDS, CONFIG_FIELD(max_negative_ttl), 0, 86400, "SECONDS",
     "keep NXDOMAIN and NODATA answers at most this long"},
    {"serve-stale", 0, CONFIG_T_BOOL, CONFIG_FIELD(serve_stale), 0, 0, "yes|no",
     "answer from expired entries when the upstreams fail or are slow (RFC 8767)"},
    {"stale-max-age", 0, CONFIG_T_SECONDS, CONFIG_FIELD(stale_max_age), 0, 30 * 86400, "SECONDS",
     "keep expired entries this long for serve-stale"},
    {"stale-client-timeout", 0, CONFIG_T_DURATION, CONFIG_FIELD(stale_client_timeout_ms), 0, 0,
     "DURATION", "wait this long for the upstream before answering from an expired entry"},
    {"prefetch", 0, CONFIG_T_BOOL, CONFIG_FIELD(prefetch), 0, 0, "yes|no",
     "refresh a popular entry in the background before it expires"},
    {"user", 0, CONFIG_T_STRING, CONFIG_FIELD(user), 0, 0, "NAME",
     "after binding, switch to this user (and its group); needs a restart to change"},
    {"chroot", 0, CONFIG_T_STRING, CONFIG_FIELD(chroot_dir), 1, 0, "DIR",
     "after binding, change root to DIR (with user); needs a restart to change"},
    {"syslog", 0, CONFIG_T_BOOL, CONFIG_FIELD(syslog), 0, 0, "yes|no",
     "log to syslog (facility daemon) instead of stderr"},
    {"query-log", 0, CONFIG_T_STRING, CONFIG_FIELD(query_log), 1, 0, "FILE",
     "write one line per answer to FILE (client, name, type, code, upstream, latency); "
     "reopened on SIGHUP"},
    {"metrics-listen", 0, CONFIG_T_SERVER_LISTEN, CONFIG_FIELD(metrics_listen), CONFIG_METRICS_PORT,
     0, "ADDR[:PORT]",
     "serve Prometheus metrics at http://ADDR:PORT/metrics (port 9153 if none); repeatable"},
};

_Static_assert(ARRAY_SIZE(config_keys) <= 64, "config_source.lists_given has a bit per key");
/* CONFIG_T_SERVER_LISTEN finds a list's count just after its array. */
#define CONFIG_COUNT_FOLLOWS(list, n)                                                              \
    _Static_assert(offsetof(struct config, n) ==                                                   \
                       offsetof(struct config, list) + sizeof(((struct config *)0)->list),         \
                   #n " must follow " #list)
CONFIG_COUNT_FOLLOWS(doh_listen, ndoh_listen);
CONFIG_COUNT_FOLLOWS(dot_listen, ndot_listen);
CONFIG_COUNT_FOLLOWS(doh_plain_listen, ndoh_plain_listen);
CONFIG_COUNT_FOLLOWS(metrics_listen, nmetrics_listen);

/* Where settings come from: the rules for list keys and pins depend on it. */
struct config_source {
    const char *where;   /* "FILE:LINE" or "command line", for messages */
    bool cli;            /* keys are named --KEY in messages */
    bool replace_lists;  /* the source's first listen (upstream) drops those given before */
    bool listen_given;   /* this source has given a listen */
    bool upstream_given; /* this source has given an upstream, so a pin may follow */
    bool bootstrap_given;
    uint64_t lists_given; /* bit i: config_keys[i], a list key, was given by this source */
};

const char *config_strategy_name(enum config_strategy s)
{
    return (size_t)s < ARRAY_SIZE(config_strategies) ? config_strategies[s] : "?";
}

void config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_NOTICE;
    cfg->timeout_ms = 3000;
    cfg->attempt_timeout_ms = 1500;
    cfg->attempt_timeout_min_ms = 400;
    cfg->upstream_connect_rate = 10;
    cfg->max_attempts = 3;
    cfg->udp_max_size = 1232;
    cfg->tcp_max_connections = 256;
    cfg->tcp_max_inflight = 128;
    cfg->tcp_idle_timeout_ms = 10 * 1000;
    cfg->upstream_idle_timeout_ms = 30 * 1000;
    cfg->upstream_max_connections = 4;
    cfg->upstream_max_inflight = 512;
    cfg->pad_block = DNS_PAD_QUERY;
    cfg->ecs_len = 0;
    cfg->max_queries = 10000;
    cfg->cache_size = 4 << 20;
    cfg->min_ttl = 0;
    cfg->max_ttl = 86400;
    cfg->max_negative_ttl = 3600;
    cfg->serve_stale = true;
    cfg->stale_max_age = 86400;
    cfg->stale_client_timeout_ms = 1800;
    cfg->prefetch = true;
    memcpy(cfg->doh_path, "/dns-query", sizeof("/dns-query"));
    cfg->doh_max_streams = 100;
    cfg->doh_max_header_size = 16 * 1024;
    cfg->doh_idle_timeout_ms = 30 * 1000;
    cfg->doh_header_timeout_ms = 5 * 1000;
}

/* Value parsers: each returns 0, or -EINVAL for a malformed value and -ERANGE for one out
 * of its range, and leaves the message to its caller. */

/* Decimal digits only: no sign, no space, no base prefix. Values beyond 10^15 are
 * -ERANGE, which keeps every later multiplication far from overflow. */
static int config_parse_u64(const char *text, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = text;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > 100000000000000u)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (end != NULL)
        *end = p;
    else if (*p != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

/* A number with a unit (ms, s, m, h; a bare number is seconds), above 0 and at most an
 * hour. */
static int config_parse_duration(const char *text, uint32_t *ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
    const char *suffix;
    uint64_t v;
    int rc = config_parse_u64(text, &suffix, &v);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcmp(suffix, units[i].suffix) != 0)
            continue;
        v *= units[i].ms;
        if (v == 0 || v > CONFIG_MAX_DURATION_MS)
            return -ERANGE;
        *ms = (uint32_t)v;
        return 0;
    }
    return -EINVAL;
}

/* A number of seconds with an optional unit (s, m, h, d; seconds if none). */
static int config_parse_seconds(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t s;
    } units[] = {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
    const char *suffix;
    uint64_t v;
    int rc = config_parse_u64(text, &suffix, &v);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcmp(suffix, units[i].suffix) == 0) {
            *out = v * units[i].s;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_size(const char *text, uint64_t *out)
{
    const char *suffix;
    uint64_t v;
    unsigned shift = 0;
    if (config_parse_u64(text, &suffix, &v) != 0)
        return -EINVAL;
    if (suffix[0] != '\0') {
        const char *units = "kKmMgG";
        const char *u = strchr(units, suffix[0]);
        if (u == NULL || suffix[1] != '\0')
            return -EINVAL;
        shift = 10 * (unsigned)((u - units) / 2 + 1);
    }
    if (v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

static int config_parse_port(const char *text, uint16_t *port)
{
    uint64_t v;
    if (config_parse_u64(text, NULL, &v) != 0 || v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* An IPv6 literal with an optional zone ("fe80::1%eth0"), which a link-local listener
 * needs to name its interface. */
static int config_parse_ip6(const char *text, struct sockaddr_in6 *sin6)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
    size_t n = strlen(text);
    if (n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, n + 1);
    char *zone = strchr(buf, '%');
    if (zone != NULL) {
        *zone++ = '\0';
        uint64_t index;
        if (config_parse_u64(zone, NULL, &index) == 0 && index <= UINT32_MAX)
            sin6->sin6_scope_id = (uint32_t)index;
        else if ((sin6->sin6_scope_id = if_nametoindex(zone)) == 0)
            return -EINVAL;
    }
    if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
        return -EINVAL;
    sin6->sin6_family = AF_INET6;
    return 0;
}

int config_parse_addr(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
    const char *port_text = NULL;
    const char *start = text;
    size_t hostlen;
    bool bracketed = text[0] == '[';
    uint16_t port = default_port;

    if (bracketed) {
        const char *end = strchr(++start, ']');
        if (end == NULL)
            return -EINVAL;
        hostlen = (size_t)(end - start);
        if (end[1] == ':')
            port_text = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
    } else {
        /* One colon separates a port; more make the whole text an IPv6 address. */
        const char *colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hostlen = (size_t)(colon - text);
            port_text = colon + 1;
        } else {
            hostlen = strlen(text);
        }
    }
    if (hostlen == 0 || hostlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, start, hostlen);
    host[hostlen] = '\0';
    if (port_text != NULL && config_parse_port(port_text, &port) != 0)
        return -EINVAL;

    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (!bracketed && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
        return 0;
    }
    /* An IPv6 address needs brackets to carry a port: "::1:53" is an address. */
    if ((bracketed || port_text == NULL) && config_parse_ip6(host, sin6) == 0) {
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
        return 0;
    }
    memset(ss, 0, sizeof(*ss));
    return -EINVAL;
}

/* RFC 7871 §6: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH (0 in queries), then
 * the address cut to whole bytes of the prefix, with the bits past the prefix zero. */
static int config_parse_ecs(const char *text, uint8_t out[20], uint16_t *len)
{
    char addr[INET6_ADDRSTRLEN];
    uint8_t bytes[16];
    uint64_t prefix;
    unsigned family, max;
    const char *slash = strchr(text, '/');

    if (slash == NULL || (size_t)(slash - text) >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, text, (size_t)(slash - text));
    addr[slash - text] = '\0';
    if (inet_pton(AF_INET, addr, bytes) == 1) {
        family = 1;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, bytes) == 1) {
        family = 2;
        max = 128;
    } else {
        return -EINVAL;
    }
    if (config_parse_u64(slash + 1, NULL, &prefix) != 0)
        return -EINVAL;
    if (prefix > max)
        return -ERANGE;

    size_t n = (size_t)(prefix + 7) / 8;
    out[0] = 0;
    out[1] = (uint8_t)family;
    out[2] = (uint8_t)prefix;
    out[3] = 0;
    memcpy(out + 4, bytes, n);
    if (prefix % 8 != 0)
        out[4 + n - 1] &= (uint8_t)(0xff << (8 - prefix % 8));
    *len = (uint16_t)(4 + n);
    return 0;
}

static int config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static void config_store_number(struct config *cfg, const struct config_key *k, uint64_t v)
{
    uint8_t *field = (uint8_t *)cfg + k->offset;
    switch (k->size) {
    case sizeof(uint8_t): {
        uint8_t x = (uint8_t)v;
        memcpy(field, &x, sizeof(x));
        break;
    }
    case sizeof(uint16_t): {
        uint16_t x = (uint16_t)v;
        memcpy(field, &x, sizeof(x));
        break;
    }
    case sizeof(uint32_t): {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof(x));
        break;
    }
    default:
        memcpy(field, &v, sizeof(v));
        break;
    }
}

static uint64_t config_load_number(const struct config *cfg, const struct config_key *k)
{
    const uint8_t *field = (const uint8_t *)cfg + k->offset;
    switch (k->size) {
    case sizeof(uint8_t):
        return *field;
    case sizeof(uint16_t): {
        uint16_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    case sizeof(uint32_t): {
        uint32_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    default: {
        uint64_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    }
}

static const struct config_key *config_key_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

static int config_fail(const struct config_source *src, const char *key, char *err, size_t errlen,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Fill err with "WHERE: KEY: what" (--KEY on the command line) and return -1. */
static int config_fail(const struct config_source *src, const char *key, char *err, size_t errlen,
                       const char *fmt, ...)
{
    char what[CONFIG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (errlen > 0)
        snprintf(err, errlen, "%s: %s%s: %s", src->where, src->cli ? "--" : "", key, what);
    return -1;
}

/* Apply one setting from src. Returns 0 or -1 with err filled in. */
/* Add an address to a list key (listen, bootstrap): the source's first one replaces the
 * list where the source says so (the command line over the file). */
static int config_add_addr(struct config_source *src, const char *key, const char *value,
                           uint16_t port, struct config_listen *list, size_t *n, size_t max,
                           const char *what, bool *given, char *err, size_t errlen)
{
    if (src->replace_lists && !*given)
        *n = 0;
    *given = true;
    if (*n >= max)
        return config_fail(src, key, err, errlen, "at most %zu %s", max, what);
    if (config_parse_addr(value, port, &list[*n].addr, &list[*n].addrlen) != 0)
        return config_fail(src, key, err, errlen, "'%s' is not an address: expected %s", value,
                           CONFIG_LISTEN_FORM);
    (*n)++;
    return 0;
}

/* The index of value among names (any case), or -1. */
static int config_parse_choice(const char *value, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(value, names[i]) == 0)
            return (int)i;
    return -1;
}

static void config_format_size(uint64_t v, char *buf, size_t size);

static int config_apply(struct config *cfg, struct config_source *src, const char *key,
                        const char *value, char *err, size_t errlen)
{
    const struct config_key *k = config_key_find(key);
    char reason[CONFIG_ERR_LEN];
    uint64_t number;
    uint32_t ms;
    bool yes;
    int rc;

    if (k == NULL)
        return config_fail(src, key, err, errlen, "unknown key");
    switch (k->type) {
    case CONFIG_T_LISTEN:
        return config_add_addr(src, key, value, CONFIG_DNS_PORT, cfg->listen, &cfg->nlisten,
                               CONFIG_MAX_LISTEN, "addresses", &src->listen_given, err, errlen);

    case CONFIG_T_SERVER_LISTEN: {
        /* The count follows the array in struct config. */
        struct config_listen *list = (struct config_listen *)(void *)((char *)cfg + k->offset);
        size_t *n = (size_t *)(void *)((char *)cfg + k->offset + k->size);
        bool given = (src->lists_given >> (k - config_keys)) & 1;
        rc = config_add_addr(src, key, value, (uint16_t)k->min, list, n, CONFIG_MAX_SERVER_LISTEN,
                             "addresses", &given, err, errlen);
        src->lists_given |= (uint64_t)given << (k - config_keys);
        return rc;
    }

    case CONFIG_T_ACL: {
        struct acl *acl = (struct acl *)(void *)((char *)cfg + k->offset);
        struct acl_net net;
        if (src->replace_lists && !((src->lists_given >> (k - config_keys)) & 1))
            acl->n = 0;
        src->lists_given |= (uint64_t)1 << (k - config_keys);
        rc = acl_parse(value, &net);
        if (rc == -ERANGE)
            return config_fail(src, key, err, errlen,
                               "prefix must be between 0 and 32 (IPv4) or 128 (IPv6)");
        if (rc != 0)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a network: expected ADDRESS or ADDRESS/PREFIX (as "
                               "192.168.0.0/16 or fd00::/8)",
                               value);
        if (acl_add(acl, &net) != 0)
            return config_fail(src, key, err, errlen, "at most %d networks", ACL_MAX);
        return 0;
    }

    case CONFIG_T_HTTP_PATH: {
        /* RFC 3986: an absolute path without a query; the characters that would need
         * escaping in a request line are refused rather than escaped, and so are control
         * and non-ASCII bytes (§2: a URI is ASCII, and a client sends them escaped, which
         * '%' being refused would never match). */
        bool plain = value[0] == '/' && strlen(value) < k->size &&
                     strcspn(value, "?#\"%<>\\^`{|}") == strlen(value);
        for (const char *c = value; plain && *c != '\0'; c++)
            plain = (unsigned char)*c > ' ' && (unsigned char)*c < 0x7f;
        if (!plain)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a path: expected one starting with '/', without "
                               "'?', '#', '%%', spaces or control characters, under %zu "
                               "characters",
                               value, k->size);
        memcpy((char *)cfg + k->offset, value, strlen(value) + 1);
        return 0;
    }

    case CONFIG_T_STRING:
        if (strlen(value) >= k->size)
            return config_fail(src, key, err, errlen, "longer than %zu characters", k->size - 1);
        if (k->min == 1 && value[0] != '\0' && value[0] != '/')
            return config_fail(src, key, err, errlen, "'%s' is not an absolute path", value);
        memcpy((char *)cfg + k->offset, value, strlen(value) + 1);
        return 0;

    case CONFIG_T_UPSTREAM: {
        struct upstream_spec spec;
        if (src->replace_lists && !src->upstream_given)
            cfg->nupstreams = 0;
        src->upstream_given = true;
        if (cfg->nupstreams >= CONFIG_MAX_UPSTREAMS)
            return config_fail(src, key, err, errlen, "at most %d upstreams", CONFIG_MAX_UPSTREAMS);
        if (upstream_parse_url(value, &spec, reason, sizeof(reason)) != 0)
            return config_fail(src, key, err, errlen, "%s", reason);
        cfg->upstream[cfg->nupstreams++] = spec;
        return 0;
    }

    case CONFIG_T_BOOTSTRAP:
        return config_add_addr(src, key, value, CONFIG_DNS_PORT, cfg->bootstrap, &cfg->nbootstrap,
                               CONFIG_MAX_BOOTSTRAP, "servers", &src->bootstrap_given, err, errlen);

    case CONFIG_T_STRATEGY:
        rc = config_parse_choice(value, config_strategies, ARRAY_SIZE(config_strategies));
        if (rc < 0)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a strategy: expected failover, round-robin or "
                               "fastest",
                               value);
        cfg->strategy = (enum config_strategy)rc;
        return 0;

    case CONFIG_T_DOH_METHOD:
        rc = config_parse_choice(value, config_doh_methods, ARRAY_SIZE(config_doh_methods));
        if (rc < 0)
            return config_fail(src, key, err, errlen, "'%s' is not a method: expected post or get",
                               value);
        cfg->doh_method = (enum config_doh_method)rc;
        return 0;

    case CONFIG_T_PIN:
        /* A pin belongs to one upstream, so it must be clear which: the last one this
         * same source declared (the file's upstreams may be replaced by the command
         * line's, and a pin must never end up on an upstream it was not written for). */
        if (!src->upstream_given || cfg->nupstreams == 0)
            return config_fail(src, key, err, errlen, "must follow the upstream it pins");
        rc = upstream_add_pin(&cfg->upstream[cfg->nupstreams - 1], value);
        if (rc == -ENOSPC)
            return config_fail(src, key, err, errlen, "at most %d pins per upstream",
                               UPSTREAM_MAX_PINS);
        if (rc != 0)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a SHA-256 pin: expected 44 characters of base64 "
                               "ending in '='",
                               value);
        return 0;

    case CONFIG_T_PATH:
        if (strlen(value) >= k->size)
            return config_fail(src, key, err, errlen, "path longer than %zu characters",
                               k->size - 1);
        /* Checked now, so that a typo stops `dnsward -t` rather than the first upstream
         * connection. */
        if (value[0] != '\0' && access(value, R_OK) != 0)
            return config_fail(src, key, err, errlen, "cannot read '%s': %s", value,
                               strerror(errno));
        memcpy((char *)cfg + k->offset, value, strlen(value) + 1);
        return 0;

    case CONFIG_T_LOG_LEVEL:
        for (size_t i = 0; i < ARRAY_SIZE(config_log_levels); i++) {
            if (strcasecmp(value, config_log_levels[i].name) == 0) {
                cfg->log_level = config_log_levels[i].level;
                return 0;
            }
        }
        return config_fail(src, key, err, errlen,
                           "'%s' is not a level: expected error, warning, notice, info or "
                           "debug",
                           value);

    case CONFIG_T_DURATION:
        rc = config_parse_duration(value, &ms);
        if (rc == -ERANGE)
            return config_fail(src, key, err, errlen, "must be between 1ms and 1h");
        if (rc != 0)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a duration: expected a number with ms, s, m or h "
                               "(seconds if none)",
                               value);
        config_store_number(cfg, k, ms);
        return 0;

    case CONFIG_T_NUMBER:
        rc = config_parse_u64(value, NULL, &number);
        if (rc == -EINVAL)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a number: expected one between %lu and %lu", value,
                               k->min, k->max);
        if (rc != 0 || number < k->min || number > k->max)
            return config_fail(src, key, err, errlen, "must be between %lu and %lu", k->min,
                               k->max);
        config_store_number(cfg, k, number);
        return 0;

    case CONFIG_T_BOOL_PAD:
        if (config_parse_bool(value, &yes) != 0)
            return config_fail(src, key, err, errlen, "'%s' is not yes or no", value);
        cfg->pad_block = yes ? DNS_PAD_QUERY : 0;
        return 0;

    case CONFIG_T_BOOL:
        if (config_parse_bool(value, &yes) != 0)
            return config_fail(src, key, err, errlen, "'%s' is not yes or no", value);
        config_store_number(cfg, k, yes);
        return 0;

    case CONFIG_T_SIZE:
        if (config_parse_size(value, &number) != 0)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a size: expected a number of bytes with an optional "
                               "k, M or G",
                               value);
        /* Checked before it is stored: a field narrower than 64 bits would otherwise keep
         * only the low bits of a huge value, and "4194305k" would be 1024. */
        if (k->max != 0 && (number < k->min || number > k->max)) {
            char lo[32], hi[32];
            config_format_size(k->min, lo, sizeof(lo));
            config_format_size(k->max, hi, sizeof(hi));
            return config_fail(src, key, err, errlen, "must be between %s and %s", lo, hi);
        }
        config_store_number(cfg, k, number);
        return 0;

    case CONFIG_T_SECONDS:
        rc = config_parse_seconds(value, &number);
        if (rc == -EINVAL)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a time: expected a number with s, m, h or d "
                               "(seconds if none)",
                               value);
        if (rc != 0 || number < k->min || number > k->max)
            return config_fail(src, key, err, errlen, "must be between %lus and %lus", k->min,
                               k->max);
        config_store_number(cfg, k, number);
        return 0;

    case CONFIG_T_ECS:
        if (value[0] == '\0' || strcasecmp(value, "none") == 0) {
            cfg->ecs_len = 0;
            return 0;
        }
        rc = config_parse_ecs(value, cfg->ecs, &cfg->ecs_len);
        if (rc == -ERANGE)
            return config_fail(src, key, err, errlen,
                               "prefix must be between 0 and 32 (IPv4) or 128 (IPv6)");
        if (rc != 0)
            return config_fail(src, key, err, errlen,
                               "'%s' is not a subnet: expected ADDRESS/PREFIX (as "
                               "192.0.2.0/24) or none",
                               value);
        return 0;
    }
    return config_fail(src, key, err, errlen, "unknown key");
}

int config_set(struct config *cfg, const char *key, const char *value, const char *where, char *err,
               size_t errlen)
{
    struct config_source src = {
        .where = where,
        .cli = strcmp(where, CONFIG_CMDLINE) == 0,
        .upstream_given = cfg->nupstreams > 0,
    };
    return config_apply(cfg, &src, key, value, err, errlen);
}

/* The INI file. inih is given lines through config_read_line, which counts them, so that
 * the key handler knows its line: inih itself reports only the first failing line, and
 * the text of an error must come from the handler that saw it. */
struct config_loader {
    struct config *cfg;
    struct config_source src;
    FILE *file;
    const char *path;
    int line;     /* the line last read */
    int err_line; /* the line of the first error, 0 if none yet */
    int read_errno;
    char where[4200]; /* "FILE:LINE" */
    char *err;
    size_t errlen;
};

static void config_loader_fail(struct config_loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first error of the file, as "FILE:LINE: what". */
static void config_loader_fail(struct config_loader *ld, const char *fmt, ...)
{
    char what[CONFIG_ERR_LEN];
    va_list ap;
    if (ld->err_line != 0)
        return;
    ld->err_line = ld->line;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path, ld->line, what);
}

/* Keys stand at the top of the file or under [dnsward]; inih keeps any spaces inside the
 * brackets, so they are trimmed here. Records an error for any other section. */
static bool config_loader_section(struct config_loader *ld, const char *name, size_t n)
{
    while (n > 0 && isspace((unsigned char)name[0])) {
        name++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)name[n - 1]))
        n--;
    if (n == strlen(CONFIG_SECTION) && strncmp(name, CONFIG_SECTION, n) == 0)
        return true;
    config_loader_fail(ld,
                       "[%.*s]: unknown section: keys go at the top of the file or under "
                       "[" CONFIG_SECTION "]",
                       (int)n, name);
    return false;
}

/* inih's fgets-like reader. Beyond counting lines it does two things inih cannot:
 * it refuses a line longer than inih's buffer (whose rest inih would parse as a line of
 * its own, and a cut path would be silently wrong), and it names the line of an unknown
 * section header, which inih never passes to a handler. Leading white space is removed,
 * so an indented line is an ordinary line and never a continuation of the one before. */
static char *config_read_line(char *str, int num, void *stream)
{
    struct config_loader *ld = stream;
    if (fgets(str, num, ld->file) == NULL) {
        if (ferror(ld->file))
            ld->read_errno = errno;
        return NULL;
    }
    ld->line++;

    size_t len = strlen(str);
    if (len > 0 && str[len - 1] != '\n') {
        int c;
        bool cut = false;
        while ((c = getc(ld->file)) != EOF && c != '\n')
            if (!isspace(c))
                cut = true;
        if (cut) {
            config_loader_fail(ld, "line longer than %d characters", num - 3);
            str[0] = '\0';
            return str;
        }
    }

    size_t skip = strspn(str, " \t");
    memmove(str, str + skip, strlen(str + skip) + 1);

    const char *p = str;
    if (ld->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    const char *end = *p == '[' ? strchr(p, ']') : NULL;
    if (end != NULL)
        config_loader_section(ld, p + 1, (size_t)(end - p - 1));
    return str;
}

static int config_on_key(void *user, const char *section, const char *name, const char *value)
{
    struct config_loader *ld = user;

    /* After the first error the rest of the file is only read through, so that the line
     * reported is the first bad one. */
    if (ld->err_line != 0)
        return 1;
    if (section[0] != '\0' && !config_loader_section(ld, section, strlen(section)))
        return 0;
    if (name[0] == '\0') {
        config_loader_fail(ld, "missing key before '='");
        return 0;
    }
    snprintf(ld->where, sizeof(ld->where), "%s:%d", ld->path, ld->line);
    ld->src.where = ld->where;
    if (config_apply(ld->cfg, &ld->src, name, value, ld->err, ld->errlen) != 0) {
        ld->err_line = ld->line;
        return 0;
    }
    return 1;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    struct config_loader ld = {
        .cfg = cfg,
        .path = path,
        .err = err,
        .errlen = errlen,
    };
    int rc = -1;

    ld.file = fopen(path, "r");
    if (ld.file == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int ret = ini_parse_stream(config_read_line, &ld, config_on_key, &ld);
    if (ld.read_errno != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ld.read_errno));
        goto out;
    }
    if (ret == -2) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    /* inih returns the first line it found wrong: one of ours, or a line it cannot parse
     * (no '=', or a '[' without ']'), which the handler never saw. */
    if (ret > 0 && (ld.err_line == 0 || ret < ld.err_line)) {
        snprintf(err, errlen, "%s:%d: expected 'key = value', a comment or [" CONFIG_SECTION "]",
                 path, ret);
        goto out;
    }
    if (ld.err_line != 0)
        goto out;
    rc = 0;
out:
    fclose(ld.file);
    return rc;
}

/* getopt values of the flags that are not keys; a key's flag is its short letter if it
 * has one, else CONFIG_OPT_KEY + its index in config_keys. */
enum {
    CONFIG_OPT_VERSION = 256,
    CONFIG_OPT_KEY = 257,
};

static const struct option config_fixed_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"check", no_argument, NULL, 't'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, CONFIG_OPT_VERSION},
};

static const char config_shortopts[] = "+:c:l:u:tvh";

static int config_key_opt(size_t i)
{
    return config_keys[i].short_flag ? config_keys[i].short_flag : CONFIG_OPT_KEY + (int)i;
}

static const struct config_key *config_key_by_opt(int opt)
{
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        if (config_key_opt(i) == opt)
            return &config_keys[i];
    return NULL;
}

/* The long name of option val, for messages. */
static const char *config_opt_name(const struct option *opts, int val)
{
    for (; opts->name != NULL; opts++)
        if (opts->val == val)
            return opts->name;
    return "?";
}

/* getopt has stopped at a bad option (opterr is 0, so it printed nothing): say which. */
static int config_bad_option(const struct option *opts, int c, int argc, char **argv, char *err,
                             size_t errlen)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (c == ':') {
        snprintf(err, errlen, CONFIG_CMDLINE ": --%s: missing value",
                 config_opt_name(opts, optopt));
    } else if (optopt == 0) {
        /* An unknown or ambiguous long option; getopt has stepped past it. */
        int len = (int)strcspn(arg, "=");
        unsigned matches = 0;
        for (const struct option *o = opts; o->name != NULL && len > 2; o++)
            if (strncmp(o->name, arg + 2, (size_t)len - 2) == 0)
                matches++;
        snprintf(err, errlen, CONFIG_CMDLINE ": %s option '%.*s'",
                 matches > 1 ? "ambiguous" : "unknown", len, arg);
    } else if (strcmp(config_opt_name(opts, optopt), "?") != 0 && strncmp(arg, "--", 2) == 0) {
        snprintf(err, errlen, CONFIG_CMDLINE ": --%s: takes no value",
                 config_opt_name(opts, optopt));
    } else if (isprint(optopt)) {
        snprintf(err, errlen, CONFIG_CMDLINE ": unknown option '-%c'", optopt);
    } else {
        snprintf(err, errlen, CONFIG_CMDLINE ": unknown option");
    }
    return -1;
}

int config_parse_args(struct config *cfg, int argc, char **argv, bool *check_only, char *err,
                      size_t errlen)
{
    struct option opts[ARRAY_SIZE(config_fixed_opts) + ARRAY_SIZE(config_keys) + 1];
    struct config_source src = {.where = CONFIG_CMDLINE, .cli = true, .replace_lists = true};
    const char *path = NULL;
    bool help = false, version = false;
    size_t n = 0;
    int c;

    for (size_t i = 0; i < ARRAY_SIZE(config_fixed_opts); i++)
        opts[n++] = config_fixed_opts[i];
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        opts[n++] =
            (struct option){config_keys[i].name, required_argument, NULL, config_key_opt(i)};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    *check_only = false;

    /* First pass: find the file, which is read before any flag is applied wherever it
     * stands, and refuse a bad command line before anything is read. optind = 0 makes
     * glibc start afresh, so this may run more than once in a process (the tests do). */
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, config_shortopts, opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (path != NULL) {
                snprintf(err, errlen, CONFIG_CMDLINE ": --config: given more than once");
                return -1;
            }
            path = optarg;
            break;
        case 'h':
            help = true;
            break;
        case CONFIG_OPT_VERSION:
            version = true;
            break;
        case '?':
        case ':':
            return config_bad_option(opts, c, argc, argv, err, errlen);
        default:
            break;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, CONFIG_CMDLINE ": unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (help) {
        config_usage(stdout);
        return 1;
    }
    if (version) {
        printf("dnsward %s\n", DNSWARD_VERSION);
        return 1;
    }
    if (path != NULL && config_load_file(cfg, path, err, errlen) != 0)
        return -1;

    /* Second pass: the flags, in order. */
    optind = 0;
    while ((c = getopt_long(argc, argv, config_shortopts, opts, NULL)) != -1) {
        const struct config_key *k;
        switch (c) {
        case 't':
            *check_only = true;
            break;
        case 'v':
            if (cfg->log_level < LOG_DEBUG)
                cfg->log_level++;
            break;
        default:
            k = config_key_by_opt(c);
            if (k != NULL && config_apply(cfg, &src, k->name, optarg, err, errlen) != 0)
                return -1;
            break;
        }
    }
    return 0;
}

void config_format_addr(const struct sockaddr *addr, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(sin->sin_port));
    } else {
        snprintf(out, cap, "?");
    }
}

static bool config_listen_equal(const struct config_listen *a, const struct config_listen *b)
{
    if (a->addr.ss_family != b->addr.ss_family)
        return false;
    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->addr;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->addr;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_in *x = (const struct sockaddr_in *)&a->addr;
    const struct sockaddr_in *y = (const struct sockaddr_in *)&b->addr;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

int config_finish(struct config *cfg, char *err, size_t errlen)
{
    char text[64];

    /* The defaults are constants of this file: failing to parse one is a bug. */
    if (cfg->nlisten == 0) {
        for (size_t i = 0; i < ARRAY_SIZE(config_default_listen); i++) {
            struct config_listen *l = &cfg->listen[cfg->nlisten++];
            if (config_parse_addr(config_default_listen[i], CONFIG_DNS_PORT, &l->addr,
                                  &l->addrlen) != 0)
                abort();
        }
    }
    if (cfg->nupstreams == 0) {
        for (size_t i = 0; i < ARRAY_SIZE(config_default_upstreams); i++)
            if (upstream_parse_url(config_default_upstreams[i], &cfg->upstream[cfg->nupstreams++],
                                   NULL, 0) != 0)
                abort();
    }

    cfg->allow_default = cfg->allow.n == 0;
    if (cfg->allow.n == 0) {
        for (size_t i = 0; i < ARRAY_SIZE(config_default_allow); i++)
            if (acl_parse(config_default_allow[i], &cfg->allow.net[cfg->allow.n++]) != 0)
                abort();
    }
    if ((cfg->ndoh_listen > 0 || cfg->ndot_listen > 0) &&
        (cfg->cert_file[0] == '\0' || cfg->key_file[0] == '\0')) {
        snprintf(err, errlen,
                 "%s: needs cert and key (the server's certificate chain and "
                 "private key, PEM)",
                 cfg->ndoh_listen > 0 ? "doh-listen" : "dot-listen");
        return -1;
    }
    /* Root can leave a chroot: one without a user to switch to protects nothing. */
    if (cfg->chroot_dir[0] != '\0' && cfg->user[0] == '\0') {
        snprintf(err, errlen, "chroot: needs user (root can leave a chroot)");
        return -1;
    }
    if (cfg->attempt_timeout_ms > cfg->timeout_ms) {
        snprintf(err, errlen, "attempt-timeout: must not be longer than timeout (%ums > %ums)",
                 (unsigned)cfg->attempt_timeout_ms, (unsigned)cfg->timeout_ms);
        return -1;
    }
    /* The lower bound gives way to a shorter upper bound, so that a short attempt-timeout
     * alone (as configurations before attempt-timeout-min had) keeps working. */
    if (cfg->attempt_timeout_min_ms > cfg->attempt_timeout_ms)
        cfg->attempt_timeout_min_ms = cfg->attempt_timeout_ms;
    /* A host name sent to the system's resolver would leave in the clear, and to an
     * upstream cannot be (it is the upstream's own name): only a bootstrap server may
     * resolve it. Without one, refuse to start rather than leak. */
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        if (cfg->upstream[i].addrlen == 0 && cfg->nbootstrap == 0) {
            snprintf(err, errlen,
                     "upstream %s: the host name '%s' must be resolved, and no bootstrap "
                     "server is configured: add `bootstrap = ADDR` (a plain DNS server used "
                     "only for upstream names) or give the address, as in "
                     "tls://1.1.1.1#cloudflare-dns.com",
                     cfg->upstream[i].url, cfg->upstream[i].host);
            return -1;
        }
    }
    if (cfg->min_ttl > cfg->max_ttl) {
        snprintf(err, errlen, "min-ttl: must not be longer than max-ttl (%us > %us)",
                 (unsigned)cfg->min_ttl, (unsigned)cfg->max_ttl);
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        for (size_t j = 0; j < i; j++) {
            if (config_listen_equal(&cfg->listen[i], &cfg->listen[j])) {
                config_format_addr((const struct sockaddr *)&cfg->listen[i].addr, text,
                                   sizeof(text));
                snprintf(err, errlen, "listen: %s is given twice", text);
                return -1;
            }
        }
    }
    return 0;
}

/* The usage text: every flag with its value's form, what it sets and its default. */

static void config_format_duration(uint32_t ms, char *buf, size_t size)
{
    if (ms % (3600 * 1000) == 0)
        snprintf(buf, size, "%uh", (unsigned)(ms / (3600 * 1000)));
    else if (ms % (60 * 1000) == 0)
        snprintf(buf, size, "%um", (unsigned)(ms / (60 * 1000)));
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%us", (unsigned)(ms / 1000));
    else
        snprintf(buf, size, "%ums", (unsigned)ms);
}

static void config_format_seconds(uint64_t s, char *buf, size_t size)
{
    if (s > 0 && s % 86400 == 0)
        snprintf(buf, size, "%llud", (unsigned long long)(s / 86400));
    else if (s > 0 && s % 3600 == 0)
        snprintf(buf, size, "%lluh", (unsigned long long)(s / 3600));
    else if (s > 0 && s % 60 == 0)
        snprintf(buf, size, "%llum", (unsigned long long)(s / 60));
    else
        snprintf(buf, size, "%llus", (unsigned long long)s);
}

static void config_format_size(uint64_t v, char *buf, size_t size)
{
    static const char units[] = "kMG";
    int u = -1;
    while (u < 2 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, size, "%llu", (unsigned long long)v);
    else
        snprintf(buf, size, "%llu%c", (unsigned long long)v, units[u]);
}

static void config_format_default(const struct config *cfg, const struct config_key *k, char *buf,
                                  size_t size)
{
    const char *const *list = NULL;
    size_t nlist = 0;

    switch (k->type) {
    case CONFIG_T_LISTEN:
        list = config_default_listen;
        nlist = ARRAY_SIZE(config_default_listen);
        break;
    case CONFIG_T_UPSTREAM:
        list = config_default_upstreams;
        nlist = ARRAY_SIZE(config_default_upstreams);
        break;
    case CONFIG_T_ACL:
        if (k->offset == offsetof(struct config, allow)) {
            list = config_default_allow;
            nlist = ARRAY_SIZE(config_default_allow);
            break;
        }
        snprintf(buf, size, "none");
        return;
    case CONFIG_T_PIN:
    case CONFIG_T_BOOTSTRAP:
    case CONFIG_T_SERVER_LISTEN:
        snprintf(buf, size, "none");
        return;
    case CONFIG_T_HTTP_PATH:
        snprintf(buf, size, "%s", (const char *)cfg + k->offset);
        return;
    case CONFIG_T_STRING:
        snprintf(buf, size, "%s",
                 *((const char *)cfg + k->offset) ? (const char *)cfg + k->offset : "none");
        return;
    case CONFIG_T_STRATEGY:
        snprintf(buf, size, "%s", config_strategies[cfg->strategy]);
        return;
    case CONFIG_T_DOH_METHOD:
        snprintf(buf, size, "%s", config_doh_methods[cfg->doh_method]);
        return;
    case CONFIG_T_PATH:
        snprintf(buf, size, "%s",
                 k->offset == offsetof(struct config, ca_file) ? "the system's trust store"
                                                               : "none");
        return;
    case CONFIG_T_LOG_LEVEL:
        snprintf(buf, size, "?");
        for (size_t i = 0; i < ARRAY_SIZE(config_log_levels); i++)
            if (config_log_levels[i].level == cfg->log_level)
                snprintf(buf, size, "%s", config_log_levels[i].name);
        return;
    case CONFIG_T_DURATION:
        config_format_duration((uint32_t)config_load_number(cfg, k), buf, size);
        return;
    case CONFIG_T_NUMBER:
        snprintf(buf, size, "%llu", (unsigned long long)config_load_number(cfg, k));
        return;
    case CONFIG_T_BOOL_PAD:
        snprintf(buf, size, "%s", cfg->pad_block ? "yes" : "no");
        return;
    case CONFIG_T_ECS:
        snprintf(buf, size, "none");
        return;
    case CONFIG_T_BOOL:
        snprintf(buf, size, "%s", config_load_number(cfg, k) ? "yes" : "no");
        return;
    case CONFIG_T_SIZE:
        config_format_size(config_load_number(cfg, k), buf, size);
        return;
    case CONFIG_T_SECONDS:
        config_format_seconds(config_load_number(cfg, k), buf, size);
        return;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nlist && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i == 0 ? "" : ", ", list[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Print text from column indent, wrapped at column 80; the first line starts at column
 * *col, which is left at the end. */
static void config_print_wrapped(FILE *f, const char *text, int indent, int *col)
{
    while (*text != '\0') {
        int word = (int)strcspn(text, " ");
        if (*col > indent && *col + 1 + word > 80) {
            fprintf(f, "\n%*s", indent, "");
            *col = indent;
        } else if (*col > indent) {
            fputc(' ', f);
            (*col)++;
        }
        fprintf(f, "%.*s", word, text);
        *col += word;
        text += word;
        text += strspn(text, " ");
    }
}

static void config_print_option(FILE *f, char short_flag, const char *name, const char *arg,
                                const char *help, const char *deflt)
{
    enum { HELP_COLUMN = 34 };
    char head[128];
    char text[512];
    int col;

    if (short_flag)
        col = snprintf(head, sizeof(head), "  -%c, --%s%s%s", short_flag, name, arg ? " " : "",
                       arg ? arg : "");
    else
        col = snprintf(head, sizeof(head), "      --%s%s%s", name, arg ? " " : "", arg ? arg : "");
    fputs(head, f);
    if (col + 2 > HELP_COLUMN) {
        fprintf(f, "\n%*s", HELP_COLUMN, "");
    } else {
        fprintf(f, "%*s", HELP_COLUMN - col, "");
    }
    col = HELP_COLUMN;
    if (deflt != NULL)
        snprintf(text, sizeof(text), "%s (default: %s)", help, deflt);
    else
        snprintf(text, sizeof(text), "%s", help);
    config_print_wrapped(f, text, HELP_COLUMN, &col);
    fputc('\n', f);
}

void config_usage(FILE *f)
{
    struct config defaults;
    char deflt[256];

    config_init(&defaults);
    fprintf(f, "Usage: dnsward [OPTION]...\n"
               "Answer plain DNS on UDP and TCP, and forward every query to upstream\n"
               "resolvers over DNS-over-TLS (RFC 7858) or DNS-over-HTTPS (RFC 8484),\n"
               "verifying their certificates.\n"
               "\n");
    config_print_option(f, 'c', "config", "FILE",
                        "read settings from the INI file FILE first, wherever this flag stands",
                        NULL);
    config_print_option(f, 't', "check", NULL, "check the configuration, then exit", NULL);
    config_print_option(f, 'v', "verbose", NULL, "log one level more; repeatable", NULL);
    config_print_option(f, 'h', "help", NULL, "show this help, then exit", NULL);
    config_print_option(f, 0, "version", NULL, "show the version, then exit", NULL);
    fprintf(f, "\nSettings (each is also a key of the file: \"timeout = 5s\" is --timeout 5s):\n");
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
        const struct config_key *k = &config_keys[i];
        char help[256];
        if (k->type == CONFIG_T_NUMBER) {
            snprintf(help, sizeof(help), "%s, %lu-%lu", k->help, k->min, k->max);
        } else if (k->type == CONFIG_T_SIZE && k->max != 0) {
            char lo[32], hi[32];
            config_format_size(k->min, lo, sizeof(lo));
            config_format_size(k->max, hi, sizeof(hi));
            snprintf(help, sizeof(help), "%s, %s-%s", k->help, lo, hi);
        } else {
            snprintf(help, sizeof(help), "%s", k->help);
        }
        config_format_default(&defaults, k, deflt, sizeof(deflt));
        config_print_option(f, k->short_flag, k->name, k->arg, help, deflt);
    }
    fprintf(f, "\n"
               "DURATION is a number with ms, s, m or h (seconds if none), at most 1h.\n"
               "SECONDS is a number with s, m, h or d (seconds if none).\n"
               "BYTES is a number with k, M or G (powers of 1024).\n"
               "listen, upstream, bootstrap, allow, trusted-proxy, doh-listen, dot-listen,\n"
               "doh-plain-listen and metrics-listen given on the command line replace those of\n"
               "the file.\n"
               "An upstream's NAME (after '#') is sent as SNI and checked in its certificate;\n"
               "without it, the certificate must carry the upstream's IP address.\n");
}
