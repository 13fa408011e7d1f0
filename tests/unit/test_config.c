/* Unit tests for the configuration: defaults, every key from a file and from a flag, the
 * rules for list keys and pins, every error with its exact text and line, the value
 * parsers, and the example file conf/dnsward.conf. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "dnsward/acl.h"
#include "dnsward/config.h"

#define PIN_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define PIN_B "C0drpPTsT3Vy6fhOcAGRDyRbtWkLn/AyPw3I7gsCXfI="

/* A temporary directory holding dnsward.conf, so that messages name a predictable file. */
static char tmp_dir[64];
static char conf_path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/dnsward-test-config-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL)
        return -1;
    snprintf(conf_path, sizeof(conf_path), "%s/dnsward.conf", tmp_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    return rmdir(tmp_dir);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Run config_parse_args over the NULL-terminated arguments that follow err (argv[0] is
 * added), on a fresh configuration. */
static int parse_args(struct config *cfg, bool *check, char *err, size_t errlen, ...)
{
    enum { MAX_ARGS = 80 };
    char *argv[MAX_ARGS];
    static char storage[MAX_ARGS][512];
    int argc = 0;
    va_list ap;

    snprintf(storage[argc], sizeof(storage[argc]), "dnsward");
    argv[argc] = storage[argc];
    argc++;
    va_start(ap, errlen);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL; argc++) {
        assert_true(argc < MAX_ARGS - 1);
        snprintf(storage[argc], sizeof(storage[argc]), "%s", a);
        argv[argc] = storage[argc];
    }
    va_end(ap);
    argv[argc] = NULL;
    config_init(cfg);
    err[0] = '\0';
    return config_parse_args(cfg, argc, argv, check, err, errlen);
}

static int load(struct config *cfg, const char *text, char *err, size_t errlen)
{
    write_conf(text);
    config_init(cfg);
    err[0] = '\0';
    return config_load_file(cfg, conf_path, err, errlen);
}

/* The file's error for text is "<conf_path>:<suffix>". */
static void expect_file_error(const char *text, const char *suffix)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char expect[CONFIG_ERR_LEN];
    assert_int_equal(load(&cfg, text, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s:%s", conf_path, suffix);
    assert_string_equal(err, expect);
}

static void expect_flag_error(const char *flag, const char *value, const char *message)
{
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), flag, value, NULL), -1);
    assert_string_equal(err, message);
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
    }
}

static void assert_listen(const struct config *cfg, size_t i, const char *text)
{
    char buf[64];
    assert_true(i < cfg->nlisten);
    addr_text(&cfg->listen[i].addr, buf, sizeof(buf));
    assert_string_equal(buf, text);
    assert_int_equal(cfg->listen[i].addrlen, cfg->listen[i].addr.ss_family == AF_INET6
                                                 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in));
}

static void assert_bootstrap(const struct config *cfg, size_t i, const char *text)
{
    char buf[64];
    assert_true(i < cfg->nbootstrap);
    addr_text(&cfg->bootstrap[i].addr, buf, sizeof(buf));
    assert_string_equal(buf, text);
    assert_int_equal(cfg->bootstrap[i].addrlen, cfg->bootstrap[i].addr.ss_family == AF_INET6
                                                    ? sizeof(struct sockaddr_in6)
                                                    : sizeof(struct sockaddr_in));
}

static void assert_defaults(const struct config *cfg)
{
    assert_int_equal(cfg->log_level, LOG_NOTICE);
    assert_string_equal(cfg->ca_file, "");
    assert_int_equal(cfg->timeout_ms, 3000);
    assert_int_equal(cfg->attempt_timeout_ms, 1500);
    assert_int_equal(cfg->attempt_timeout_min_ms, 400);
    assert_int_equal(cfg->max_attempts, 3);
    assert_int_equal(cfg->udp_max_size, 1232);
    assert_int_equal(cfg->tcp_max_connections, 256);
    assert_int_equal(cfg->tcp_max_inflight, 128);
    assert_int_equal(cfg->tcp_idle_timeout_ms, 10000);
    assert_int_equal(cfg->upstream_idle_timeout_ms, 30000);
    assert_int_equal(cfg->upstream_max_connections, 4);
    assert_int_equal(cfg->upstream_max_inflight, 512);
    assert_int_equal(cfg->upstream_connect_rate, 10);
    assert_int_equal(cfg->strategy, CONFIG_STRATEGY_FAILOVER);
    assert_int_equal(cfg->doh_method, CONFIG_DOH_POST);
    assert_int_equal(cfg->nbootstrap, 0);
    assert_int_equal(cfg->pad_block, 128);
    assert_int_equal(cfg->ecs_len, 0);
    assert_int_equal(cfg->max_queries, 10000);
    assert_true(cfg->cache_size == 4u << 20);
    assert_int_equal(cfg->min_ttl, 0);
    assert_int_equal(cfg->max_ttl, 86400);
    assert_int_equal(cfg->max_negative_ttl, 3600);
    assert_true(cfg->serve_stale);
    assert_int_equal(cfg->stale_max_age, 86400);
    assert_int_equal(cfg->stale_client_timeout_ms, 1800);
    assert_true(cfg->prefetch);
    assert_int_equal(cfg->trusted_proxies.n, 0);
    assert_int_equal(cfg->ndoh_listen, 0);
    assert_int_equal(cfg->ndot_listen, 0);
    assert_int_equal(cfg->ndoh_plain_listen, 0);
    assert_string_equal(cfg->cert_file, "");
    assert_string_equal(cfg->key_file, "");
    assert_string_equal(cfg->doh_path, "/dns-query");
    assert_int_equal(cfg->doh_max_streams, 100);
    assert_int_equal(cfg->doh_max_header_size, 16384);
    assert_int_equal(cfg->doh_idle_timeout_ms, 30000);
    assert_int_equal(cfg->doh_header_timeout_ms, 5000);
}

/* Cut the last line off text, which ends in a newline. */
static void drop_last_line(char *text)
{
    size_t n = strlen(text);
    assert_true(n > 0 && text[n - 1] == '\n');
    text[n - 1] = '\0';
    char *nl = strrchr(text, '\n');
    if (nl != NULL)
        nl[1] = '\0';
    else
        text[0] = '\0';
}

/* The networks of an access list, as "A/P,B/Q". */
static const char *acl_text(const struct acl *acl)
{
    static char buf[ACL_MAX * 56];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < acl->n; i++) {
        char net[64];
        acl_format(&acl->net[i], net, sizeof(net));
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "", net);
    }
    return buf;
}

/* The addresses of a server listen list (doh-listen, ...), as "A:P,[B]:Q". */
static const char *listen_text(const struct config_listen *list, size_t n)
{
    static char buf[CONFIG_MAX_SERVER_LISTEN * 64];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char addr[64];
        addr_text(&list[i].addr, addr, sizeof(addr));
        assert_int_equal(list[i].addrlen, list[i].addr.ss_family == AF_INET6
                                              ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in));
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "", addr);
    }
    return buf;
}

static void assert_default_lists(const struct config *cfg)
{
    assert_int_equal(cfg->nlisten, 2);
    assert_listen(cfg, 0, "127.0.0.1:53");
    assert_listen(cfg, 1, "[::1]:53");
    assert_int_equal(cfg->nupstreams, 3);
    assert_string_equal(cfg->upstream[0].url, "tls://1.1.1.1#cloudflare-dns.com");
    assert_string_equal(cfg->upstream[0].tls_name, "cloudflare-dns.com");
    assert_string_equal(cfg->upstream[1].url, "tls://9.9.9.9#dns.quad9.net");
    assert_string_equal(cfg->upstream[1].tls_name, "dns.quad9.net");
    assert_string_equal(cfg->upstream[2].url, "tls://8.8.8.8#dns.google");
    assert_string_equal(cfg->upstream[2].tls_name, "dns.google");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cfg->upstream[i].proto, UPSTREAM_DOT);
        assert_false(cfg->upstream[i].name_is_ip);
        assert_int_equal(cfg->upstream[i].npins, 0);
    }
    assert_string_equal(acl_text(&cfg->allow), "127.0.0.0/8,::1/128");
}

