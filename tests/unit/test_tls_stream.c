/* Unit tests for the TLS stream: a client and a server stream in one event loop on
 * 127.0.0.1, with a test CA and certificates made here with the OpenSSL API. Covered:
 * verification (name, IP, wrong name, self-signed, expired, pins), that nothing of the
 * owner's leaves before verification, data integrity, the write queue's cap, connect
 * errors reported from the loop, clean and broken closes, closing and freeing the owner
 * from inside a callback, session resumption, ALPN, and pausing reads (no on_data while
 * paused; records OpenSSL already holds delivered after resuming, from the loop). Owners are
 * allocated with cmocka's allocator, so a leak fails the test; run under ASan, a use after free
 * does too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dnsward/log.h"
#include "dnsward/tls_stream.h"

enum {
    BIG = 100 * 1024,
    WMAX = 1024 * 1024,
};

static const double WATCHDOG_S = 10.0;

/* --- certificates ------------------------------------------------------------------ */

static struct {
    char dir[64];
    char ca[128];       /* the test CA, the client's trust store */
    char good[128];     /* DNS:upstream.test, IP:127.0.0.1, then the CA: a full chain */
    char expired[128];  /* same names, notAfter in the past */
    char self[128];     /* same names, signed by itself */
    char other[128];    /* DNS:other.test, signed by the CA */
    char leaf_key[128]; /* the key of all the leaves */
    char ca_key[128];
    uint8_t leaf_pin[TLS_PIN_LEN];
    uint8_t ca_pin[TLS_PIN_LEN];
} g;

static long serial = 1;

static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key, issued by issuer (NULL: self-signed), valid from now+from to
 * now+to seconds. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, bool ca, X509 *issuer,
                       EVP_PKEY *issuer_key, long from, long to)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, &v3, NID_subject_key_identifier, "hash");
    if (ca)
        add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    else
        add_ext(x, &v3, NID_ext_key_usage, "serverAuth");
    if (san)
        add_ext(x, &v3, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *a, X509 *b, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (a)
        assert_int_equal(PEM_write_X509(f, a), 1);
    if (b)
        assert_int_equal(PEM_write_X509(f, b), 1);
    if (key)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
}

/* The pin as RFC 7469 defines it: SHA-256 of the DER SubjectPublicKeyInfo. */
static void spki_pin(EVP_PKEY *key, uint8_t out[TLS_PIN_LEN])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    assert_true(len > 0);
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, TLS_PIN_LEN);
    OPENSSL_free(der);
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(g.dir, "/tmp/test_tls_stream.XXXXXX");
    if (mkdtemp(g.dir) == NULL)
        return -1;
    snprintf(g.ca, sizeof(g.ca), "%s/ca.pem", g.dir);
    snprintf(g.good, sizeof(g.good), "%s/good.pem", g.dir);
    snprintf(g.expired, sizeof(g.expired), "%s/expired.pem", g.dir);
    snprintf(g.self, sizeof(g.self), "%s/self.pem", g.dir);
    snprintf(g.other, sizeof(g.other), "%s/other.pem", g.dir);
    snprintf(g.leaf_key, sizeof(g.leaf_key), "%s/leaf.key", g.dir);
    snprintf(g.ca_key, sizeof(g.ca_key), "%s/ca.key", g.dir);

    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ca_key);
    assert_non_null(leaf_key);
    const long day = 86400;
    const char *san = "DNS:upstream.test,IP:127.0.0.1";
    X509 *ca = make_cert(ca_key, "dnsward test CA", NULL, true, NULL, NULL, -day, 30 * day);
    X509 *good = make_cert(leaf_key, "upstream.test", san, false, ca, ca_key, -day, 30 * day);
    X509 *expired = make_cert(leaf_key, "upstream.test", san, false, ca, ca_key, -10 * day, -day);
    X509 *self = make_cert(leaf_key, "upstream.test", san, false, NULL, NULL, -day, 30 * day);
    X509 *other =
        make_cert(leaf_key, "other.test", "DNS:other.test", false, ca, ca_key, -day, 30 * day);

    write_pem(g.ca, ca, NULL, NULL);
    write_pem(g.good, good, ca, NULL);
    write_pem(g.expired, expired, ca, NULL);
    write_pem(g.self, self, NULL, NULL);
    write_pem(g.other, other, ca, NULL);
    write_pem(g.leaf_key, NULL, NULL, leaf_key);
    write_pem(g.ca_key, NULL, NULL, ca_key);
    spki_pin(leaf_key, g.leaf_pin);
    spki_pin(ca_key, g.ca_pin);

    X509_free(ca);
    X509_free(good);
    X509_free(expired);
    X509_free(self);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    const char *files[] = {g.ca, g.good, g.expired, g.self, g.other, g.leaf_key, g.ca_key};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(g.dir);
    return 0;
}

/* --- the test bench: one loop, a listener, a server stream per accepted socket -------- */

struct env;

