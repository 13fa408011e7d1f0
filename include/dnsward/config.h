/* config: dnsward's settings, from an INI file (read with inih) and from the command line.
 *
 * Every key of the file is also a long command-line flag with the same name
 * (`cache-size = 4M` in the file is `--cache-size 4M` on the command line), so a router's
 * init script needs no file. List-valued keys (listen, upstream, bootstrap) accumulate within one
 * source; values given on the command line replace those of the file, and the built-in
 * defaults apply only when neither gives any.
 *
 * Errors are reported as one line that names file:line (or "command line"), the key and
 * what is wrong; unknown keys are errors. Nothing here opens a socket or starts TLS:
 * the configuration is checked before anything is bound.
 */
#ifndef DNSWARD_CONFIG_H
#define DNSWARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "dnsward/acl.h"
#include "dnsward/upstream.h"

enum {
    CONFIG_MAX_LISTEN = 16,
    CONFIG_MAX_UPSTREAMS = 16,
    CONFIG_MAX_BOOTSTRAP = 4,
    CONFIG_MAX_SERVER_LISTEN = 8, /* of each kind: doh-listen, dot-listen, doh-plain-listen */
    CONFIG_PATH_MAX = 4096,
    CONFIG_NAME_MAX = 64, /* user names */
    CONFIG_METRICS_PORT = 9153,
    CONFIG_ERR_LEN = 512,
};

struct config_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

enum config_strategy {
    CONFIG_STRATEGY_FAILOVER,    /* the first healthy upstream in configured order */
    CONFIG_STRATEGY_ROUND_ROBIN, /* healthy upstreams in turn */
    CONFIG_STRATEGY_FASTEST,     /* the lowest smoothed RTT, exploring the others a little */
};

enum config_doh_method {
    CONFIG_DOH_POST, /* RFC 8484 §4.1, the body is the query */
    CONFIG_DOH_GET,  /* RFC 8484 §4.1, ?dns= base64url: cacheable by HTTP caches */
};

struct config {
    struct config_listen listen[CONFIG_MAX_LISTEN];
    size_t nlisten;
    struct upstream_spec upstream[CONFIG_MAX_UPSTREAMS];
    size_t nupstreams;
    struct config_listen bootstrap[CONFIG_MAX_BOOTSTRAP]; /* plain DNS, for upstream names only */
    size_t nbootstrap;
    enum config_strategy strategy;
    enum config_doh_method doh_method;
    char ca_file[CONFIG_PATH_MAX]; /* "" = the system's trust store */
    int log_level;                 /* LOG_ERR .. LOG_DEBUG (syslog.h); -v raises it */

    uint32_t timeout_ms;             /* a query's deadline, from arrival to answer or SERVFAIL */
    uint32_t attempt_timeout_ms;     /* one upstream attempt, before the next upstream is tried:
                                      * the upper bound of the RTT-derived timeout, and its
                                      * value before any RTT is known */
    uint32_t attempt_timeout_min_ms; /* the lower bound of the RTT-derived timeout; lowered
                                      * to attempt_timeout_ms if above it */
    unsigned max_attempts;           /* upstream attempts per query */
    uint16_t udp_max_size;           /* largest UDP answer we send (and EDNS size we advertise) */
    unsigned tcp_max_connections;    /* per listener */
    unsigned tcp_max_inflight;       /* queries in flight per TCP connection */
    uint32_t tcp_idle_timeout_ms;
    uint32_t upstream_idle_timeout_ms; /* unless the upstream's EDNS keepalive says less */
    unsigned upstream_max_connections; /* per upstream */
    unsigned upstream_max_inflight;    /* queries in flight per upstream connection */
    unsigned upstream_connect_rate;    /* new connections per second per upstream */
    uint16_t pad_block;                /* RFC 8467 padding of upstream queries; 0: off */
    uint8_t ecs[20];                   /* ECS option data to send upstream (RFC 7871) */
    uint16_t ecs_len;                  /* 0: no ECS (the default) */
    unsigned max_queries;              /* queries in flight in the whole process */

    uint64_t cache_size;              /* bytes; 0: no cache */
    uint32_t min_ttl;                 /* seconds */
    uint32_t max_ttl;                 /* seconds */
    uint32_t max_negative_ttl;        /* seconds */
    bool serve_stale;                 /* RFC 8767 */
    uint32_t stale_max_age;           /* seconds an expired entry is kept for serve-stale */
    uint32_t stale_client_timeout_ms; /* wait before a stale answer is given */
    bool prefetch;