static void test_defaults(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    config_init(&cfg);
    assert_defaults(&cfg);
    assert_int_equal(cfg.nlisten, 0);
    assert_int_equal(cfg.nupstreams, 0);
    assert_int_equal(cfg.allow.n, 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_default_lists(&cfg);
    assert_int_equal(cfg.trusted_proxies.n, 0);
}

/* Every key set to something other than its default, from the file. */
static const char every_key_file[] = "listen = 192.0.2.1\n"
                                     "listen = [2001:db8::1]:5353\n"
                                     "upstream = tls://9.9.9.9:8853#dns.quad9.net\n"
                                     "pin-sha256 = " PIN_A "\n"
                                     "upstream = https://dns.example/q?x=1\n"
                                     "bootstrap = 192.0.2.53\n"
                                     "bootstrap = [2001:db8::53]:5353\n"
                                     "strategy = fastest\n"
                                     "doh-method = get\n"
                                     "ca-file = /dev/null\n"
                                     "log-level = debug\n"
                                     "timeout = 5s\n"
                                     "attempt-timeout = 2s\n"
                                     "attempt-timeout-min = 250ms\n"
                                     "max-attempts = 5\n"
                                     "udp-max-size = 4096\n"
                                     "tcp-max-connections = 10\n"
                                     "tcp-max-inflight = 20\n"
                                     "tcp-idle-timeout = 1m\n"
                                     "upstream-idle-timeout = 1h\n"
                                     "upstream-max-connections = 64\n"
                                     "upstream-max-inflight = 4096\n"
                                     "upstream-connect-rate = 1000\n"
                                     "padding = no\n"
                                     "edns-client-subnet = 192.0.2.0/24\n"
                                     "max-queries = 1000000\n"
                                     "cache-size = 512k\n"
                                     "min-ttl = 1m\n"
                                     "max-ttl = 2h\n"
                                     "max-negative-ttl = 30\n"
                                     "serve-stale = no\n"
                                     "stale-max-age = 2d\n"
                                     "stale-client-timeout = 500ms\n"
                                     "prefetch = off\n";

static void assert_every_key(const struct config *cfg)
{
    static const uint8_t ecs[] = {0, 1, 24, 0, 192, 0, 2};
    assert_int_equal(cfg->nlisten, 2);
    assert_listen(cfg, 0, "192.0.2.1:53");
    assert_listen(cfg, 1, "[2001:db8::1]:5353");
    assert_int_equal(cfg->nupstreams, 2);
    assert_int_equal(cfg->upstream[0].proto, UPSTREAM_DOT);
    assert_string_equal(cfg->upstream[0].tls_name, "dns.quad9.net");
    assert_int_equal(cfg->upstream[0].npins, 1);
    assert_int_equal(cfg->upstream[0].pins[0][31], 31);
    assert_int_equal(cfg->upstream[1].proto, UPSTREAM_DOH);
    assert_string_equal(cfg->upstream[1].url, "https://dns.example/q?x=1");
    assert_string_equal(cfg->upstream[1].host, "dns.example");
    assert_int_equal(cfg->upstream[1].addrlen, 0);
    assert_string_equal(cfg->upstream[1].path, "/q?x=1");
    assert_int_equal(cfg->upstream[1].npins, 0);
    assert_int_equal(cfg->nbootstrap, 2);
    assert_bootstrap(cfg, 0, "192.0.2.53:53");
    assert_bootstrap(cfg, 1, "[2001:db8::53]:5353");
    assert_int_equal(cfg->strategy, CONFIG_STRATEGY_FASTEST);
    assert_int_equal(cfg->doh_method, CONFIG_DOH_GET);
    assert_string_equal(cfg->ca_file, "/dev/null");
    assert_int_equal(cfg->log_level, LOG_DEBUG);
    assert_int_equal(cfg->timeout_ms, 5000);
    assert_int_equal(cfg->attempt_timeout_ms, 2000);
    assert_int_equal(cfg->attempt_timeout_min_ms, 250);
    assert_int_equal(cfg->max_attempts, 5);
    assert_int_equal(cfg->udp_max_size, 4096);
    assert_int_equal(cfg->tcp_max_connections, 10);
    assert_int_equal(cfg->tcp_max_inflight, 20);
    assert_int_equal(cfg->tcp_idle_timeout_ms, 60000);
    assert_int_equal(cfg->upstream_idle_timeout_ms, 3600000);
    assert_int_equal(cfg->upstream_max_connections, 64);
    assert_int_equal(cfg->upstream_max_inflight, 4096);
    assert_int_equal(cfg->upstream_connect_rate, 1000);
    assert_int_equal(cfg->pad_block, 0);
    assert_int_equal(cfg->ecs_len, sizeof(ecs));
    assert_memory_equal(cfg->ecs, ecs, sizeof(ecs));
    assert_int_equal(cfg->max_queries, 1000000);
    assert_int_equal(cfg->cache_size, 512 * 1024);
    assert_int_equal(cfg->min_ttl, 60);
    assert_int_equal(cfg->max_ttl, 7200);
    assert_int_equal(cfg->max_negative_ttl, 30);
    assert_false(cfg->serve_stale);
    assert_int_equal(cfg->stale_max_age, 2 * 86400);
    assert_int_equal(cfg->stale_client_timeout_ms, 500);
    assert_false(cfg->prefetch);
}

static void test_every_key_from_file(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load(&cfg, every_key_file, err, sizeof(err)), 0);
    assert_every_key(&cfg);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_every_key(&cfg);
}

/* The same keys in a [dnsward] section, indented, with comments and CRLF line ends. */
static void test_file_section_and_layout(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load(&cfg,
                          "# comment\r\n"
                          "; another\r\n"
                          "\r\n"
                          "[dnsward]\r\n"
                          "  timeout = 7s ; inline comment\r\n"
                          "\tlisten=127.0.0.1:5300\r\n"
                          "    max-attempts = 2\r\n"
                          "[ dnsward ]\r\n"
                          "udp-max-size: 1400\r\n",
                          err, sizeof(err)),
                     0);
    assert_int_equal(cfg.timeout_ms, 7000);
    assert_int_equal(cfg.nlisten, 1);
    assert_listen(&cfg, 0, "127.0.0.1:5300");
    assert_int_equal(cfg.max_attempts, 2);
    assert_int_equal(cfg.udp_max_size, 1400);
}

static void test_every_key_from_flags(void **state)
{
    (void)state;
    struct config cfg;
    bool check = true;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-l", "192.0.2.1", "--listen",
                   "[2001:db8::1]:5353", "--upstream", "tls://9.9.9.9:8853#dns.quad9.net",
                   "--pin-sha256", PIN_A, "-u", "https://dns.example/q?x=1", "--bootstrap",
                   "192.0.2.53", "--bootstrap=[2001:db8::53]:5353", "--strategy", "fastest",
                   "--doh-method", "get", "--ca-file", "/dev/null", "--log-level", "debug",
                   "--timeout", "5s", "--attempt-timeout", "2s", "--attempt-timeout-min", "250ms",
                   "--max-attempts", "5", "--udp-max-size", "4096", "--tcp-max-connections", "10",
                   "--tcp-max-inflight=20", "--tcp-idle-timeout", "1m", "--upstream-idle-timeout",
                   "1h", "--upstream-max-connections", "64", "--upstream-max-inflight", "4096",
                   "--upstream-connect-rate", "1000", "--padding", "no", "--edns-client-subnet",
                   "192.0.2.0/24", "--max-queries", "1000000", "--cache-size", "512k", "--min-ttl",
                   "1m", "--max-ttl", "2h", "--max-negative-ttl", "30", "--serve-stale", "no",
                   "--stale-max-age", "2d", "--stale-client-timeout", "500ms", "--prefetch", "off",
                   NULL),
        0);
    assert_string_equal(err, "");
    assert_false(check);
    assert_every_key(&cfg);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_every_key(&cfg);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-u", "tls://1.1.1.1", NULL), 0);
    assert_int_equal(cfg.nupstreams, 1);
    assert_string_equal(cfg.upstream[0].tls_name, "1.1.1.1");
    assert_true(cfg.upstream[0].name_is_ip);
}

static void test_cli_replaces_file_lists(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];
    write_conf("listen = 127.0.0.1:5301\n"
               "listen = 127.0.0.1:5302\n"
               "upstream = tls://1.1.1.1\n"
               "upstream = tls://9.9.9.9\n");

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-l",
                                "127.0.0.1:5400", "-u", "tls://8.8.8.8#dns.google", NULL),
                     0);
    assert_int_equal(cfg.nlisten, 1);
    assert_listen(&cfg, 0, "127.0.0.1:5400");
    assert_int_equal(cfg.nupstreams, 1);
    assert_string_equal(cfg.upstream[0].tls_name, "dns.google");

    /* Only the lists the command line gives are replaced. */
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-l", "[::1]:5400", NULL), 0);
    assert_int_equal(cfg.nlisten, 1);
    assert_listen(&cfg, 0, "[::1]:5400");
    assert_int_equal(cfg.nupstreams, 2);
    assert_string_equal(cfg.upstream[0].url, "tls://1.1.1.1");
    assert_string_equal(cfg.upstream[1].url, "tls://9.9.9.9");

    /* Nor do the defaults apply to a list either source gave. */
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.nlisten, 1);
    assert_int_equal(cfg.nupstreams, 2);
}

static void test_lists_accumulate_within_a_source(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    assert_int_equal(load(&cfg,
                          "listen = 127.0.0.1:5301\nlisten = 127.0.0.1:5302\n"
                          "listen = 127.0.0.1:5303\nupstream = tls://1.1.1.1\n"
                          "upstream = tls://9.9.9.9\n",
                          err, sizeof(err)),
                     0);
    assert_int_equal(cfg.nlisten, 3);
    assert_listen(&cfg, 2, "127.0.0.1:5303");
    assert_int_equal(cfg.nupstreams, 2);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-l",
                                "127.0.0.1:5401", "-u", "tls://8.8.8.8", "--listen",
                                "127.0.0.1:5402", "--upstream", "tls://8.8.4.4", NULL),
                     0);
    assert_int_equal(cfg.nlisten, 2);
    assert_listen(&cfg, 0, "127.0.0.1:5401");
    assert_listen(&cfg, 1, "127.0.0.1:5402");
    assert_int_equal(cfg.nupstreams, 2);
    assert_string_equal(cfg.upstream[0].url, "tls://8.8.8.8");
    assert_string_equal(cfg.upstream[1].url, "tls://8.8.4.4");
}

static void test_config_file_read_first(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];
    write_conf("timeout = 2s\nlisten = 127.0.0.1:5301\nmax-attempts = 4\n");

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--timeout", "5s", "-l",
                                "127.0.0.1:5400", "-c", conf_path, NULL),
                     0);
    assert_int_equal(cfg.timeout_ms, 5000);
    assert_int_equal(cfg.nlisten, 1);
    assert_listen(&cfg, 0, "127.0.0.1:5400");
    assert_int_equal(cfg.max_attempts, 4);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--config=", NULL), -1);
    assert_string_equal(err, ": cannot open: No such file or directory");
}

static void test_flags_apply_in_order(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--timeout", "5s", "--timeout",
                                "6s", "--log-level", "error", "-v", NULL),
                     0);
    assert_int_equal(cfg.timeout_ms, 6000);
    assert_int_equal(cfg.log_level, LOG_WARNING);
}

static void test_check_verbose_help_version(void **state)
{
    (void)state;
    struct config cfg;
    bool check = false;
    char err[CONFIG_ERR_LEN];

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-t", NULL), 0);
    assert_true(check);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--check", NULL), 0);
    assert_true(check);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), NULL), 0);
    assert_false(check);
    assert_defaults(&cfg);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-v", NULL), 0);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-vv", NULL), 0);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-vvvvv", "--verbose", NULL), 0);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-tv", NULL), 0);
    assert_true(check);
    assert_int_equal(cfg.log_level, LOG_INFO);

    /* Help and version print to stdout, which is silenced here. */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int null = open("/dev/null", O_WRONLY);
    assert_true(saved >= 0 && null >= 0);
    dup2(null, STDOUT_FILENO);
    int help = parse_args(&cfg, &check, err, sizeof(err), "-h", NULL);
    int help_long = parse_args(&cfg, &check, err, sizeof(err), "--timeout", "1s", "--help", NULL);
    int version = parse_args(&cfg, &check, err, sizeof(err), "--version", NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(null);
    assert_int_equal(help, 1);
    assert_int_equal(help_long, 1);
    assert_int_equal(version, 1);
}