struct server {
    struct tls_stream ts;
    struct env *env;
    LIST_ENTRY(server) entry;
};

struct client {
    struct tls_stream ts;
    struct env *env;
    bool ready;
    bool closed;
    bool closed_in_connect; /* on_close ran while tls_stream_connect had not returned */
    int err;
    int write_after_close; /* what tls_stream_write said from inside on_close */
    uint8_t *rx;
    size_t rxlen;
    size_t rxcap;
    SSL_SESSION *session;
    bool close_in_data; /* close and free ourselves from the first on_data */
};

struct env {
    struct ev_loop *loop;
    SSL_CTX *cctx;
    SSL_CTX *sctx;
    int lfd;
    struct sockaddr_in addr;
    ev_io accept_io;
    ev_timer watchdog;
    ev_prepare check; /* before the loop blocks: test done(env) */
    ev_timer nap;     /* run_for */
    bool nap_over;
    bool timed_out;
    bool (*done)(struct env *);

    /* the server side; a server stream frees itself when it closes */
    LIST_HEAD(, server) servers;
    struct server *srv; /* the newest */
    bool echo;
    bool server_close_on_data;
    bool server_pause_on_accept; /* tls_stream_pause_read before the handshake */
    bool server_pause_on_data;   /* tls_stream_pause_read from every on_data */
    bool server_pattern;         /* check that the bytes received are pattern(offset) */
    unsigned server_data_calls;
    size_t server_send_on_ready;
    unsigned accepted;
    unsigned server_ready;
    unsigned server_closed;
    int server_err;
    size_t server_rx;
    char server_alpn[32];

    /* the client side */
    struct client *client;
    bool connecting;
    bool client_freed;
    unsigned client_data_calls;
};

static void server_free(struct server *s)
{
    if (s->env->srv == s)
        s->env->srv = NULL;
    LIST_REMOVE(s, entry);
    tls_stream_close(&s->ts);
    test_free(s);
}

static void on_server_ready(struct tls_stream *ts)
{
    struct server *s = (struct server *)ts;
    struct env *env = s->env;
    env->server_ready++;
    size_t len = 0;
    const char *alpn = tls_stream_alpn(ts, &len);
    if (alpn != NULL && len < sizeof(env->server_alpn)) {
        memcpy(env->server_alpn, alpn, len);
        env->server_alpn[len] = '\0';
    }
    if (env->server_send_on_ready > 0) {
        uint8_t *buf = test_malloc(env->server_send_on_ready);
        memset(buf, 'x', env->server_send_on_ready);
        assert_int_equal(tls_stream_write(ts, buf, env->server_send_on_ready), 0);
        test_free(buf);
    }
}

/* The bytes a client sends when the server checks what arrives (server_pattern). */
static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131 + 7);
}

static void on_server_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    struct server *s = (struct server *)ts;
    struct env *env = s->env;
    if (env->server_pattern)
        for (size_t i = 0; i < len; i++)
            assert_int_equal(data[i], pattern(env->server_rx + i));
    env->server_rx += len;
    env->server_data_calls++;
    if (env->server_pause_on_data)
        tls_stream_pause_read(ts, true);
    if (env->server_close_on_data) {
        server_free(s);
        return;
    }
    if (env->echo)
        assert_int_equal(tls_stream_write(ts, data, len), 0);
}

static void on_server_close(struct tls_stream *ts, int err)
{
    struct server *s = (struct server *)ts;
    s->env->server_closed++;
    s->env->server_err = err;
    server_free(s);
}

static const struct tls_stream_cbs server_cbs = {
    .on_ready = on_server_ready,
    .on_data = on_server_data,
    .on_close = on_server_close,
};

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct env *env = (struct env *)((char *)w - offsetof(struct env, accept_io));
    int fd = accept4(env->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct server *s = test_calloc(1, sizeof(*s));
    s->env = env;
    LIST_INSERT_HEAD(&env->servers, s, entry);
    assert_int_equal(tls_stream_accept(&s->ts, loop, env->sctx, fd, &server_cbs, WMAX), 0);
    if (env->server_pause_on_accept)
        tls_stream_pause_read(&s->ts, true);
    env->srv = s;
    env->accepted++;
}

static void on_client_ready(struct tls_stream *ts)
{
    struct client *c = (struct client *)ts;
    c->ready = true;
}

static void client_free(struct client *c)
{
    if (c->env->client == c)
        c->env->client = NULL;
    tls_stream_close(&c->ts);
    SSL_SESSION_free(c->session);
    test_free(c->rx);
    test_free(c);
}

static void on_client_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    struct client *c = (struct client *)ts;
    struct env *env = c->env;
    env->client_data_calls++;
    if (c->close_in_data) {
        /* What the DoT upstream does when an answer ends a connection: close, and free
         * the memory holding the stream, before on_data returns. */
        client_free(c);
        env->client_freed = true;
        return;
    }
    if (c->rxlen + len > c->rxcap) {
        size_t cap = c->rxcap ? c->rxcap : 4096;
        while (cap < c->rxlen + len)
            cap *= 2;
        c->rx = test_realloc(c->rx, cap);
        c->rxcap = cap;
    }
    memcpy(c->rx + c->rxlen, data, len);
    c->rxlen += len;
}