    /* Who may ask, on every frontend (plain DNS, DoT, DoH): a client outside it gets
     * REFUSED (DNS) or 403 (HTTP). Default: loopback only. */
    struct acl allow;
    bool allow_default; /* allow is the built-in loopback-only list */
    /* Peers of the cleartext DoH listener whose X-Forwarded-For is believed (a reverse
     * proxy in front of dnsward). Default: none. */
    struct acl trusted_proxies;

    /* Server mode: DoH (HTTPS, h2 and http/1.1), DoT (RFC 7858), and cleartext DoH (h2c
     * with prior knowledge and HTTP/1.1, behind a reverse proxy). */
    struct config_listen doh_listen[CONFIG_MAX_SERVER_LISTEN];
    size_t ndoh_listen;
    struct config_listen dot_listen[CONFIG_MAX_SERVER_LISTEN];
    size_t ndot_listen;
    struct config_listen doh_plain_listen[CONFIG_MAX_SERVER_LISTEN];
    size_t ndoh_plain_listen;
    char cert_file[CONFIG_PATH_MAX]; /* full chain, PEM; needed by doh-listen and dot-listen */
    char key_file[CONFIG_PATH_MAX];
    char doh_path[128];             /* the path DoH requests must use; "/dns-query" */
    unsigned doh_max_streams;       /* concurrent requests per HTTP/2 connection */
    uint32_t doh_max_header_size;   /* bytes of request header fields (HPACK-decoded) */
    uint32_t doh_idle_timeout_ms;   /* an HTTP connection with no request open */
    uint32_t doh_header_timeout_ms; /* from a connection or a request's first byte to its
                                     * whole header (and TLS handshake) */

    /* Running as a service. */
    struct config_listen metrics_listen[CONFIG_MAX_SERVER_LISTEN]; /* Prometheus /metrics */
    size_t nmetrics_listen;
    char user[CONFIG_NAME_MAX];       /* switch to this user after binding; "" = stay */
    char chroot_dir[CONFIG_PATH_MAX]; /* and chroot here first; "" = none */
    bool syslog;                      /* log to syslog(3) instead of stderr */
    char query_log[CONFIG_PATH_MAX];  /* one line per answer to this file; "" = none */
};

/* Fill *cfg with the built-in defaults, without listeners or upstreams (see
 * config_finish). Never fails. */
void config_init(struct config *cfg);

/* Parse the command line: `-c FILE` is read first, wherever it stands, then every flag is
 * applied in order. Sets *check_only for -t/--check. Prints usage for -h and the version
 * for --version and then returns 1 (the caller exits 0). Returns 0 on success, 1 as just
 * said, -1 on an error, with the error in err (one line, no newline). */
int config_parse_args(struct config *cfg, int argc, char **argv, bool *check_only, char *err,
                      size_t errlen);

/* Read an INI file into *cfg. Returns 0, or -1 with "FILE:LINE: KEY: what is wrong" in err. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Apply one setting, as the file and the command line both do. where names the source for
 * messages ("dnsward.conf:12" or "command line"). Returns 0 or -1 with err filled in. */
int config_set(struct config *cfg, const char *key, const char *value, const char *where, char *err,
               size_t errlen);

/* Apply the defaults for what neither source gave (listeners 127.0.0.1:53 and [::1]:53;
 * the public DoT upstreams) and check the whole: returns 0 or -1 with err filled in. */
int config_finish(struct config *cfg, char *err, size_t errlen);

/* Parse "ADDR[:PORT]", "[V6ADDR]:PORT", "V6ADDR" into a socket address. Returns 0 or
 * -EINVAL. */
int config_parse_addr(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
                      socklen_t *len);

/* Write addr as "ADDR:PORT" or "[V6ADDR]:PORT" (what config_parse_addr reads) into out,
 * truncated to cap. */
void config_format_addr(const struct sockaddr *addr, char *out, size_t cap);

/* Parse a size with an optional k, M or G suffix (powers of 1024). Returns 0 or -EINVAL. */
int config_parse_size(const char *text, uint64_t *out);

/* "failover", "round-robin", "fastest". */
const char *config_strategy_name(enum config_strategy s);

/* Print the usage text to f. */
void config_usage(FILE *f);

#endif