static void test_usage_lists_every_option(void **state)
{
    (void)state;
    static const char *const expect[] = {
        "-c, --config FILE",
        "-t, --check",
        "-v, --verbose",
        "-h, --help",
        "--version",
        "-l, --listen ADDR[:PORT]",
        "-u, --upstream URL",
        "--pin-sha256 BASE64",
        "--ca-file FILE",
        "--log-level LEVEL",
        "(default: notice)",
        "--timeout DURATION",
        "(default: 3s)",
        "--attempt-timeout DURATION",
        "(default: 1500ms)",
        "--max-attempts N",
        "upstream attempts per query, 1-10 (default: 3)",
        "--udp-max-size BYTES",
        "(default: 1232)",
        "--tcp-max-connections N",
        "--tcp-max-inflight N",
        "--tcp-idle-timeout DURATION",
        "--upstream-idle-timeout DURATION",
        "(default: 30s)",
        "--upstream-max-connections N",
        "--upstream-max-inflight N",
        "--padding yes|no",
        "(default: yes)",
        "--edns-client-subnet CIDR|none",
        "--max-queries N",
        "(default: 10000)",
        "--bootstrap ADDR[:PORT]",
        "--strategy NAME",
        "(default: failover)",
        "--doh-method post|get",
        "(default: post)",
        "--attempt-timeout-min DURATION",
        "(default: 400ms)",
        "--upstream-connect-rate N",
        "1-1000 (default: 10)",
        "https://HOST[:PORT]/PATH[#NAME]",
        "sdns://STAMP",
        "127.0.0.1:53",
        "[::1]:53",
        "tls://1.1.1.1#cloudflare-dns.com",
        "tls://9.9.9.9#dns.quad9.net",
        "tls://8.8.8.8#dns.google",
        "--allow CIDR",
        "(default: 127.0.0.0/8, ::1/128)",
        "--trusted-proxy CIDR",
        "--doh-listen ADDR[:PORT]",
        "--dot-listen ADDR[:PORT]",
        "--doh-plain-listen ADDR[:PORT]",
        "--cert FILE",
        "--key FILE",
        "--doh-path PATH",
        "(default: /dns-query)",
        "--doh-max-streams N",
        "requests at once per DoH connection, 1-1000",
        "--doh-max-header-size BYTES",
        "1k-1M",
        "(default: 16k)",
        "--doh-idle-timeout DURATION",
        "--doh-header-timeout DURATION",
        "(default: 5s)",
        "--user NAME",
        "--chroot DIR",
        "--syslog yes|no",
        "--query-log FILE",
        "--metrics-listen ADDR[:PORT]",
        "(port 9153 if none)",
        "doh-plain-listen and metrics-listen given on the command line replace",
    };
    char text[32768];
    FILE *f = tmpfile();
    assert_non_null(f);
    config_usage(f);
    rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_true(n > 0 && n < sizeof(text) - 1);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        if (strstr(text, expect[i]) == NULL)
            fail_msg("usage lacks '%s'", expect[i]);
    }
    /* Every line fits a terminal. */
    for (char *line = text, *end; *line != '\0'; line = end + 1) {
        end = strchr(line, '\n');
        assert_non_null(end);
        assert_true(end - line <= 80);
    }
}

static void test_pins(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    /* Each pin goes to the upstream written just before it. */
    assert_int_equal(load(&cfg,
                          "upstream = tls://1.1.1.1\n"
                          "pin-sha256 = " PIN_A "\n"
                          "upstream = tls://9.9.9.9\n"
                          "timeout = 4s\n"
                          "pin-sha256 = " PIN_B "\n"
                          "pin-sha256 = " PIN_A "\n",
                          err, sizeof(err)),
                     0);
    assert_int_equal(cfg.nupstreams, 2);
    assert_int_equal(cfg.upstream[0].npins, 1);
    assert_int_equal(cfg.upstream[0].pins[0][1], 1);
    assert_int_equal(cfg.upstream[1].npins, 2);
    assert_int_equal(cfg.upstream[1].pins[0][0], 0x0b);
    assert_int_equal(cfg.upstream[1].pins[1][1], 1);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-u",
                                "tls://8.8.8.8", "--pin-sha256", PIN_B, NULL),
                     0);
    assert_int_equal(cfg.nupstreams, 1);
    assert_int_equal(cfg.upstream[0].npins, 1);
    assert_int_equal(cfg.upstream[0].pins[0][0], 0x0b);

    /* A pin on the command line never lands on an upstream of the file. */
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "--pin-sha256", PIN_B, NULL),
        -1);
    assert_string_equal(err, "command line: --pin-sha256: must follow the upstream it pins");

    /* config_set alone pins the last upstream there is. */
    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "pin-sha256", PIN_A, "x:1", err, sizeof(err)), -1);
    assert_string_equal(err, "x:1: pin-sha256: must follow the upstream it pins");
    assert_int_equal(config_set(&cfg, "upstream", "tls://1.1.1.1", "x:2", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "pin-sha256", PIN_A, "x:3", err, sizeof(err)), 0);
    assert_int_equal(cfg.upstream[0].npins, 1);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_file_error("timeout = 3s\n\nfrobnicate = 1\n", "3: frobnicate: unknown key");
    expect_file_error("# one\n# two\n# three\n# four\n# five\n# six\nudp-max-size = 9000\n",
                      "7: udp-max-size: must be between 512 and 4096");
    expect_file_error("max-attempts = many\n",
                      "1: max-attempts: 'many' is not a number: expected one between 1 and 10");
    expect_file_error("max-attempts = 0\n", "1: max-attempts: must be between 1 and 10");
    expect_file_error("max-attempts = -1\n",
                      "1: max-attempts: '-1' is not a number: expected one between 1 and 10");
    expect_file_error("max-queries = 99999999999999999999999\n",
                      "1: max-queries: must be between 1 and 1000000");
    expect_file_error("tcp-max-connections =\n",
                      "1: tcp-max-connections: '' is not a number: expected one between 1 and "
                      "65535");
    expect_file_error("upstream-max-connections = 65\n",
                      "1: upstream-max-connections: must be between 1 and 64");
    expect_file_error("upstream-max-inflight = 4097\n",
                      "1: upstream-max-inflight: must be between 1 and 4096");
    expect_file_error("tcp-max-inflight = 65536\n",
                      "1: tcp-max-inflight: must be between 1 and 65535");
    expect_file_error("\nlisten = localhost\n",
                      "2: listen: 'localhost' is not an address: expected ADDR[:PORT], "
                      "[V6ADDR]:PORT or V6ADDR");
    expect_file_error("listen = 127.0.0.1:0\n",
                      "1: listen: '127.0.0.1:0' is not an address: expected ADDR[:PORT], "
                      "[V6ADDR]:PORT or V6ADDR");
    expect_file_error("upstream = udp://1.1.1.1\n",
                      "1: upstream: scheme 'udp' is not supported: expected tls://, https:// or "
                      "sdns://");
    expect_file_error("upstream = tls://dns..example\n",
                      "1: upstream: 'dns..example' is not a valid host name (letters, digits, "
                      "hyphens and dots; at most 253 characters)");
    expect_file_error("upstream = https://1.1.1.1/dns query\n",
                      "1: upstream: the path may not hold spaces or control characters; "
                      "percent-encode them");
    expect_file_error("timeout = 3s\npin-sha256 = " PIN_A "\nupstream = tls://1.1.1.1\n",
                      "2: pin-sha256: must follow the upstream it pins");
    expect_file_error("upstream = tls://1.1.1.1\npin-sha256 = sha256//abc\n",
                      "2: pin-sha256: 'sha256//abc' is not a SHA-256 pin: expected 44 "
                      "characters of base64 ending in '='");
    expect_file_error("upstream = tls://1.1.1.1\npin-sha256 = " PIN_A "\npin-sha256 = " PIN_A
                      "\npin-sha256 = " PIN_A "\npin-sha256 = " PIN_A "\npin-sha256 = " PIN_A "\n",
                      "6: pin-sha256: at most 4 pins per upstream");
    expect_file_error("log-level = loud\n",
                      "1: log-level: 'loud' is not a level: expected error, warning, notice, "
                      "info or debug");
    expect_file_error("padding = maybe\n", "1: padding: 'maybe' is not yes or no");
    expect_file_error("timeout = soon\n",
                      "1: timeout: 'soon' is not a duration: expected a number with ms, s, m or "
                      "h (seconds if none)");
    expect_file_error("tcp-idle-timeout = 2h\n", "1: tcp-idle-timeout: must be between 1ms and 1h");
    expect_file_error("edns-client-subnet = 192.0.2.0\n",
                      "1: edns-client-subnet: '192.0.2.0' is not a subnet: expected "
                      "ADDRESS/PREFIX (as 192.0.2.0/24) or none");
    expect_file_error("edns-client-subnet = 192.0.2.0/33\n",
                      "1: edns-client-subnet: prefix must be between 0 and 32 (IPv4) or 128 "
                      "(IPv6)");
    expect_file_error("ca-file = /nonexistent/ca.pem\n",
                      "1: ca-file: cannot read '/nonexistent/ca.pem': No such file or directory");
    expect_file_error("timeout = 1s\n[server]\nlisten = 127.0.0.1\n",
                      "2: [server]: unknown section: keys go at the top of the file or under "
                      "[dnsward]");
    expect_file_error("[dnsward]\ntimeout = 1s\n[ server ]\n",
                      "3: [server]: unknown section: keys go at the top of the file or under "
                      "[dnsward]");
    expect_file_error("timeout = 1s\njust some words\n",
                      "2: expected 'key = value', a comment or [dnsward]");
    expect_file_error("[dnsward\ntimeout = 1s\n",
                      "1: expected 'key = value', a comment or [dnsward]");
    expect_file_error("= 5\n", "1: missing key before '='");
}

/* The first bad line is the one reported, whatever kind of error follows. */
static void test_file_first_error_wins(void **state)
{
    (void)state;
    expect_file_error("timeout = 1s\nno equals sign\nfrobnicate = 1\n",
                      "2: expected 'key = value', a comment or [dnsward]");
    expect_file_error("timeout = 1s\nfrobnicate = 1\nno equals sign\n",
                      "2: frobnicate: unknown key");
    expect_file_error("max-attempts = 11\nmax-attempts = 12\n",
                      "1: max-attempts: must be between 1 and 10");
}

/* A line longer than inih's buffer would be cut, and its rest read as a line. */
static void test_file_long_line(void **state)
{
    (void)state;
    char text[1024];
    int n = snprintf(text, sizeof(text), "timeout = 1s\nca-file = /");
    memset(text + n, 'x', 600);
    snprintf(text + n + 600, sizeof(text) - (size_t)n - 600, "\ntimeout = 2s\n");
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load(&cfg, text, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "dnsward.conf:2: line longer than "));
}

static void test_missing_and_unreadable_file(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];
    config_init(&cfg);
    assert_int_equal(config_load_file(&cfg, "/nonexistent/dnsward.conf", err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/dnsward.conf: cannot open: No such file or directory");
    assert_int_equal(config_load_file(&cfg, tmp_dir, err, sizeof(err)), -1);
    char expect[256];
    snprintf(expect, sizeof(expect), "%s: cannot read: Is a directory", tmp_dir);
    assert_string_equal(err, expect);

    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-t", "-c", "/nonexistent/dnsward.conf", NULL),
        -1);
    assert_string_equal(err, "/nonexistent/dnsward.conf: cannot open: No such file or directory");
}