static void on_client_close(struct tls_stream *ts, int err)
{
    struct client *c = (struct client *)ts;
    c->closed = true;
    c->err = err;
    if (c->env->connecting)
        c->closed_in_connect = true;
    /* Finished but not yet closed: nothing more can be queued. */
    c->write_after_close = tls_stream_write(ts, "x", 1);
    assert_false(tls_stream_is_ready(ts));
    /* The owner must still close; doing it here is what the DoT upstream does. */
    tls_stream_close(ts);
}

static void on_client_session(struct tls_stream *ts, SSL_SESSION *session)
{
    struct client *c = (struct client *)ts;
    SSL_SESSION_free(c->session);
    c->session = session;
}

static const struct tls_stream_cbs client_cbs = {
    .on_ready = on_client_ready,
    .on_data = on_client_data,
    .on_close = on_client_close,
    .on_session = on_client_session,
};

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct env *env = (struct env *)((char *)w - offsetof(struct env, watchdog));
    env->timed_out = true;
    ev_break(loop, EVBREAK_ALL);
}

static void on_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct env *env = (struct env *)((char *)w - offsetof(struct env, check));
    if (env->done(env))
        ev_break(loop, EVBREAK_ALL);
}

static void on_nap(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct env *env = (struct env *)((char *)w - offsetof(struct env, nap));
    env->nap_over = true;
}

static bool nap_over(struct env *env)
{
    return env->nap_over;
}

static void run_until(struct env *env, bool (*done)(struct env *));

/* Run the loop for seconds, whatever happens meanwhile. */
static void run_for(struct env *env, double seconds)
{
    env->nap_over = false;
    ev_timer_init(&env->nap, on_nap, seconds, 0);
    ev_timer_start(env->loop, &env->nap);
    run_until(env, nap_over);
    ev_timer_stop(env->loop, &env->nap);
}

/* Run the loop until done(env) holds; a bug that would hang fails on the watchdog. */
static void run_until(struct env *env, bool (*done)(struct env *))
{
    env->done = done;
    env->timed_out = false;
    if (!done(env)) {
        ev_timer_set(&env->watchdog, WATCHDOG_S, 0);
        ev_timer_start(env->loop, &env->watchdog);
        ev_prepare_start(env->loop, &env->check);
        ev_run(env->loop, 0);
        ev_prepare_stop(env->loop, &env->check);
        ev_timer_stop(env->loop, &env->watchdog);
    }
    assert_false(env->timed_out);
}

static void env_init(struct env *env, const char *server_cert)
{
    memset(env, 0, sizeof(*env));
    LIST_INIT(&env->servers);
    char err[256] = "";
    env->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(env->loop);
    env->cctx = tls_client_ctx_new(g.ca, err, sizeof(err));
    assert_non_null(env->cctx);
    env->sctx = tls_server_ctx_new(server_cert, g.leaf_key, err, sizeof(err));
    if (env->sctx == NULL)
        fail_msg("server context: %s", err);

    env->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(env->lfd >= 0);
    env->addr.sin_family = AF_INET;
    env->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(env->lfd, (struct sockaddr *)&env->addr, sizeof(env->addr)), 0);
    socklen_t len = sizeof(env->addr);
    assert_int_equal(getsockname(env->lfd, (struct sockaddr *)&env->addr, &len), 0);
    assert_int_equal(listen(env->lfd, 16), 0);
    ev_io_init(&env->accept_io, on_accept, env->lfd, EV_READ);
    ev_io_start(env->loop, &env->accept_io);
    ev_timer_init(&env->watchdog, on_watchdog, WATCHDOG_S, 0);
    ev_prepare_init(&env->check, on_check);
}

static void env_cleanup(struct env *env)
{
    if (env->client)
        client_free(env->client);
    while (!LIST_EMPTY(&env->servers))
        server_free(LIST_FIRST(&env->servers));
    ev_io_stop(env->loop, &env->accept_io);
    close(env->lfd);
    SSL_CTX_free(env->cctx);
    SSL_CTX_free(env->sctx);
    ev_loop_destroy(env->loop);
}

/* A client stream to the bench's server, expecting name; peer may add pins etc. */
static struct client *client_start(struct env *env, struct tls_peer *peer, size_t wmax)
{
    struct client *c = test_calloc(1, sizeof(*c));
    c->env = env;
    env->client = c;
    env->connecting = true;
    int rc = tls_stream_connect(&c->ts, env->loop, env->cctx, (struct sockaddr *)&env->addr,
                                sizeof(env->addr), peer, &client_cbs, wmax);
    env->connecting = false;
    assert_int_equal(rc, 0);
    assert_false(c->closed);
    return c;
}