static void test_flag_errors(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    expect_flag_error("--udp-max-size", "100",
                      "command line: --udp-max-size: must be between 512 and 4096");
    expect_flag_error("-l", "nowhere",
                      "command line: --listen: 'nowhere' is not an address: expected "
                      "ADDR[:PORT], [V6ADDR]:PORT or V6ADDR");
    expect_flag_error("-u", "udp://1.1.1.1",
                      "command line: --upstream: scheme 'udp' is not supported: expected "
                      "tls://, https:// or sdns://");
    expect_flag_error("--pin-sha256", PIN_A,
                      "command line: --pin-sha256: must follow the upstream it pins");
    expect_flag_error("--timeout", "0", "command line: --timeout: must be between 1ms and 1h");
    expect_flag_error("--frobnicate", "1", "command line: unknown option '--frobnicate'");
    expect_flag_error("--frobnicate=1", NULL, "command line: unknown option '--frobnicate'");
    expect_flag_error("-x", NULL, "command line: unknown option '-x'");
    expect_flag_error("--ver", NULL, "command line: ambiguous option '--ver'");
    expect_flag_error("--check=yes", NULL, "command line: --check: takes no value");
    expect_flag_error("--timeout", NULL, "command line: --timeout: missing value");
    expect_flag_error("-l", NULL, "command line: --listen: missing value");
    expect_flag_error("-c", NULL, "command line: --config: missing value");
    expect_flag_error("-t", "extra", "command line: unexpected argument 'extra'");

    /* A bad flag is refused before the file is read or anything applied. */
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-c", "/nonexistent", "--bogus", NULL), -1);
    assert_string_equal(err, "command line: unknown option '--bogus'");
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-c", conf_path, NULL), -1);
    assert_string_equal(err, "command line: --config: given more than once");
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t ms;
    } good[] = {
        {"1500ms", 1500},   {"3s", 3000},     {"3", 3000}, {"2m", 120000}, {"1h", 3600000},
        {"3600s", 3600000}, {"60m", 3600000}, {"1ms", 1},  {"007s", 7000}, {"3600000ms", 3600000},
    };
    static const char *const out_of_range[] = {"0",   "0ms", "0h",        "3601s",
                                               "61m", "2h",  "3600001ms", "99999999999999999999h"};
    static const char *const malformed[] = {"",   "s",    "1.5s", "3 s",  "-1s", "+1s",
                                            "3S", "3sec", "1d",   "0x10", "3mss"};
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char expect[CONFIG_ERR_LEN];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_set(&cfg, "timeout", good[i].text, "f:1", err, sizeof(err)), 0);
        assert_int_equal(cfg.timeout_ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
        assert_int_equal(config_set(&cfg, "timeout", out_of_range[i], "f:1", err, sizeof(err)), -1);
        assert_string_equal(err, "f:1: timeout: must be between 1ms and 1h");
    }
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        assert_int_equal(config_set(&cfg, "timeout", malformed[i], "f:1", err, sizeof(err)), -1);
        snprintf(expect, sizeof(expect),
                 "f:1: timeout: '%s' is not a duration: expected a number with ms, s, m or h "
                 "(seconds if none)",
                 malformed[i]);
        assert_string_equal(err, expect);
    }
    assert_int_equal(cfg.timeout_ms, 3600000);
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t value;
    } good[] = {
        {"0", 0},         {"4096", 4096},       {"1k", 1024},
        {"4K", 4096},     {"2M", 2u << 20},     {"3m", 3u << 20},
        {"1G", 1u << 30}, {"16g", 16ull << 30}, {"17179869183G", 17179869183ull << 30},
    };
    static const char *const bad[] = {"",   "k",    "1kk", "1T",    "1 k",
                                      "-1", "1.5M", "1KB", "0x100", "17179869184G"};
    uint64_t v;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = 12345;
        assert_int_equal(config_parse_size(good[i].text, &v), 0);
        assert_true(v == good[i].value);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 12345;
        assert_int_equal(config_parse_size(bad[i], &v), -EINVAL);
        assert_true(v == 12345);
    }
}

/* Cache lifetimes: seconds with s, m, h or d, within each key's range; sizes and
 * switches as the other keys take them. */
static void test_cache_keys(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t s;
    } good[] = {{"0", 0}, {"90", 90}, {"90s", 90}, {"2m", 120}, {"1h", 3600}, {"1d", 86400}};
    static const char *const malformed[] = {"", "d", "1.5h", "1 d", "-1", "1w", "1ms", "1D"};
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char expect[CONFIG_ERR_LEN];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_set(&cfg, "min-ttl", good[i].text, "f:1", err, sizeof(err)), 0);
        assert_int_equal(cfg.min_ttl, good[i].s);
    }
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        assert_int_equal(config_set(&cfg, "min-ttl", malformed[i], "f:1", err, sizeof(err)), -1);
        snprintf(expect, sizeof(expect),
                 "f:1: min-ttl: '%s' is not a time: expected a number with s, m, h or d "
                 "(seconds if none)",
                 malformed[i]);
        assert_string_equal(err, expect);
    }
    assert_int_equal(config_set(&cfg, "min-ttl", "2d", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: min-ttl: must be between 0s and 86400s");
    assert_int_equal(config_set(&cfg, "max-ttl", "0", "f:2", err, sizeof(err)), -1);
    assert_string_equal(err, "f:2: max-ttl: must be between 1s and 604800s");
    assert_int_equal(config_set(&cfg, "max-ttl", "7d", "f:2", err, sizeof(err)), 0);
    assert_int_equal(cfg.max_ttl, 7 * 86400);

    assert_int_equal(config_set(&cfg, "cache-size", "0", "f:3", err, sizeof(err)), 0);
    assert_true(cfg.cache_size == 0);
    assert_int_equal(config_set(&cfg, "cache-size", "1G", "f:3", err, sizeof(err)), 0);
    assert_true(cfg.cache_size == 1u << 30);
    assert_int_equal(config_set(&cfg, "cache-size", "4MB", "f:3", err, sizeof(err)), -1);
    assert_string_equal(err, "f:3: cache-size: '4MB' is not a size: expected a number of bytes "
                             "with an optional k, M or G");

    assert_int_equal(config_set(&cfg, "serve-stale", "off", "f:4", err, sizeof(err)), 0);
    assert_false(cfg.serve_stale);
    assert_int_equal(config_set(&cfg, "serve-stale", "YES", "f:4", err, sizeof(err)), 0);
    assert_true(cfg.serve_stale);
    assert_int_equal(config_set(&cfg, "prefetch", "maybe", "f:5", err, sizeof(err)), -1);
    assert_string_equal(err, "f:5: prefetch: 'maybe' is not yes or no");
    assert_true(cfg.prefetch);
}

static void test_parse_addr(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expect;
    } good[] = {
        {"127.0.0.1", "127.0.0.1:53"},
        {"127.0.0.1:5353", "127.0.0.1:5353"},
        {"0.0.0.0:1", "0.0.0.0:1"},
        {"[::1]:5353", "[::1]:5353"},
        {"[::1]", "[::1]:53"},
        {"::1", "[::1]:53"},
        {"::", "[::]:53"},
        {"2001:db8::53", "[2001:db8::53]:53"},
        {"[::]:65535", "[::]:65535"},
        {"::1:53", "[::0.1.0.83]:53"},
    };
    static const char *const bad[] = {
        "",
        "localhost",
        ":53",
        "127.0.0.1:",
        "127.0.0.1:0",
        "1.2.3.4:65536",
        "[::1",
        "[::1]:",
        "[::1]53",
        "[127.0.0.1]:53",
        "[]:53",
        "1.2.3",
        "127.0.0.1:53x",
        "fe80::1%nosuchif0",
        "1.2.3.4:5:6x",
    };
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_parse_addr(good[i].text, 53, &ss, &len), 0);
        addr_text(&ss, text, sizeof(text));
        assert_string_equal(text, good[i].expect);
        assert_int_equal(len, ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                       : sizeof(struct sockaddr_in));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_parse_addr(bad[i], 53, &ss, &len) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    }

    /* A link-local address names its interface. */
    assert_int_equal(config_parse_addr("[fe80::1%lo]:5353", 53, &ss, &len), 0);
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_scope_id, if_nametoindex("lo"));
    assert_int_equal(config_parse_addr("fe80::1%7", 53, &ss, &len), 0);
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_scope_id, 7);
}

static void test_ecs_encoding(void **state)
{
    (void)state;
    static const uint8_t v4_24[] = {0x00, 0x01, 24, 0, 192, 0, 2};
    static const uint8_t v6_56[] = {0x00, 0x02, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0};
    static const uint8_t v4_25[] = {0x00, 0x01, 25, 0, 198, 51, 100, 0x80};
    static const uint8_t v4_0[] = {0x00, 0x01, 0, 0};
    static const uint8_t v4_32[] = {0x00, 0x01, 32, 0, 203, 0, 113, 7};
    static const uint8_t v6_128[] = {0x00, 0x02, 128, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0,
                                     0,    0,    0,   0, 0,    0,    0,    0,    0, 1};
    static const uint8_t v6_33[] = {0x00, 0x02, 33, 0, 0x20, 0x01, 0x0d, 0xb8, 0x80};
    static const struct {
        const char *text;
        const uint8_t *bytes;
        size_t len;
    } cases[] = {
        {"192.0.2.0/24", v4_24, sizeof(v4_24)},       {"192.0.2.99/24", v4_24, sizeof(v4_24)},
        {"2001:db8::/56", v6_56, sizeof(v6_56)},      {"2001:db8:0:ff::1/56", v6_56, sizeof(v6_56)},
        {"198.51.100.255/25", v4_25, sizeof(v4_25)},  {"10.1.2.3/0", v4_0, sizeof(v4_0)},
        {"203.0.113.7/32", v4_32, sizeof(v4_32)},     {"2001:db8::1/128", v6_128, sizeof(v6_128)},
        {"2001:db8:ffff::/33", v6_33, sizeof(v6_33)},
    };
    struct config cfg;
    char err[CONFIG_ERR_LEN];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            config_set(&cfg, "edns-client-subnet", cases[i].text, "f:1", err, sizeof(err)), 0);
        assert_int_equal(cfg.ecs_len, cases[i].len);
        assert_memory_equal(cfg.ecs, cases[i].bytes, cases[i].len);
    }
    assert_int_equal(config_set(&cfg, "edns-client-subnet", "none", "f:1", err, sizeof(err)), 0);
    assert_int_equal(cfg.ecs_len, 0);
    assert_int_equal(
        config_set(&cfg, "edns-client-subnet", "192.0.2.0/24", "f:1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "edns-client-subnet", "", "f:1", err, sizeof(err)), 0);
    assert_int_equal(cfg.ecs_len, 0);

    assert_int_equal(
        config_set(&cfg, "edns-client-subnet", "2001:db8::/129", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: edns-client-subnet: prefix must be between 0 and 32 (IPv4) or "
                             "128 (IPv6)");
    static const char *const bad[] = {"2001:db8::",     "192.0.2.0/",   "192.0.2.0/x",   "/24",
                                      "example.com/24", "192.0.2.0/-1", "192.0.2.0/24/1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_set(&cfg, "edns-client-subnet", bad[i], "f:1", err, sizeof(err)),
                         -1);
    assert_int_equal(cfg.ecs_len, 0);
}

static void test_log_levels_and_padding(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
                  {"info", LOG_INFO}, {"debug", LOG_DEBUG},     {"DEBUG", LOG_DEBUG}};
    static const char *const yes[] = {"yes", "true", "on", "1", "YES"};
    static const char *const no[] = {"no", "false", "off", "0", "Off"};
    struct config cfg;
    char err[CONFIG_ERR_LEN];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        assert_int_equal(config_set(&cfg, "log-level", levels[i].name, "f:1", err, sizeof(err)), 0);
        assert_int_equal(cfg.log_level, levels[i].level);
    }
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        assert_int_equal(config_set(&cfg, "padding", no[i], "f:1", err, sizeof(err)), 0);
        assert_int_equal(cfg.pad_block, 0);
        assert_int_equal(config_set(&cfg, "padding", yes[i], "f:1", err, sizeof(err)), 0);
        assert_int_equal(cfg.pad_block, 128);
    }
}

static void test_ca_file_and_limits(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char value[32];

    config_init(&cfg);
    write_conf("# a CA bundle stand-in\n");
    assert_int_equal(config_set(&cfg, "ca-file", conf_path, "f:1", err, sizeof(err)), 0);
    assert_string_equal(cfg.ca_file, conf_path);
    assert_int_equal(config_set(&cfg, "ca-file", "", "f:1", err, sizeof(err)), 0);
    assert_string_equal(cfg.ca_file, "");

    for (int i = 0; i < CONFIG_MAX_LISTEN; i++) {
        snprintf(value, sizeof(value), "127.0.0.1:%d", 5300 + i);
        assert_int_equal(config_set(&cfg, "listen", value, "f:1", err, sizeof(err)), 0);
    }
    assert_int_equal(config_set(&cfg, "listen", "127.0.0.2", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: listen: at most 16 addresses");
    for (int i = 0; i < CONFIG_MAX_UPSTREAMS; i++) {
        snprintf(value, sizeof(value), "tls://192.0.2.%d", i + 1);
        assert_int_equal(config_set(&cfg, "upstream", value, "f:1", err, sizeof(err)), 0);
    }
    assert_int_equal(
        config_set(&cfg, "upstream", "tls://1.1.1.1", "command line", err, sizeof(err)), -1);
    assert_string_equal(err, "command line: --upstream: at most 16 upstreams");
    assert_int_equal(config_set(&cfg, "frobnicate", "1", "command line", err, sizeof(err)), -1);
    assert_string_equal(err, "command line: --frobnicate: unknown key");
}

static void test_finish_checks(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--timeout", "1s",
                                "--attempt-timeout", "1001ms", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "attempt-timeout: must not be longer than timeout (1001ms > 1000ms)");

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--timeout", "1s",
                                "--attempt-timeout", "1s", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-l", "127.0.0.1", "-l",
                                "[::1]:5353", "-l", "127.0.0.1:53", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "listen: 127.0.0.1:53 is given twice");

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-l", "[::1]:5353", "-l", "::1",
                                "-l", "[0:0::1]:5353", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "listen: [::1]:5353 is given twice");

    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "--min-ttl", "10m", "--max-ttl", "5m", NULL), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "min-ttl: must not be longer than max-ttl (600s > 300s)");
}

static void test_strategy_and_doh_method(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum config_strategy strategy;
    } strategies[] = {
        {"failover", CONFIG_STRATEGY_FAILOVER},       {"round-robin", CONFIG_STRATEGY_ROUND_ROBIN},
        {"fastest", CONFIG_STRATEGY_FASTEST},         {"FASTEST", CONFIG_STRATEGY_FASTEST},
        {"Round-Robin", CONFIG_STRATEGY_ROUND_ROBIN}, {"Failover", CONFIG_STRATEGY_FAILOVER},
    };
    static const char *const bad_strategies[] = {"",           "random", "round_robin",
                                                 "roundrobin", "fast",   "fastest "};
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];
    char expect[CONFIG_ERR_LEN];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
        assert_int_equal(config_set(&cfg, "strategy", strategies[i].text, "f:1", err, sizeof(err)),
                         0);
        assert_int_equal(cfg.strategy, strategies[i].strategy);
    }
    for (size_t i = 0; i < sizeof(bad_strategies) / sizeof(bad_strategies[0]); i++) {
        assert_int_equal(config_set(&cfg, "strategy", bad_strategies[i], "f:2", err, sizeof(err)),
                         -1);
        snprintf(expect, sizeof(expect),
                 "f:2: strategy: '%s' is not a strategy: expected failover, round-robin or "
                 "fastest",
                 bad_strategies[i]);
        assert_string_equal(err, expect);
    }
    assert_int_equal(cfg.strategy, CONFIG_STRATEGY_FAILOVER); /* the last good one stays */

    assert_int_equal(config_set(&cfg, "doh-method", "get", "f:3", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_method, CONFIG_DOH_GET);
    assert_int_equal(config_set(&cfg, "doh-method", "POST", "f:3", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_method, CONFIG_DOH_POST);
    assert_int_equal(config_set(&cfg, "doh-method", "Get", "f:3", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_method, CONFIG_DOH_GET);
    assert_int_equal(config_set(&cfg, "doh-method", "put", "f:4", err, sizeof(err)), -1);
    assert_string_equal(err, "f:4: doh-method: 'put' is not a method: expected post or get");
    assert_int_equal(config_set(&cfg, "doh-method", "", "f:4", err, sizeof(err)), -1);
    assert_string_equal(err, "f:4: doh-method: '' is not a method: expected post or get");
    assert_int_equal(cfg.doh_method, CONFIG_DOH_GET);

    /* The same from the file and the command line. */
    assert_int_equal(load(&cfg, "strategy = round-robin\ndoh-method = get\n", err, sizeof(err)), 0);
    assert_int_equal(cfg.strategy, CONFIG_STRATEGY_ROUND_ROBIN);
    assert_int_equal(cfg.doh_method, CONFIG_DOH_GET);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "--strategy",
                                "fastest", "--doh-method=post", NULL),
                     0);
    assert_int_equal(cfg.strategy, CONFIG_STRATEGY_FASTEST);
    assert_int_equal(cfg.doh_method, CONFIG_DOH_POST);
    expect_file_error("timeout = 2s\nstrategy = random\n",
                      "2: strategy: 'random' is not a strategy: expected failover, round-robin "
                      "or fastest");
    expect_file_error("doh-method = put\n",
                      "1: doh-method: 'put' is not a method: expected post or get");
    expect_flag_error("--strategy", "lowest-latency",
                      "command line: --strategy: 'lowest-latency' is not a strategy: expected "
                      "failover, round-robin or fastest");
    expect_flag_error("--doh-method", "head",
                      "command line: --doh-method: 'head' is not a method: expected post or get");
    expect_flag_error("--strategy", NULL, "command line: --strategy: missing value");
}