static bool client_ready_or_closed(struct env *env)
{
    return env->client->ready || env->client->closed;
}

static bool client_and_server_closed(struct env *env)
{
    return env->client->closed && (env->accepted == 0 || env->server_closed > 0);
}

static bool client_closed(struct env *env)
{
    return env->client->closed;
}

static bool got_4(struct env *env)
{
    return env->client->rxlen >= 4 || env->client->closed;
}

static bool got_big(struct env *env)
{
    return env->client->rxlen >= BIG || env->client->closed;
}

/* Connect with peer, expect the handshake to end in want (0: success, verified). */
static void expect_handshake(const char *server_cert, struct tls_peer *peer, int want)
{
    struct env env;
    env_init(&env, server_cert);
    struct client *c = client_start(&env, peer, WMAX);
    assert_int_equal(tls_stream_write(&c->ts, "query", 5), 0);
    if (want == 0) {
        run_until(&env, client_ready_or_closed);
        assert_false(c->closed);
        assert_true(c->ready);
        assert_true(tls_stream_is_ready(&c->ts));
        assert_false(tls_stream_resumed(&c->ts));
    } else {
        run_until(&env, client_and_server_closed);
        assert_false(c->ready);
        assert_int_equal(c->err, want);
        assert_false(tls_stream_is_ready(&c->ts));
        /* Nothing of the owner's reached an unverified peer. */
        assert_int_equal(env.server_rx, 0);
        assert_int_equal(tls_stream_write(&c->ts, "x", 1), -EPIPE);
    }
    env_cleanup(&env);
}

/* --- the cases ----------------------------------------------------------------------- */

static void test_handshake_name(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.echo = true;
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    /* Queued before the handshake; it goes out once the server is verified. */
    assert_int_equal(tls_stream_write(&c->ts, "ping", 4), 0);
    assert_int_equal(tls_stream_queued(&c->ts), 4);
    run_until(&env, got_4);
    assert_true(c->ready);
    assert_int_equal(c->rxlen, 4);
    assert_memory_equal(c->rx, "ping", 4);
    assert_int_equal(tls_stream_queued(&c->ts), 0);
    assert_null(tls_stream_alpn(&c->ts, NULL));
    assert_int_equal(env.server_ready, 1);
    env_cleanup(&env);
}

static void test_handshake_ip(void **state)
{
    (void)state;
    struct tls_peer peer = {.name = "127.0.0.1", .name_is_ip = true};
    expect_handshake(g.good, &peer, 0);
    /* An IP literal is verified as an IP address even when not flagged as one. */
    struct tls_peer unflagged = {.name = "127.0.0.1"};
    expect_handshake(g.good, &unflagged, 0);
    struct tls_peer wrong_ip = {.name = "127.0.0.2", .name_is_ip = true};
    expect_handshake(g.good, &wrong_ip, -EKEYREJECTED);
}

static void test_wrong_name_sends_nothing(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.other);
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    uint8_t secret[300];
    memset(secret, 's', sizeof(secret));
    assert_int_equal(tls_stream_write(&c->ts, secret, sizeof(secret)), 0);
    run_until(&env, client_and_server_closed);
    assert_int_equal(c->err, -EKEYREJECTED);
    assert_false(c->ready);
    assert_int_equal(env.accepted, 1);
    assert_int_equal(env.server_ready, 0);
    assert_int_equal(env.server_rx, 0);
    assert_true(env.server_err < 0);
    env_cleanup(&env);

    /* The right certificate, but the client expects another name. */
    struct tls_peer wrong = {.name = "wrong.test"};
    expect_handshake(g.good, &wrong, -EKEYREJECTED);
    /* No partial wildcards and no suffix matches. */
    struct tls_peer suffix = {.name = "test"};
    expect_handshake(g.good, &suffix, -EKEYREJECTED);
}

static void test_self_signed_rejected(void **state)
{
    (void)state;
    struct tls_peer peer = {.name = "upstream.test"};
    expect_handshake(g.self, &peer, -EKEYREJECTED);
}

static void test_expired_rejected(void **state)
{
    (void)state;
    struct tls_peer peer = {.name = "upstream.test"};
    expect_handshake(g.expired, &peer, -EKEYREJECTED);
}

static void test_pins(void **state)
{
    (void)state;
    uint8_t pins[2][TLS_PIN_LEN];
    struct tls_peer peer = {.name = "upstream.test", .pins = pins, .npins = 1};

    memcpy(pins[0], g.leaf_pin, TLS_PIN_LEN);
    expect_handshake(g.good, &peer, 0);

    memcpy(pins[0], g.ca_pin, TLS_PIN_LEN);
    expect_handshake(g.good, &peer, 0);

    assert_int_equal(RAND_bytes(pins[0], TLS_PIN_LEN), 1);
    expect_handshake(g.good, &peer, -EKEYREJECTED);

    /* One pin of several is enough. */
    memcpy(pins[1], g.leaf_pin, TLS_PIN_LEN);
    peer.npins = 2;
    expect_handshake(g.good, &peer, 0);
}