static void test_attempt_timeout_min_and_connect_rate(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "attempt-timeout-min", "1ms", "f:1", err, sizeof(err)), 0);
    assert_int_equal(cfg.attempt_timeout_min_ms, 1);
    assert_int_equal(config_set(&cfg, "attempt-timeout-min", "2s", "f:1", err, sizeof(err)), 0);
    assert_int_equal(cfg.attempt_timeout_min_ms, 2000);
    assert_int_equal(config_set(&cfg, "attempt-timeout-min", "0", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: attempt-timeout-min: must be between 1ms and 1h");
    assert_int_equal(config_set(&cfg, "attempt-timeout-min", "fast", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: attempt-timeout-min: 'fast' is not a duration: expected a "
                             "number with ms, s, m or h (seconds if none)");
    assert_int_equal(cfg.attempt_timeout_min_ms, 2000);

    assert_int_equal(config_set(&cfg, "upstream-connect-rate", "1", "f:2", err, sizeof(err)), 0);
    assert_int_equal(cfg.upstream_connect_rate, 1);
    assert_int_equal(config_set(&cfg, "upstream-connect-rate", "1000", "f:2", err, sizeof(err)), 0);
    assert_int_equal(cfg.upstream_connect_rate, 1000);
    assert_int_equal(config_set(&cfg, "upstream-connect-rate", "0", "f:2", err, sizeof(err)), -1);
    assert_string_equal(err, "f:2: upstream-connect-rate: must be between 1 and 1000");
    assert_int_equal(config_set(&cfg, "upstream-connect-rate", "1001", "f:2", err, sizeof(err)),
                     -1);
    assert_string_equal(err, "f:2: upstream-connect-rate: must be between 1 and 1000");
    assert_int_equal(config_set(&cfg, "upstream-connect-rate", "lots", "f:2", err, sizeof(err)),
                     -1);
    assert_string_equal(err, "f:2: upstream-connect-rate: 'lots' is not a number: expected one "
                             "between 1 and 1000");
    assert_int_equal(cfg.upstream_connect_rate, 1000);

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--attempt-timeout-min", "100ms",
                                "--upstream-connect-rate", "3", NULL),
                     0);
    assert_int_equal(cfg.attempt_timeout_min_ms, 100);
    assert_int_equal(cfg.upstream_connect_rate, 3);
    expect_file_error("attempt-timeout-min = 2h\n",
                      "1: attempt-timeout-min: must be between 1ms and 1h");
    expect_file_error("\nupstream-connect-rate = -5\n",
                      "2: upstream-connect-rate: '-5' is not a number: expected one between 1 "
                      "and 1000");
    expect_flag_error("--upstream-connect-rate", "0",
                      "command line: --upstream-connect-rate: must be between 1 and 1000");
    expect_flag_error("--attempt-timeout-min", "0ms",
                      "command line: --attempt-timeout-min: must be between 1ms and 1h");

    /* attempt-timeout-min gives way to a shorter attempt-timeout, so that a short
     * attempt-timeout alone keeps working. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--attempt-timeout", "300ms", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.attempt_timeout_min_ms, 300);
    assert_int_equal(cfg.attempt_timeout_ms, 300);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--attempt-timeout", "1s",
                                "--attempt-timeout-min", "1001ms", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.attempt_timeout_min_ms, 1000);
    assert_int_equal(load(&cfg, "attempt-timeout-min = 2s\n", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.attempt_timeout_min_ms, 1500);
}

static void test_bootstrap_key(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char value[32];

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "bootstrap", "9.9.9.9", "f:1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "bootstrap", "[2620:fe::fe]:5353", "f:2", err, sizeof(err)),
                     0);
    assert_int_equal(config_set(&cfg, "bootstrap", "2620:fe::9", "f:3", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "bootstrap", "127.0.0.1:5353", "f:4", err, sizeof(err)), 0);
    assert_int_equal(cfg.nbootstrap, 4);
    assert_bootstrap(&cfg, 0, "9.9.9.9:53");
    assert_bootstrap(&cfg, 1, "[2620:fe::fe]:5353");
    assert_bootstrap(&cfg, 2, "[2620:fe::9]:53");
    assert_bootstrap(&cfg, 3, "127.0.0.1:5353");
    assert_int_equal(config_set(&cfg, "bootstrap", "1.1.1.1", "f:5", err, sizeof(err)), -1);
    assert_string_equal(err, "f:5: bootstrap: at most 4 servers");
    assert_int_equal(cfg.nbootstrap, CONFIG_MAX_BOOTSTRAP);

    static const char *const bad[] = {
        "dns.google", "", "1.1.1.1:0", "1.1.1.1:65536", "[::1", "tls://9.9.9.9", "9.9.9.9:53x"};
    config_init(&cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char expect[CONFIG_ERR_LEN];
        assert_int_equal(config_set(&cfg, "bootstrap", bad[i], "f:1", err, sizeof(err)), -1);
        snprintf(expect, sizeof(expect),
                 "f:1: bootstrap: '%s' is not an address: expected ADDR[:PORT], [V6ADDR]:PORT or "
                 "V6ADDR",
                 bad[i]);
        assert_string_equal(err, expect);
    }
    assert_int_equal(cfg.nbootstrap, 0);

    expect_file_error("bootstrap = 9.9.9.9\nbootstrap = resolver.example\n",
                      "2: bootstrap: 'resolver.example' is not an address: expected "
                      "ADDR[:PORT], [V6ADDR]:PORT or V6ADDR");
    char text[512] = "";
    for (int i = 0; i <= CONFIG_MAX_BOOTSTRAP; i++) {
        snprintf(value, sizeof(value), "bootstrap = 192.0.2.%d\n", i + 1);
        strcat(text, value);
    }
    expect_file_error(text, "5: bootstrap: at most 4 servers");
    expect_flag_error("--bootstrap", "localhost",
                      "command line: --bootstrap: 'localhost' is not an address: expected "
                      "ADDR[:PORT], [V6ADDR]:PORT or V6ADDR");
}

/* bootstrap is a list as listen is: it accumulates within one source, and the command
 * line's replaces the file's. */
static void test_bootstrap_list_rules(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    write_conf("bootstrap = 192.0.2.1\n"
               "bootstrap = 192.0.2.2\n"
               "listen = 127.0.0.1:5301\n");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, NULL), 0);
    assert_int_equal(cfg.nbootstrap, 2);
    assert_bootstrap(&cfg, 0, "192.0.2.1:53");
    assert_bootstrap(&cfg, 1, "192.0.2.2:53");

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "--bootstrap",
                                "198.51.100.1", "--bootstrap", "198.51.100.2:5353", NULL),
                     0);
    assert_int_equal(cfg.nbootstrap, 2);
    assert_bootstrap(&cfg, 0, "198.51.100.1:53");
    assert_bootstrap(&cfg, 1, "198.51.100.2:5353");
    assert_int_equal(cfg.nlisten, 1); /* only the lists the command line gives */

    /* The flag may stand before -c: the file is still read first, and replaced. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--bootstrap", "198.51.100.3", "-c",
                                conf_path, NULL),
                     0);
    assert_int_equal(cfg.nbootstrap, 1);
    assert_bootstrap(&cfg, 0, "198.51.100.3:53");

    /* Other lists given on the command line leave the file's bootstrap alone. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-l",
                                "127.0.0.1:5400", "-u", "tls://dns.example", NULL),
                     0);
    assert_int_equal(cfg.nbootstrap, 2);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.nbootstrap, 2);

    /* A full list in the file does not stop the command line from giving its own. */
    write_conf("bootstrap = 192.0.2.1\nbootstrap = 192.0.2.2\n"
               "bootstrap = 192.0.2.3\nbootstrap = 192.0.2.4\n");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "--bootstrap",
                                "198.51.100.1", "--bootstrap", "198.51.100.2", "--bootstrap",
                                "198.51.100.3", "--bootstrap", "198.51.100.4", NULL),
                     0);
    assert_int_equal(cfg.nbootstrap, 4);
    assert_bootstrap(&cfg, 3, "198.51.100.4:53");

    /* No default: without one, nothing is resolved. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), NULL), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.nbootstrap, 0);
}

/* An upstream given by host name must be resolved, and only a bootstrap server may
 * resolve it: without one, dnsward refuses to start. */
static void test_finish_needs_bootstrap(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-u", "https://dns.example/dns-query", NULL), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "upstream https://dns.example/dns-query: the host name 'dns.example' "
                             "must be resolved, and no bootstrap server is configured: add "
                             "`bootstrap = ADDR` (a plain DNS server used only for upstream "
                             "names) or give the address, as in tls://1.1.1.1#cloudflare-dns.com");

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-u",
                                "https://dns.example/dns-query", "--bootstrap", "9.9.9.9", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.nupstreams, 1);
    assert_int_equal(cfg.nbootstrap, 1);

    /* The upstream named is the one with a host name, wherever it stands. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-u", "tls://1.1.1.1", "-u",
                                "https://[2606:4700::1111]/dns-query", "-u",
                                "tls://dns.quad9.net:853#dns.quad9.net", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "upstream tls://dns.quad9.net:853#dns.quad9.net: the host name "
                                "'dns.quad9.net' must be resolved"));
    assert_non_null(strstr(err, "bootstrap"));

    /* A stamp without an address needs one as well. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-u",
                                "sdns://AwAAAAAAAAAAAAALZG5zLmV4YW1wbGU", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "upstream sdns://AwAAAAAAAAAAAAALZG5zLmV4YW1wbGU: the host name "
                                "'dns.example' must be resolved"));
    /* A stamp with one does not. */
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "-u",
                   "sdns://AgcAAAAAAAAABzEuMC4wLjEAEmRucy5jbG91ZGZsYXJlLmNvbQovZG5zLXF1ZXJ5", NULL),
        0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.upstream[0].proto, UPSTREAM_DOH);

    /* From the file, with the bootstrap server in the file and the upstream on the command
     * line. */
    assert_int_equal(load(&cfg, "upstream = tls://dns.example\n", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "upstream tls://dns.example: the host name 'dns.example' must be "
                                "resolved, and no bootstrap server is configured"));
    write_conf("bootstrap = [2620:fe::fe]\n");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "-u",
                                "https://dns.example", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
}

/* allow and trusted-proxy: lists of networks, with listen's rules (they accumulate within
 * a source, and the command line's replaces the file's); allow alone has a default,
 * applied by config_finish when no source gives one. */
static void test_acl_keys(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "allow", "192.168.1.7/24", "f:1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "allow", "fd00::/8", "f:2", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "allow", "10.0.0.1", "f:3", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "trusted-proxy", "::1", "f:4", err, sizeof(err)), 0);
    assert_string_equal(acl_text(&cfg.allow), "192.168.1.0/24,fd00::/8,10.0.0.1/32");
    assert_string_equal(acl_text(&cfg.trusted_proxies), "::1/128");
    /* A list given is kept whole: the default is not added to it. */
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_string_equal(acl_text(&cfg.allow), "192.168.1.0/24,fd00::/8,10.0.0.1/32");
    assert_string_equal(acl_text(&cfg.trusted_proxies), "::1/128");

    /* Accumulated within the file; the command line's list replaces the file's, and only
     * the lists it gives. */
    write_conf("allow = 192.168.0.0/16\n"
               "allow = fd00::/8\n"
               "trusted-proxy = 10.0.0.1\n"
               "trusted-proxy = 10.0.0.2\n");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, NULL), 0);
    assert_string_equal(acl_text(&cfg.allow), "192.168.0.0/16,fd00::/8");
    assert_string_equal(acl_text(&cfg.trusted_proxies), "10.0.0.1/32,10.0.0.2/32");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "--allow",
                                "10.0.0.0/8", "--allow", "0.0.0.0/0", NULL),
                     0);
    assert_string_equal(acl_text(&cfg.allow), "10.0.0.0/8,0.0.0.0/0");
    assert_string_equal(acl_text(&cfg.trusted_proxies), "10.0.0.1/32,10.0.0.2/32");
    /* The flag may stand before -c: the file is still read first, and replaced. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--trusted-proxy=192.0.2.1", "-c",
                                conf_path, NULL),
                     0);
    assert_string_equal(acl_text(&cfg.allow), "192.168.0.0/16,fd00::/8");
    assert_string_equal(acl_text(&cfg.trusted_proxies), "192.0.2.1/32");
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_string_equal(acl_text(&cfg.allow), "192.168.0.0/16,fd00::/8");

    /* The command line alone, over the default. */
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--allow", "127.0.0.2/32", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_string_equal(acl_text(&cfg.allow), "127.0.0.2/32");
    assert_int_equal(cfg.trusted_proxies.n, 0);

    /* Errors, with the file's line and the key. */
    expect_file_error("allow = 10.0.0.0/8\nallow = 192.168.0.0/33\n",
                      "2: allow: prefix must be between 0 and 32 (IPv4) or 128 (IPv6)");
    expect_file_error("trusted-proxy = fd00::/129\n",
                      "1: trusted-proxy: prefix must be between 0 and 32 (IPv4) or 128 (IPv6)");
    expect_file_error("allow = lan\n",
                      "1: allow: 'lan' is not a network: expected ADDRESS or ADDRESS/PREFIX (as "
                      "192.168.0.0/16 or fd00::/8)");
    expect_file_error("\n\nallow = 10.0.0.0/08\n",
                      "3: allow: '10.0.0.0/08' is not a network: expected ADDRESS or "
                      "ADDRESS/PREFIX (as 192.168.0.0/16 or fd00::/8)");
    expect_file_error("allow =\n", "1: allow: '' is not a network: expected ADDRESS or "
                                   "ADDRESS/PREFIX (as 192.168.0.0/16 or fd00::/8)");
    expect_flag_error("--allow", "192.168.0.0/16 ",
                      "command line: --allow: '192.168.0.0/16 ' is not a network: expected "
                      "ADDRESS or ADDRESS/PREFIX (as 192.168.0.0/16 or fd00::/8)");
    expect_flag_error("--trusted-proxy", "proxy.lan",
                      "command line: --trusted-proxy: 'proxy.lan' is not a network: expected "
                      "ADDRESS or ADDRESS/PREFIX (as 192.168.0.0/16 or fd00::/8)");
    expect_flag_error("--allow", "::/200",
                      "command line: --allow: prefix must be between 0 and 32 (IPv4) or 128 "
                      "(IPv6)");

    /* At most ACL_MAX networks in a list. */
    char text[ACL_MAX * 40 + 64] = "";
    char line[64];
    for (int i = 0; i <= ACL_MAX; i++) {
        snprintf(line, sizeof(line), "trusted-proxy = 10.%d.0.0/16\n", i);
        strcat(text, line);
    }
    char expect[64];
    snprintf(expect, sizeof(expect), "%d: trusted-proxy: at most %d networks", ACL_MAX + 1,
             ACL_MAX);
    expect_file_error(text, expect);
    /* ACL_MAX exactly is fine. */
    drop_last_line(text);
    assert_int_equal(load(&cfg, text, err, sizeof(err)), 0);
    assert_int_equal(cfg.trusted_proxies.n, ACL_MAX);
}

/* doh-listen, dot-listen and doh-plain-listen: address lists, each with its own default
 * port, its own limit and listen's rules. */
static void test_server_listen_keys(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "doh-listen", "127.0.0.1", "f:1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "doh-listen", "[::1]:8443", "f:2", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "dot-listen", "192.0.2.1", "f:3", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "dot-listen", "::", "f:4", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "doh-plain-listen", "127.0.0.1", "f:5", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "doh-plain-listen", "[::1]:8080", "f:6", err, sizeof(err)),
                     0);
    assert_string_equal(listen_text(cfg.doh_listen, cfg.ndoh_listen), "127.0.0.1:443,[::1]:8443");
    assert_string_equal(listen_text(cfg.dot_listen, cfg.ndot_listen), "192.0.2.1:853,[::]:853");
    assert_string_equal(listen_text(cfg.doh_plain_listen, cfg.ndoh_plain_listen),
                        "127.0.0.1:80,[::1]:8080");
    /* The plain DNS listeners are another list. */
    assert_int_equal(cfg.nlisten, 0);

    /* The command line replaces the file's list of each kind it gives, and no other. */
    write_conf("doh-listen = 127.0.0.1:8443\n"
               "doh-listen = 127.0.0.2:8443\n"
               "dot-listen = 127.0.0.1:8853\n"
               "doh-plain-listen = 127.0.0.1:8080\n"
               "cert = /dev/null\n"
               "key = /dev/null\n");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, NULL), 0);
    assert_string_equal(listen_text(cfg.doh_listen, cfg.ndoh_listen),
                        "127.0.0.1:8443,127.0.0.2:8443");
    assert_string_equal(listen_text(cfg.dot_listen, cfg.ndot_listen), "127.0.0.1:8853");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-c", conf_path, "--dot-listen",
                                "127.0.0.3", "--dot-listen", "127.0.0.4:9853", NULL),
                     0);
    assert_string_equal(listen_text(cfg.dot_listen, cfg.ndot_listen),
                        "127.0.0.3:853,127.0.0.4:9853");
    assert_string_equal(listen_text(cfg.doh_listen, cfg.ndoh_listen),
                        "127.0.0.1:8443,127.0.0.2:8443");
    assert_string_equal(listen_text(cfg.doh_plain_listen, cfg.ndoh_plain_listen), "127.0.0.1:8080");
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.ndoh_listen, 2);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--doh-listen", "[::1]", "-c",
                                conf_path, "--doh-plain-listen", "127.0.0.9", NULL),
                     0);
    assert_string_equal(listen_text(cfg.doh_listen, cfg.ndoh_listen), "[::1]:443");
    assert_string_equal(listen_text(cfg.doh_plain_listen, cfg.ndoh_plain_listen), "127.0.0.9:80");
    assert_string_equal(listen_text(cfg.dot_listen, cfg.ndot_listen), "127.0.0.1:8853");

    /* At most CONFIG_MAX_SERVER_LISTEN of each kind. */
    static const char *const kinds[] = {"doh-listen", "dot-listen", "doh-plain-listen"};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        char text[1024] = "";
        char line[64];
        for (int i = 0; i <= CONFIG_MAX_SERVER_LISTEN; i++) {
            snprintf(line, sizeof(line), "%s = 127.0.0.%d\n", kinds[k], i + 1);
            strcat(text, line);
        }
        char expect[128];
        snprintf(expect, sizeof(expect), "%d: %s: at most %d addresses",
                 CONFIG_MAX_SERVER_LISTEN + 1, kinds[k], CONFIG_MAX_SERVER_LISTEN);
        expect_file_error(text, expect);
        /* A full list of one kind leaves room in the others. */
        drop_last_line(text);
        strcat(text, "listen = 127.0.0.1:5300\n");
        assert_int_equal(load(&cfg, text, err, sizeof(err)), 0);
    }
    assert_int_equal(cfg.ndoh_plain_listen, CONFIG_MAX_SERVER_LISTEN);

    expect_file_error("doh-listen = doh.lan\n",
                      "1: doh-listen: 'doh.lan' is not an address: expected ADDR[:PORT], "
                      "[V6ADDR]:PORT or V6ADDR");
    expect_file_error("dot-listen = 127.0.0.1:0\n",
                      "1: dot-listen: '127.0.0.1:0' is not an address: expected ADDR[:PORT], "
                      "[V6ADDR]:PORT or V6ADDR");
    expect_flag_error("--doh-plain-listen", "127.0.0.1:65536",
                      "command line: --doh-plain-listen: '127.0.0.1:65536' is not an address: "
                      "expected ADDR[:PORT], [V6ADDR]:PORT or V6ADDR");
}

/* The TLS listeners need a certificate and its key; the cleartext one does not. */
static void test_server_cert_and_key(void **state)
{
    (void)state;
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--doh-listen", "127.0.0.1", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "doh-listen: needs cert and key (the server's certificate chain and "
                             "private key, PEM)");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--dot-listen", "127.0.0.1",
                                "--cert", "/dev/null", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "dot-listen: needs cert and key (the server's certificate chain and "
                             "private key, PEM)");
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--dot-listen", "127.0.0.1",
                                "--key", "/dev/null", NULL),
                     0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "dot-listen: needs cert and key"));

    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--doh-listen", "127.0.0.1",
                                "--dot-listen", "127.0.0.1", "--cert", "/dev/null", "--key",
                                "/dev/null", NULL),
                     0);
    assert_string_equal(cfg.cert_file, "/dev/null");
    assert_string_equal(cfg.key_file, "/dev/null");
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);

    /* Cleartext DoH (behind a reverse proxy) needs neither. */
    assert_int_equal(
        parse_args(&cfg, &check, err, sizeof(err), "--doh-plain-listen", "127.0.0.1", NULL), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    /* Nor do cert and key alone need a listener. */
    assert_int_equal(load(&cfg, "cert = /dev/null\nkey = /dev/null\n", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);

    /* The files are checked when read, so that `dnsward -t` finds a typo. */
    expect_file_error("cert = /nonexistent/cert.pem\n",
                      "1: cert: cannot read '/nonexistent/cert.pem': No such file or directory");
    expect_flag_error("--key", "/nonexistent/key.pem",
                      "command line: --key: cannot read '/nonexistent/key.pem': No such file or "
                      "directory");
    char text[CONFIG_PATH_MAX + 64];
    int n = snprintf(text, sizeof(text), "key = /");
    memset(text + n, 'k', CONFIG_PATH_MAX);
    snprintf(text + n + CONFIG_PATH_MAX, sizeof(text) - (size_t)n - CONFIG_PATH_MAX, "\n");
    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "key", text + 6, "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: key: path longer than 4095 characters");
}

static void test_doh_path(void **state)
{
    (void)state;
    static const char *const good[] = {
        "/", "/dns-query", "/q", "/resolve/v1", "/a-b_c.d~e", "/a:b@c!$&'()*+,;=", "/dns-query/"};
    static const char *const bad[] = {
        "",      "dns-query", "/dns?x=1", "/dns#frag", "/dns query",   "/dns%20query",
        "/a\tb", "/a\rb",     "/a\x01b",  "/a\x7f",    "/caf\xc3\xa9", "/a<b>",
        "/a\"b", "/a\\b",     "/a{b}",    "/a|b",      "/a^b",         "/a`b",
        "?/dns", " /dns",     "/dns ",    "//\n",
    };
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char expect[CONFIG_ERR_LEN];

    config_init(&cfg);
    assert_string_equal(cfg.doh_path, "/dns-query");
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_set(&cfg, "doh-path", good[i], "f:1", err, sizeof(err)), 0);
        assert_string_equal(cfg.doh_path, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_set(&cfg, "doh-path", bad[i], "f:2", err, sizeof(err)) != -1)
            fail_msg("doh-path '%s' was accepted", bad[i]);
        snprintf(expect, sizeof(expect),
                 "f:2: doh-path: '%s' is not a path: expected one starting with '/', without "
                 "'?', '#', '%%', spaces or control characters, under 128 characters",
                 bad[i]);
        assert_string_equal(err, expect);
    }
    assert_string_equal(cfg.doh_path, "/dns-query/");

    /* 127 characters fit, 128 do not. */
    char path[256];
    path[0] = '/';
    memset(path + 1, 'p', 126);
    path[127] = '\0';
    assert_int_equal(config_set(&cfg, "doh-path", path, "f:3", err, sizeof(err)), 0);
    assert_string_equal(cfg.doh_path, path);
    path[127] = 'p';
    path[128] = '\0';
    assert_int_equal(config_set(&cfg, "doh-path", path, "f:3", err, sizeof(err)), -1);
    assert_int_equal(strlen(cfg.doh_path), 127);

    expect_file_error("doh-path = /dns-query\ndoh-path = dns-query\n",
                      "2: doh-path: 'dns-query' is not a path: expected one starting with '/', "
                      "without '?', '#', '%', spaces or control characters, under 128 "
                      "characters");
    expect_flag_error("--doh-path", "/q?dns=",
                      "command line: --doh-path: '/q?dns=' is not a path: expected one starting "
                      "with '/', without '?', '#', '%', spaces or control characters, under 128 "
                      "characters");
}