static void test_echo_100k(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.echo = true;
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    uint8_t *data = test_malloc(BIG);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    /* Writes of uneven sizes, some before and some after the handshake. */
    size_t off = 0;
    for (size_t n = 1; off < BIG / 2; n = n * 3 % 4093 + 1) {
        size_t len = n < BIG / 2 - off ? n : BIG / 2 - off;
        assert_int_equal(tls_stream_write(&c->ts, data + off, len), 0);
        off += len;
    }
    run_until(&env, client_ready_or_closed);
    assert_true(c->ready);
    assert_int_equal(tls_stream_write(&c->ts, data + off, BIG - off), 0);
    run_until(&env, got_big);
    assert_false(c->closed);
    assert_int_equal(c->rxlen, BIG);
    assert_int_equal(env.server_rx, BIG);
    assert_memory_equal(c->rx, data, BIG);
    test_free(data);
    env_cleanup(&env);
}

static bool server_got_1000(struct env *env)
{
    return env->server_rx >= 1000 || env->client->closed;
}

static void test_write_queue_cap(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, 1000);
    uint8_t buf[1001];
    memset(buf, 'q', sizeof(buf));
    assert_int_equal(tls_stream_write(&c->ts, buf, 600), 0);
    assert_int_equal(tls_stream_write(&c->ts, buf, 500), -ENOBUFS);
    assert_int_equal(tls_stream_queued(&c->ts), 600);
    assert_int_equal(tls_stream_write(&c->ts, buf, 400), 0);
    assert_int_equal(tls_stream_queued(&c->ts), 1000);
    assert_int_equal(tls_stream_write(&c->ts, buf, 1), -ENOBUFS);
    assert_int_equal(tls_stream_queued(&c->ts), 1000);
    run_until(&env, server_got_1000);
    assert_int_equal(env.server_rx, 1000);
    assert_int_equal(tls_stream_queued(&c->ts), 0);
    assert_int_equal(tls_stream_write(&c->ts, buf, 1001), -ENOBUFS);
    tls_stream_close(&c->ts);
    assert_int_equal(tls_stream_write(&c->ts, buf, 1), -EPIPE);
    env_cleanup(&env);
}

static void test_connect_refused(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    /* A port that was just free and that nobody listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    env.addr.sin_port = addr.sin_port;

    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    assert_int_equal(tls_stream_write(&c->ts, "q", 1), 0);
    run_until(&env, client_closed);
    assert_false(c->closed_in_connect);
    assert_int_equal(c->err, -ECONNREFUSED);
    assert_false(c->ready);
    env_cleanup(&env);
}

static void test_connect_bad_args(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    struct tls_stream ts;
    uint8_t pins[5][TLS_PIN_LEN] = {{0}};
    struct tls_peer noname = {.name = NULL};
    struct tls_peer toomany = {.name = "upstream.test", .pins = pins, .npins = 5};
    struct tls_peer badip = {.name = "not-an-ip", .name_is_ip = true};
    const struct tls_peer *bad[] = {&noname, &toomany, &badip, NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&ts, 0xa5, sizeof(ts)); /* connect must not trust what it is given */
        assert_int_equal(tls_stream_connect(&ts, env.loop, env.cctx, (struct sockaddr *)&env.addr,
                                            sizeof(env.addr), bad[i], &client_cbs, WMAX),
                         -EINVAL);
        tls_stream_close(&ts); /* a no-op after a failed start */
        assert_int_equal(tls_stream_write(&ts, "x", 1), -EPIPE);
    }
    /* A zeroed stream that was never started can be closed, twice. */
    memset(&ts, 0, sizeof(ts));
    tls_stream_close(&ts);
    tls_stream_close(&ts);
    env_cleanup(&env);
}

static bool server_got_3(struct env *env)
{
    return env->server_rx >= 3;
}

static void test_peer_closes_cleanly(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.server_close_on_data = true; /* the server closes, and frees, from on_data */
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    assert_int_equal(tls_stream_write(&c->ts, "bye", 3), 0);
    run_until(&env, client_closed);
    assert_int_equal(env.server_rx, 3);
    assert_null(env.srv);
    assert_true(c->ready);
    assert_int_equal(c->err, 0);
    assert_int_equal(c->write_after_close, -EPIPE);
    assert_int_equal(tls_stream_write(&c->ts, "x", 1), -EPIPE);
    tls_stream_close(&c->ts);
    env_cleanup(&env);

    /* A TCP close without close_notify is a broken connection, not a clean one. */
    env_init(&env, g.good);
    c = client_start(&env, &peer, WMAX);
    assert_int_equal(tls_stream_write(&c->ts, "cut", 3), 0);
    run_until(&env, server_got_3);
    assert_non_null(env.srv);
    shutdown(env.srv->ts.fd, SHUT_RDWR);
    run_until(&env, client_closed);
    assert_int_equal(c->err, -ECONNRESET);
    env_cleanup(&env);
}

static bool client_freed_and_server_closed(struct env *env)
{
    return env->client_freed && env->server_closed > 0;
}

static void test_close_and_free_in_on_data(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    /* Many records arrive at once: the read loop must stop at the first on_data that
     * closed the stream and freed the memory holding it. */
    env.server_send_on_ready = 200 * 1024;
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    c->close_in_data = true;
    run_until(&env, client_freed_and_server_closed);
    assert_null(env.client);
    assert_int_equal(env.client_data_calls, 1);
    env_cleanup(&env);
}

static bool got_4_and_session(struct env *env)
{
    return (env->client->rxlen >= 4 && env->client->session != NULL) || env->client->closed;
}

/* A connection that echoes "ping" and gives a session; returns the session. */
static SSL_SESSION *first_session(struct env *env, struct tls_peer *peer)
{
    struct client *c = client_start(env, peer, WMAX);
    /* TLS 1.3 tickets come after the handshake: read something before closing. */
    assert_int_equal(tls_stream_write(&c->ts, "ping", 4), 0);
    run_until(env, got_4_and_session);
    assert_false(c->closed);
    assert_false(tls_stream_resumed(&c->ts));
    assert_non_null(c->session);
    SSL_SESSION *session = c->session;
    c->session = NULL;
    client_free(c);
    return session;
}

/* Connect with peer (a session in it), expect want and, for a success, resumed (1 or 0,
 * -1: either). Returns the session the connection gave, to resume the next one, or NULL
 * (a resumed TLS 1.2 connection makes no new session; the old one stays good). */
static SSL_SESSION *resume_with(struct env *env, struct tls_peer *peer, int want, int resumed)
{
    struct client *c = client_start(env, peer, WMAX);
    SSL_SESSION *session = NULL;
    assert_int_equal(tls_stream_write(&c->ts, "pong", 4), 0);
    if (want == 0) {
        run_until(env, got_4);
        assert_false(c->closed);
        if (resumed >= 0)
            assert_int_equal(tls_stream_resumed(&c->ts), resumed);
        assert_memory_equal(c->rx, "pong", 4);
        session = c->session;
        c->session = NULL;
    } else {
        run_until(env, client_closed);
        assert_int_equal(c->err, want);
        assert_null(c->session);
    }
    client_free(c);
    return session;
}

static void resumption_case(int max_version)
{
    struct env env;
    env_init(&env, g.good);
    env.echo = true;
    if (max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(env.sctx, max_version), 1);
    uint8_t pins[1][TLS_PIN_LEN];
    memcpy(pins[0], g.leaf_pin, TLS_PIN_LEN);
    struct tls_peer peer = {.name = "upstream.test", .pins = pins, .npins = 1};
    SSL_SESSION *s1 = first_session(&env, &peer);

    /* Resumed connections check pins too, against the chain the session was made with.
     * Each resumes with the newest session, as an owner must: OpenSSL's client uses a
     * TLS 1.3 ticket once (RFC 8446 §C.4). */
    peer.session = s1;
    SSL_SESSION *s2 = resume_with(&env, &peer, 0, 1);
    memcpy(pins[0], g.ca_pin, TLS_PIN_LEN);
    if (s2)
        peer.session = s2;
    SSL_SESSION *s3 = resume_with(&env, &peer, 0, 1);
    uint8_t bad[1][TLS_PIN_LEN];
    assert_int_equal(RAND_bytes(bad[0], TLS_PIN_LEN), 1);
    peer.pins = bad;
    if (s3)
        peer.session = s3;
    assert_null(resume_with(&env, &peer, -EKEYREJECTED, -1));
    /* The rejected connection ended without close_notify, after which OpenSSL may
     * retire the session (it does in TLS 1.2): resumed or not, the next one is fine. */
    peer.pins = pins;
    SSL_SESSION *s4 = resume_with(&env, &peer, 0, -1);
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s3);
    SSL_SESSION_free(s4);
    env_cleanup(&env);
}

static void test_session_resumption(void **state)
{
    (void)state;
    resumption_case(0);
}

static void test_session_resumption_tls12(void **state)
{
    (void)state;
    resumption_case(TLS1_2_VERSION);
}

/* In TLS 1.2 the session is made during the handshake, before the pin check: a peer
 * that then fails it must not leave a session to resume. */
static void test_no_session_from_rejected_peer(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    assert_int_equal(SSL_CTX_set_max_proto_version(env.sctx, TLS1_2_VERSION), 1);
    uint8_t pins[1][TLS_PIN_LEN];
    assert_int_equal(RAND_bytes(pins[0], TLS_PIN_LEN), 1);
    struct tls_peer peer = {.name = "upstream.test", .pins = pins, .npins = 1};
    struct client *c = client_start(&env, &peer, WMAX);
    assert_int_equal(tls_stream_write(&c->ts, "secret", 6), 0);
    run_until(&env, client_and_server_closed);
    assert_int_equal(c->err, -EKEYREJECTED);
    assert_null(c->session);
    assert_int_equal(env.server_rx, 0);
    env_cleanup(&env);
}