/* doh-max-streams, doh-max-header-size and the DoH timeouts, each within its range. */
/* The keys of a service: user, chroot, syslog, query-log and metrics-listen. */
static void test_service_keys(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    char name[CONFIG_NAME_MAX + 1];

    config_init(&cfg);
    assert_string_equal(cfg.user, "");
    assert_string_equal(cfg.chroot_dir, "");
    assert_false(cfg.syslog);
    assert_string_equal(cfg.query_log, "");
    assert_int_equal(cfg.nmetrics_listen, 0);

    assert_int_equal(config_set(&cfg, "user", "nobody", "f:1", err, sizeof(err)), 0);
    assert_string_equal(cfg.user, "nobody");
    memset(name, 'u', CONFIG_NAME_MAX);
    name[CONFIG_NAME_MAX] = '\0';
    assert_int_equal(config_set(&cfg, "user", name, "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: user: longer than 63 characters");
    assert_string_equal(cfg.user, "nobody");

    assert_int_equal(config_set(&cfg, "chroot", "var/empty", "f:2", err, sizeof(err)), -1);
    assert_string_equal(err, "f:2: chroot: 'var/empty' is not an absolute path");
    assert_int_equal(config_set(&cfg, "chroot", "/var/empty", "f:2", err, sizeof(err)), 0);
    assert_string_equal(cfg.chroot_dir, "/var/empty");
    assert_int_equal(config_set(&cfg, "query-log", "q.log", "f:3", err, sizeof(err)), -1);
    assert_string_equal(err, "f:3: query-log: 'q.log' is not an absolute path");
    assert_int_equal(config_set(&cfg, "query-log", "/var/log/q.log", "f:3", err, sizeof(err)), 0);
    assert_string_equal(cfg.query_log, "/var/log/q.log");
    /* Empty turns it off again, as the example file writes it. */
    assert_int_equal(config_set(&cfg, "query-log", "", "f:3", err, sizeof(err)), 0);
    assert_string_equal(cfg.query_log, "");
    assert_int_equal(config_set(&cfg, "syslog", "yes", "f:4", err, sizeof(err)), 0);
    assert_true(cfg.syslog);

    assert_int_equal(config_set(&cfg, "metrics-listen", "127.0.0.1", "f:5", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "metrics-listen", "[::1]:9100", "f:6", err, sizeof(err)), 0);
    assert_int_equal(cfg.nmetrics_listen, 2);
    char where[64];
    config_format_addr((const struct sockaddr *)&cfg.metrics_listen[0].addr, where, sizeof(where));
    assert_string_equal(where, "127.0.0.1:9153");
    config_format_addr((const struct sockaddr *)&cfg.metrics_listen[1].addr, where, sizeof(where));
    assert_string_equal(where, "[::1]:9100");

    /* Root can leave a chroot: without a user it is refused. */
    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "chroot", "/var/empty", "f:1", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "chroot: needs user (root can leave a chroot)");
    assert_int_equal(config_set(&cfg, "user", "nobody", "f:2", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);

    assert_string_equal(config_strategy_name(CONFIG_STRATEGY_FAILOVER), "failover");
    assert_string_equal(config_strategy_name(CONFIG_STRATEGY_ROUND_ROBIN), "round-robin");
    assert_string_equal(config_strategy_name(CONFIG_STRATEGY_FASTEST), "fastest");
}

static void test_doh_limits_and_timeouts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t bytes;
    } sizes[] = {{"1k", 1024}, {"1024", 1024}, {"16k", 16384}, {"65535", 65535}, {"1M", 1 << 20}};
    static const char *const sizes_out[] = {"0", "1023", "1025k", "2M", "1G",
                                            /* would be 1024 once cut to 32 bits */
                                            "4194305k", "4294968320"};
    struct config cfg;
    bool check;
    char err[CONFIG_ERR_LEN];

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "doh-max-streams", "1", "f:1", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_max_streams, 1);
    assert_int_equal(config_set(&cfg, "doh-max-streams", "1000", "f:1", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_max_streams, 1000);
    assert_int_equal(config_set(&cfg, "doh-max-streams", "0", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: doh-max-streams: must be between 1 and 1000");
    assert_int_equal(config_set(&cfg, "doh-max-streams", "1001", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: doh-max-streams: must be between 1 and 1000");
    assert_int_equal(config_set(&cfg, "doh-max-streams", "lots", "f:1", err, sizeof(err)), -1);
    assert_string_equal(err, "f:1: doh-max-streams: 'lots' is not a number: expected one between "
                             "1 and 1000");
    assert_int_equal(cfg.doh_max_streams, 1000);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(
            config_set(&cfg, "doh-max-header-size", sizes[i].text, "f:2", err, sizeof(err)), 0);
        assert_int_equal(cfg.doh_max_header_size, sizes[i].bytes);
    }
    for (size_t i = 0; i < sizeof(sizes_out) / sizeof(sizes_out[0]); i++) {
        if (config_set(&cfg, "doh-max-header-size", sizes_out[i], "f:2", err, sizeof(err)) != -1)
            fail_msg("doh-max-header-size '%s' was accepted", sizes_out[i]);
        assert_string_equal(err, "f:2: doh-max-header-size: must be between 1k and 1M");
    }
    assert_int_equal(config_set(&cfg, "doh-max-header-size", "16KB", "f:2", err, sizeof(err)), -1);
    assert_string_equal(err, "f:2: doh-max-header-size: '16KB' is not a size: expected a number "
                             "of bytes with an optional k, M or G");
    assert_int_equal(cfg.doh_max_header_size, 1 << 20);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);

    assert_int_equal(config_set(&cfg, "doh-idle-timeout", "2m", "f:3", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_idle_timeout_ms, 120000);
    assert_int_equal(config_set(&cfg, "doh-header-timeout", "750ms", "f:4", err, sizeof(err)), 0);
    assert_int_equal(cfg.doh_header_timeout_ms, 750);
    assert_int_equal(config_set(&cfg, "doh-idle-timeout", "0", "f:3", err, sizeof(err)), -1);
    assert_string_equal(err, "f:3: doh-idle-timeout: must be between 1ms and 1h");
    assert_int_equal(config_set(&cfg, "doh-header-timeout", "61m", "f:4", err, sizeof(err)), -1);
    assert_string_equal(err, "f:4: doh-header-timeout: must be between 1ms and 1h");
    assert_int_equal(config_set(&cfg, "doh-header-timeout", "soon", "f:4", err, sizeof(err)), -1);
    assert_string_equal(err, "f:4: doh-header-timeout: 'soon' is not a duration: expected a "
                             "number with ms, s, m or h (seconds if none)");
    assert_int_equal(cfg.doh_idle_timeout_ms, 120000);
    assert_int_equal(cfg.doh_header_timeout_ms, 750);

    /* From the file and the command line, with the same messages. */
    assert_int_equal(load(&cfg,
                          "doh-max-streams = 8\ndoh-max-header-size = 4k\n"
                          "doh-idle-timeout = 10s\ndoh-header-timeout = 2s\n",
                          err, sizeof(err)),
                     0);
    assert_int_equal(cfg.doh_max_streams, 8);
    assert_int_equal(cfg.doh_max_header_size, 4096);
    assert_int_equal(cfg.doh_idle_timeout_ms, 10000);
    assert_int_equal(cfg.doh_header_timeout_ms, 2000);
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "--doh-max-streams", "200",
                                "--doh-max-header-size", "32k", "--doh-idle-timeout", "1h",
                                "--doh-header-timeout", "1ms", NULL),
                     0);
    assert_int_equal(cfg.doh_max_streams, 200);
    assert_int_equal(cfg.doh_max_header_size, 32768);
    assert_int_equal(cfg.doh_idle_timeout_ms, 3600000);
    assert_int_equal(cfg.doh_header_timeout_ms, 1);
    expect_file_error("\ndoh-max-header-size = 2M\n",
                      "2: doh-max-header-size: must be between 1k and 1M");
    expect_file_error("doh-max-streams = -1\n",
                      "1: doh-max-streams: '-1' is not a number: expected one between 1 and 1000");
    expect_flag_error("--doh-max-header-size", "512",
                      "command line: --doh-max-header-size: must be between 1k and 1M");
    expect_flag_error("--doh-idle-timeout", "2h",
                      "command line: --doh-idle-timeout: must be between 1ms and 1h");
}

/* conf/dnsward.conf is what `dnsward -t -c conf/dnsward.conf` checks, and its values are
 * the defaults. */
static void test_example_conf(void **state)
{
    (void)state;
    char path[PATH_MAX];
    const char *src = getenv("DNSWARD_SRC");
    struct config cfg;
    bool check = false;
    char err[CONFIG_ERR_LEN];

    if (src != NULL) {
        snprintf(path, sizeof(path), "%s/conf/dnsward.conf", src);
    } else {
        char here[PATH_MAX];
        snprintf(here, sizeof(here), "%s", __FILE__);
        snprintf(path, sizeof(path), "%s/../../conf/dnsward.conf", dirname(here));
    }
    assert_int_equal(parse_args(&cfg, &check, err, sizeof(err), "-t", "-c", path, NULL), 0);
    assert_string_equal(err, "");
    assert_true(check);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_defaults(&cfg);
    assert_default_lists(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key_from_file),
        cmocka_unit_test(test_file_section_and_layout),
        cmocka_unit_test(test_every_key_from_flags),
        cmocka_unit_test(test_cli_replaces_file_lists),
        cmocka_unit_test(test_lists_accumulate_within_a_source),
        cmocka_unit_test(test_config_file_read_first),
        cmocka_unit_test(test_flags_apply_in_order),
        cmocka_unit_test(test_check_verbose_help_version),
        cmocka_unit_test(test_usage_lists_every_option),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_first_error_wins),
        cmocka_unit_test(test_file_long_line),
        cmocka_unit_test(test_missing_and_unreadable_file),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_cache_keys),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_ecs_encoding),
        cmocka_unit_test(test_log_levels_and_padding),
        cmocka_unit_test(test_ca_file_and_limits),
        cmocka_unit_test(test_finish_checks),
        cmocka_unit_test(test_strategy_and_doh_method),
        cmocka_unit_test(test_attempt_timeout_min_and_connect_rate),
        cmocka_unit_test(test_bootstrap_key),
        cmocka_unit_test(test_bootstrap_list_rules),
        cmocka_unit_test(test_finish_needs_bootstrap),
        cmocka_unit_test(test_acl_keys),
        cmocka_unit_test(test_server_listen_keys),
        cmocka_unit_test(test_server_cert_and_key),
        cmocka_unit_test(test_doh_path),
        cmocka_unit_test(test_doh_limits_and_timeouts),
        cmocka_unit_test(test_example_conf),
        cmocka_unit_test(test_service_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