static bool client_got_data(struct env *env)
{
    return env->client_data_calls > 0 || env->client->closed;
}

static bool server_closed(struct env *env)
{
    return env->server_closed > 0;
}

/* Closed by its owner from outside any callback while data keeps arriving: no callback
 * may follow (the owner is freed at once; ASan sees any). */
static void test_close_from_outside(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.server_send_on_ready = 512 * 1024;
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(&env, &peer, WMAX);
    run_until(&env, client_got_data);
    assert_false(c->closed);
    unsigned calls = env.client_data_calls;
    client_free(c);
    run_until(&env, server_closed);
    assert_int_equal(env.client_data_calls, calls);
    env_cleanup(&env);
}

static void test_alpn(void **state)
{
    (void)state;
    const char *const protos[] = {"h2", "http/1.1"};
    static const char client_list[] = "\x08http/1.1\x02h2";
    struct env env;
    env_init(&env, g.good);
    assert_int_equal(tls_server_ctx_set_alpn(env.sctx, protos, 0), -EINVAL);
    const char *const empty[] = {""};
    assert_int_equal(tls_server_ctx_set_alpn(env.sctx, empty, 1), -EINVAL);
    assert_int_equal(tls_server_ctx_set_alpn(env.sctx, protos, 1), 0);
    assert_int_equal(tls_server_ctx_set_alpn(env.sctx, protos, 2), 0); /* replaces */
    /* Ours is h2 first: chosen although the client lists it second. */
    struct tls_peer peer = {
        .name = "upstream.test", .alpn = client_list, .alpn_len = sizeof(client_list) - 1};
    struct client *c = client_start(&env, &peer, WMAX);
    run_until(&env, client_ready_or_closed);
    assert_true(c->ready);
    size_t len = 0;
    const char *alpn = tls_stream_alpn(&c->ts, &len);
    assert_non_null(alpn);
    assert_int_equal(len, 2);
    assert_memory_equal(alpn, "h2", 2);
    client_free(c);

    /* Nothing in common: no ALPN, but the handshake goes on. */
    static const char dot[] = "\x03"
                              "dot";
    struct tls_peer other = {.name = "upstream.test", .alpn = dot, .alpn_len = sizeof(dot) - 1};
    c = client_start(&env, &other, WMAX);
    run_until(&env, client_ready_or_closed);
    assert_true(c->ready);
    assert_null(tls_stream_alpn(&c->ts, &len));
    assert_int_equal(len, 0);
    env_cleanup(&env);
    assert_string_equal(env.server_alpn, "h2");
}

/* --- pausing reads ------------------------------------------------------------------ */

static bool server_got_some(struct env *env)
{
    return env->server_rx > 0 || env->server_closed > 0;
}

static bool server_got_all_pattern(struct env *env)
{
    return env->server_rx >= 4000 || env->server_closed > 0;
}

static bool server_closed_or_timeout(struct env *env)
{
    return env->server_closed > 0;
}

/* Bytes waiting in the kernel for the server stream's socket. */
static int server_socket_backlog(struct env *env)
{
    int n = -1;
    assert_non_null(env->srv);
    assert_int_equal(ioctl(env->srv->ts.fd, FIONREAD, &n), 0);
    return n;
}

/* A client whose records are 512 bytes of plaintext, sending len bytes of pattern(i). */
static struct client *pattern_client(struct env *env, size_t len)
{
    struct tls_peer peer = {.name = "upstream.test"};
    struct client *c = client_start(env, &peer, WMAX);
    assert_int_equal(SSL_set_max_send_fragment(c->ts.ssl, 512), 1);
    uint8_t *buf = test_malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(i);
    assert_int_equal(tls_stream_write(&c->ts, buf, len), 0);
    test_free(buf);
    return c;
}

/* Paused from on_data: no further on_data, although OpenSSL holds the following records
 * (read ahead, the socket empty: it will never be readable again). Resumed from outside
 * any callback: nothing is delivered from inside tls_stream_pause_read, and everything
 * is, in order, from the loop. */
static void test_pause_read(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.server_pause_on_data = true;
    env.server_pattern = true;
    struct client *c = pattern_client(&env, 4000); /* 8 records, sent in one go */
    run_until(&env, server_got_some);
    assert_int_equal(env.server_closed, 0);
    assert_int_equal(env.server_data_calls, 1);
    assert_int_equal(env.server_rx, 512);
    run_for(&env, 0.3);
    assert_int_equal(env.server_data_calls, 1);
    assert_int_equal(env.server_rx, 512);
    assert_int_equal(tls_stream_queued(&c->ts), 0); /* all of it left the client */
    /* What makes resuming hard: the rest is inside OpenSSL, not in the socket. */
    assert_int_equal(server_socket_backlog(&env), 0);
    tls_stream_pause_read(&env.srv->ts, true); /* twice is once */
    env.server_pause_on_data = false;
    tls_stream_pause_read(&env.srv->ts, false);
    assert_int_equal(env.server_data_calls, 1); /* never calls back */
    run_until(&env, server_got_all_pattern);
    assert_int_equal(env.server_rx, 4000);
    assert_int_equal(env.server_closed, 0);

    /* Paused and resumed again and again, one record at a time: still all, in order. */
    env.server_rx = 0;
    env.server_data_calls = 0;
    env.server_pause_on_data = true;
    client_free(c);
    run_until(&env, server_closed_or_timeout);
    env.server_closed = 0;
    c = pattern_client(&env, 4000);
    run_until(&env, server_got_some);
    while (env.server_rx < 4000 && env.server_closed == 0) {
        unsigned calls = env.server_data_calls;
        run_for(&env, 0.02);
        assert_int_equal(env.server_data_calls, calls);
        tls_stream_pause_read(&env.srv->ts, false);
        run_until(&env, server_got_some); /* already true: one turn of the loop at most */
        for (int i = 0; i < 100 && env.server_data_calls == calls; i++)
            ev_run(env.loop, EVRUN_NOWAIT);
        assert_int_equal(env.server_data_calls, calls + 1);
    }
    assert_int_equal(env.server_rx, 4000);
    assert_int_equal(env.server_data_calls, 8);
    env_cleanup(&env);
}

/* The peer's close is noticed only once reading resumes, after the data before it. */
static void test_pause_read_close(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.server_pause_on_data = true;
    env.server_pattern = true;
    struct client *c = pattern_client(&env, 2000);
    run_until(&env, server_got_some);
    run_for(&env, 0.2); /* the client reads the server's session tickets */
    assert_int_equal(env.server_rx, 512);
    client_free(c); /* close_notify, then the socket closes */
    run_for(&env, 0.3);
    assert_int_equal(env.server_closed, 0);
    assert_int_equal(env.server_rx, 512);
    env.server_pause_on_data = false;
    tls_stream_pause_read(&env.srv->ts, false);
    assert_int_equal(env.server_closed, 0);
    run_until(&env, server_closed_or_timeout);
    assert_int_equal(env.server_rx, 2000);
    assert_int_equal(env.server_err, 0); /* a clean close_notify, after all the data */
    env_cleanup(&env);
}

static bool server_ready_and_client_sent(struct env *env)
{
    return env->server_ready > 0 && env->client->ready && tls_stream_queued(&env->client->ts) == 0;
}

/* Paused before the handshake: the handshake completes, no data is delivered until
 * reading resumes; and the server can still write while paused. */
static void test_pause_before_handshake(void **state)
{
    (void)state;
    struct env env;
    env_init(&env, g.good);
    env.server_pause_on_accept = true;
    env.server_pattern = true;
    env.server_send_on_ready = 4;
    struct client *c = pattern_client(&env, 1000);
    run_until(&env, server_ready_and_client_sent);
    run_until(&env, got_4); /* written while paused */
    run_for(&env, 0.2);
    assert_int_equal(c->rxlen, 4);
    assert_int_equal(env.server_rx, 0);
    assert_int_equal(env.server_data_calls, 0);
    tls_stream_pause_read(&env.srv->ts, false);
    run_until(&env, server_got_some);
    run_for(&env, 0.1);
    assert_int_equal(env.server_rx, 1000);
    assert_int_equal(env.server_closed, 0);
    env_cleanup(&env);
}

static void test_ctx_errors(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    err[0] = '\0';
    assert_null(tls_server_ctx_new(g.good, "/nonexistent/key.pem", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/key.pem"));
    err[0] = '\0';
    assert_null(tls_server_ctx_new(g.good, g.ca_key, err, sizeof(err)));
    assert_non_null(strstr(err, g.ca_key));
    assert_non_null(strstr(err, "mismatch"));
    SSL_CTX *ctx = tls_client_ctx_new(NULL, err, sizeof(err));
    assert_non_null(ctx); /* the system's trust store */
    SSL_CTX_free(ctx);
}

int main(void)
{
    /* As in the daemon: a write to a reset connection must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_name),
        cmocka_unit_test(test_handshake_ip),
        cmocka_unit_test(test_wrong_name_sends_nothing),
        cmocka_unit_test(test_self_signed_rejected),
        cmocka_unit_test(test_expired_rejected),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_echo_100k),
        cmocka_unit_test(test_write_queue_cap),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_bad_args),
        cmocka_unit_test(test_peer_closes_cleanly),
        cmocka_unit_test(test_close_and_free_in_on_data),
        cmocka_unit_test(test_session_resumption),
        cmocka_unit_test(test_session_resumption_tls12),
        cmocka_unit_test(test_no_session_from_rejected_peer),
        cmocka_unit_test(test_close_from_outside),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_pause_read),
        cmocka_unit_test(test_pause_read_close),
        cmocka_unit_test(test_pause_before_handshake),
        cmocka_unit_test(test_ctx_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
