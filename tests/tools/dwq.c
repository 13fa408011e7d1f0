/* dwq: dnsward's own test client, for the integration tests.
 *
 *   dwq [-t] [-p PORT] [-s SERVER] [-i ID] [-w SECONDS] [-e] [-d] [-b BUFSIZE]
 *       [-n COUNT] NAME [TYPE]
 *   dwq [-t] [-r] [-p PORT] [-s SERVER] [-w SECONDS] -x HEX
 *
 * One query over UDP (or TCP with -t). The answer is printed in a form made for grep:
 *
 *   rcode=NOERROR id=4660 flags=qr rd ra tc=0 qd=1 an=1 ns=0 ar=0 size=46 opcode=0
 *   question Mixed.bench.test. A
 *   A 192.0.2.1                       (one line per answer record: A, AAAA, TXT, or TYPEn)
 *   auth SOA ns.nx.test. hostmaster.nx.test. 1 3600 600 86400 60
 *   opt udp=1232 version=0 do=0
 *   match id=yes question=exact sent_id=4660
 *
 * question=exact means the answer's QNAME is byte for byte the one sent (case included),
 * question=case when it differs only in ASCII case, question=no when it differs.
 * Exit status: 0 for an answer whose ID and question match, 3 for an answer that does
 * not match, 1 for no answer in time, 2 for a usage or system error.
 *
 * -n COUNT sends COUNT distinct queries q<i>.NAME (i from 0) pipelined on ONE TCP
 * connection, without waiting for any answer before writing the next query (the socket is
 * non-blocking and polled both ways, so neither side can deadlock on full buffers); the
 * answers are matched by ID and question. It prints
 *   sent=N written=all answered=N mismatched=N dup=N outoforder=N rcodes=NOERROR:N,...
 *   addrs=192.0.2.1:N,... time_ms=T
 * (addrs counts the first A record of each answer that has one)
 * and exits 0 only if every query was answered by a matching answer.
 *
 * -x HEX sends the given bytes as one message (over TCP, with the 2-byte length prefix
 * added, unless -r says the bytes are to be written exactly as given) and prints the
 * reply's header (`rcode=... id=...`) or `noanswer timeout` / `noanswer closed`; exit 0
 * for a reply, 1 for none.
 *
 * -e adds an EDNS OPT record (RFC 6891) with payload size 1232, -b sets that size, -d sets
 * the DO bit; each implies -e. -i sets the query's ID (default: random). -w sets how long
 * to wait, in seconds (default 5).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_MSG = 65535,
    HDR = 12,
    EXIT_OK = 0,
    EXIT_NOANSWER = 1,
    EXIT_USAGE = 2,
    EXIT_MISMATCH = 3,
};

struct opts {
    const char *server;
    const char *port;
    bool tcp;
    bool raw_stream;
    bool edns;
    bool dobit;
    unsigned bufsize;
    long id; /* -1: random */
    double wait_s;
    unsigned long count;
    const char *hex;
    const char *name;
    unsigned qtype;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: dwq [-t] [-p PORT] [-s SERVER] [-i ID] [-w SECONDS] [-e] [-d] [-b BUFSIZE]\n"
            "           [-n COUNT] NAME [TYPE]\n"
            "       dwq [-t] [-r] [-p PORT] [-s SERVER] [-w SECONDS] -x HEX\n");
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct {
    const char *name;
    unsigned value;
} qtypes[] = {
    {"A", 1},    {"NS", 2},    {"CNAME", 5}, {"SOA", 6},  {"PTR", 12},   {"MX", 15},
    {"TXT", 16}, {"AAAA", 28}, {"SRV", 33},  {"OPT", 41}, {"HTTPS", 65}, {"ANY", 255},
};

static int parse_type(const char *s, unsigned *out)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++) {
        if (strcasecmp(s, qtypes[i].name) == 0) {
            *out = qtypes[i].value;
            return 0;
        }
    }
    const char *digits = s;
    if (strncasecmp(s, "TYPE", 4) == 0)
        digits = s + 4;
    char *end;
    errno = 0;
    unsigned long v = strtoul(digits, &end, 10);
    if (errno || end == digits || *end || v > 65535)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static void type_name(unsigned t, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++) {
        if (qtypes[i].value == t) {
            snprintf(buf, len, "%s", qtypes[i].name);
            return;
        }
    }
    snprintf(buf, len, "TYPE%u", t);
}

static void rcode_name(unsigned rc, char *buf, size_t len)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};
    if (rc < sizeof names / sizeof names[0])
        snprintf(buf, len, "%s", names[rc]);
    else if (rc == 16)
        snprintf(buf, len, "BADVERS");
    else
        snprintf(buf, len, "RCODE%u", rc);
}

/* Encode a presentation-format name (no escapes) into wire format. Returns the length,
 * or -1 if a label is empty or too long or the name is too long. */
static int encode_name(const char *name, uint8_t *out, size_t cap)
{
    size_t o = 0;
    const char *p = name;
    if (strcmp(name, ".") == 0) {
        if (cap < 1)
            return -1;
        out[0] = 0;
        return 1;
    }
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n > 63 || o + 1 + n >= cap || o + 1 + n > 254)
            return -1;
        out[o++] = (uint8_t)n;
        memcpy(out + o, p, n);
        o += n;
        p += n;
        if (*p == '.')
            p++;
    }
    out[o++] = 0;
    return (int)o;
}

/* Build a query; returns its length or -1. */
static int build_query(const struct opts *o, const char *name, unsigned id, uint8_t *out,
                       size_t cap)
{
    if (cap < HDR + 4 + 11)
        return -1;
    memset(out, 0, HDR);
    put16(out, id);
    put16(out + 2, 0x0100); /* RD */
    put16(out + 4, 1);
    int n = encode_name(name, out + HDR, cap - HDR - 4 - 11);
    if (n < 0)
        return -1;
    size_t len = HDR + (size_t)n;
    put16(out + len, o->qtype);
    put16(out + len + 2, 1);
    len += 4;
    if (o->edns) {
        put16(out + 10, 1);
        out[len++] = 0; /* root owner */
        put16(out + len, 41);
        put16(out + len + 2, o->bufsize);
        out[len + 4] = 0; /* extended rcode */
        out[len + 5] = 0; /* version */
        put16(out + len + 6, o->dobit ? 0x8000 : 0);
        put16(out + len + 8, 0); /* rdlength */
        len += 10;
    }
    return (int)len;
}

/* Read a possibly compressed name at *off into text (presentation format, at most cap
 * bytes). Advances *off past the name as it stands in the message. Returns 0 or -1. */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *text, size_t cap)
{
    size_t p = *off, t = 0;
    bool jumped = false;
    int hops = 0;
    if (cap < 2)
        return -1;
    for (;;) {
        if (p >= len)
            return -1;
        uint8_t n = msg[p];
        if ((n & 0xC0) == 0xC0) {
            if (p + 1 >= len || ++hops > 64)
                return -1;
            size_t target = ((size_t)(n & 0x3F) << 8) | msg[p + 1];
            if (!jumped)
                *off = p + 2;
            jumped = true;
            p = target;
            continue;
        }
        if (n & 0xC0)
            return -1;
        if (n == 0) {
            if (!jumped)
                *off = p + 1;
            break;
        }
        if (p + 1 + n > len || t + n + 2 > cap)
            return -1;
        for (size_t i = 0; i < n; i++) {
            uint8_t c = msg[p + 1 + i];
            text[t++] = (c > 0x20 && c < 0x7f && c != '.') ? (char)c : '?';
        }
        text[t++] = '.';
        p += 1 + n;
    }
    if (t == 0)
        text[t++] = '.';
    text[t] = 0;
    return 0;
}

static void print_rdata(const char *section, const uint8_t *msg, size_t len, size_t rdoff,
                        unsigned rtype, unsigned rdlen)
{
    const uint8_t *rd = msg + rdoff;
    char tn[16];
    if (rtype == 1 && rdlen == 4) {
        printf("%sA %u.%u.%u.%u\n", section, rd[0], rd[1], rd[2], rd[3]);
    } else if (rtype == 28 && rdlen == 16) {
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, rd, buf, sizeof buf);
        printf("%sAAAA %s\n", section, buf);
    } else if (rtype == 16) {
        printf("%sTXT ", section);
        size_t i = 0;
        while (i < rdlen) {
            unsigned sl = rd[i];
            if (i + 1 + sl > rdlen)
                break;
            printf("%s\"%.*s\"", i ? " " : "", (int)sl, (const char *)rd + i + 1);
            i += 1 + sl;
        }
        printf("\n");
    } else if (rtype == 6) {
        char mname[300], rname[300];
        size_t p = rdoff;
        if (read_name(msg, len, &p, mname, sizeof mname) == 0 &&
            read_name(msg, len, &p, rname, sizeof rname) == 0 && p + 20 <= rdoff + rdlen) {
            const uint8_t *n = msg + p;
            printf("%sSOA %s %s %u %u %u %u %u\n", section, mname, rname,
                   (unsigned)get16(n) << 16 | get16(n + 2),
                   (unsigned)get16(n + 4) << 16 | get16(n + 6),
                   (unsigned)get16(n + 8) << 16 | get16(n + 10),
                   (unsigned)get16(n + 12) << 16 | get16(n + 14),
                   (unsigned)get16(n + 16) << 16 | get16(n + 18));
        } else {
            printf("%sSOA ?\n", section);
        }
    } else {
        type_name(rtype, tn, sizeof tn);
        printf("%s%s len=%u\n", section, tn, rdlen);
    }
}

struct summary {
    unsigned id;
    unsigned flags;
    unsigned rcode; /* with the OPT record's extended bits */
    unsigned qd, an, ns, ar;
    bool has_opt;
    unsigned opt_udp, opt_version;
    bool opt_do;
    char qname[300];
    unsigned qtype;
    bool question_ok; /* qd >= 1 and the question could be read */
    bool has_a;       /* the answer section holds an A record; first_a is the first */
    uint8_t first_a[4];
    bool parse_ok; /* every record could be walked */
};

static void print_header(const struct summary *s, size_t len)
{
    char rc[16];
    rcode_name(s->rcode, rc, sizeof rc);
    printf("rcode=%s id=%u flags=%s%s%s%s%s%s%s tc=%d qd=%u an=%u ns=%u ar=%u size=%zu opcode=%u\n",
           rc, s->id, (s->flags & 0x8000) ? "qr" : "", (s->flags & 0x0400) ? " aa" : "",
           (s->flags & 0x0200) ? " tc" : "", (s->flags & 0x0100) ? " rd" : "",
           (s->flags & 0x0080) ? " ra" : "", (s->flags & 0x0020) ? " ad" : "",
           (s->flags & 0x0010) ? " cd" : "", (s->flags & 0x0200) ? 1 : 0, s->qd, s->an, s->ns,
           s->ar, len, (s->flags >> 11) & 0xF);
}

/* Walk the records from off; on the second pass print them. */
static void walk_records(const uint8_t *msg, size_t len, size_t off, bool print, struct summary *s)
{
    unsigned total = s->an + s->ns + s->ar;
    for (unsigned i = 0; i < total; i++) {
        char owner[300];
        if (read_name(msg, len, &off, owner, sizeof owner) < 0 || off + 10 > len) {
            s->parse_ok = false;
            return;
        }
        unsigned rtype = get16(msg + off);
        unsigned rclass = get16(msg + off + 2);
        uint32_t ttl = (uint32_t)get16(msg + off + 4) << 16 | get16(msg + off + 6);
        unsigned rdlen = get16(msg + off + 8);
        off += 10;
        if (off + rdlen > len) {
            s->parse_ok = false;
            return;
        }
        const char *section = i < s->an ? "" : i < s->an + s->ns ? "auth " : "add ";
        if (rtype == 41) {
            if (!print) {
                s->has_opt = true;
                s->opt_udp = rclass;
                s->opt_version = (ttl >> 16) & 0xFF;
                s->opt_do = (ttl & 0x8000) != 0;
                s->rcode |= (ttl >> 24) << 4;
            } else {
                printf("opt udp=%u version=%u do=%d\n", rclass, (ttl >> 16) & 0xFF,
                       (ttl & 0x8000) ? 1 : 0);
            }
        } else if (print) {
            print_rdata(section, msg, len, off, rtype, rdlen);
        } else if (rtype == 1 && rdlen == 4 && i < s->an && !s->has_a) {
            s->has_a = true;
            memcpy(s->first_a, msg + off, 4);
        }
        off += rdlen;
    }
    if (off != len)
        s->parse_ok = false;
}

/* Walk a reply: fill *s, and if verbose print the header line, the question and every
 * record. Returns 0 if at least the header could be read. */
static int walk_reply(const uint8_t *msg, size_t len, bool verbose, struct summary *s)
{
    memset(s, 0, sizeof *s);
    if (len < HDR)
        return -1;
    s->id = get16(msg);
    s->flags = get16(msg + 2);
    s->rcode = s->flags & 0xF;
    s->qd = get16(msg + 4);
    s->an = get16(msg + 6);
    s->ns = get16(msg + 8);
    s->ar = get16(msg + 10);
    size_t off = HDR;
    s->parse_ok = true;
    for (unsigned i = 0; i < s->qd; i++) {
        char name[300];
        if (read_name(msg, len, &off, name, sizeof name) < 0 || off + 4 > len) {
            s->parse_ok = false;
            break;
        }
        if (i == 0) {
            memcpy(s->qname, name, sizeof name);
            s->qtype = get16(msg + off);
            s->question_ok = true;
        }
        off += 4;
    }
    /* The OPT record, found first, completes the rcode printed on the header line. */
    if (s->parse_ok)
        walk_records(msg, len, off, false, s);
    if (!verbose)
        return 0;
    print_header(s, len);
    if (s->question_ok) {
        char tn[16];
        type_name(s->qtype, tn, sizeof tn);
        printf("question %s %s\n", s->qname, tn);
    }
    if (s->parse_ok)
        walk_records(msg, len, off, true, s);
    if (!s->parse_ok)
        printf("malformed\n");
    return 0;
}

static int open_socket(const struct opts *o, int *fd_out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = o->tcp ? SOCK_STREAM : SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(o->server, o->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "dwq: %s port %s: %s\n", o->server, o->port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd < 0) {
        perror("dwq: socket");
        freeaddrinfo(res);
        return -1;
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        fprintf(stderr, "dwq: connect %s port %s: %s\n", o->server, o->port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    *fd_out = fd;
    return 0;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left < 0 ? 0 : (int)left;
}

/* Write all of buf, waiting at most until deadline. Returns 0 or -1. */
static int write_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, remaining_ms(deadline)) <= 0)
            return -1;
    }
    return 0;
}

/* Receive one message: a datagram, or one length-prefixed TCP message. Returns its
 * length, 0 on timeout, -1 if the peer closed (or on error). */
static long recv_one(const struct opts *o, int fd, uint8_t *buf, size_t cap, int64_t deadline)
{
    if (!o->tcp) {
        for (;;) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, remaining_ms(deadline));
            if (pr == 0)
                return 0;
            if (pr < 0 && errno == EINTR)
                continue;
            ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            /* A refused port shows as ECONNREFUSED on a connected UDP socket. */
            return n < 0 ? -1 : (long)n;
        }
    }
    uint8_t lenbuf[2];
    size_t need = 2, have = 0;
    uint8_t *dst = lenbuf;
    for (int part = 0; part < 2; part++) {
        while (have < need) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, remaining_ms(deadline));
            if (pr == 0)
                return 0;
            if (pr < 0 && errno == EINTR)
                continue;
            ssize_t n = recv(fd, dst + have, need - have, MSG_DONTWAIT);
            if (n == 0)
                return -1;
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                return -1;
            }
            have += (size_t)n;
        }
        if (part == 0) {
            need = get16(lenbuf);
            if (need > cap)
                return -1;
            if (need == 0)
                return -1; /* a zero-length message is no answer */
            have = 0;
            dst = buf;
        }
    }
    return (long)need;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int run_raw(const struct opts *o)
{
    static uint8_t msg[MAX_MSG + 2], reply[MAX_MSG];
    size_t len = 0;
    size_t prefix = (o->tcp && !o->raw_stream) ? 2 : 0;
    for (const char *p = o->hex; *p;) {
        if (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t') {
            p++;
            continue;
        }
        int hi = hexval(p[0]), lo = p[1] ? hexval(p[1]) : -1;
        if (hi < 0 || lo < 0 || prefix + len >= sizeof msg) {
            fprintf(stderr, "dwq: bad hex near \"%.8s\"\n", p);
            return EXIT_USAGE;
        }
        msg[prefix + len++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (prefix) {
        if (len > MAX_MSG) {
            fprintf(stderr, "dwq: message too long\n");
            return EXIT_USAGE;
        }
        put16(msg, (unsigned)len);
    }
    int fd;
    if (open_socket(o, &fd) < 0)
        return EXIT_USAGE;
    int64_t deadline = now_ms() + (int64_t)(o->wait_s * 1000);
    if (write_all(fd, msg, prefix + len, deadline) < 0) {
        /* The peer may have closed already; that is a deliberate drop too. */
        printf("noanswer closed\n");
        close(fd);
        return EXIT_NOANSWER;
    }
    long n = recv_one(o, fd, reply, sizeof reply, deadline);
    close(fd);
    if (n == 0) {
        printf("noanswer timeout\n");
        return EXIT_NOANSWER;
    }
    if (n < 0) {
        printf("noanswer closed\n");
        return EXIT_NOANSWER;
    }
    struct summary s;
    if (walk_reply(reply, (size_t)n, true, &s) < 0) {
        printf("short reply len=%ld\n", n);
        return EXIT_OK;
    }
    return EXIT_OK;
}

static const char *compare_qname(const uint8_t *q, size_t qlen, const uint8_t *a, size_t alen)
{
    /* Both questions start at HDR; the query's QNAME is uncompressed. Compare the wire
     * bytes of the QNAME up to and including the root label. */
    size_t p = HDR;
    while (p < qlen && q[p] != 0)
        p += 1 + q[p];
    size_t n = p + 1 - HDR;
    if (alen < HDR + n || get16(a + 4) < 1)
        return "no";
    if (memcmp(q + HDR, a + HDR, n) == 0)
        return "exact";
    for (size_t i = 0; i < n; i++) {
        uint8_t x = q[HDR + i], y = a[HDR + i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y + 32);
        if (x != y)
            return "no";
    }
    return "case";
}

static int run_one(const struct opts *o)
{
    static uint8_t query[1024], reply[MAX_MSG];
    unsigned id = o->id >= 0 ? (unsigned)o->id : (unsigned)(random() & 0xFFFF);
    int qlen = build_query(o, o->name, id, query + 2, sizeof query - 2);
    if (qlen < 0) {
        fprintf(stderr, "dwq: cannot encode the name \"%s\"\n", o->name);
        return EXIT_USAGE;
    }
    put16(query, (unsigned)qlen);
    int fd;
    if (open_socket(o, &fd) < 0)
        return EXIT_USAGE;
    int64_t deadline = now_ms() + (int64_t)(o->wait_s * 1000);
    const uint8_t *out = o->tcp ? query : query + 2;
    size_t outlen = (size_t)qlen + (o->tcp ? 2 : 0);
    if (write_all(fd, out, outlen, deadline) < 0) {
        printf("noanswer closed\n");
        close(fd);
        return EXIT_NOANSWER;
    }
    long n;
    for (;;) {
        n = recv_one(o, fd, reply, sizeof reply, deadline);
        /* Over UDP, a stray datagram with another ID is ignored, as a resolver would. */
        if (n >= 2 && !o->tcp && get16(reply) != id) {
            printf("ignored id=%u\n", get16(reply));
            continue;
        }
        break;
    }
    close(fd);
    if (n == 0) {
        printf("noanswer timeout\n");
        return EXIT_NOANSWER;
    }
    if (n < 0) {
        printf("noanswer closed\n");
        return EXIT_NOANSWER;
    }
    struct summary s;
    if (walk_reply(reply, (size_t)n, true, &s) < 0) {
        printf("short reply len=%ld\n", n);
        return EXIT_MISMATCH;
    }
    const char *qmatch = compare_qname(query + 2, (size_t)qlen, reply, (size_t)n);
    bool idok = s.id == id;
    printf("match id=%s question=%s sent_id=%u\n", idok ? "yes" : "no", qmatch, id);
    return (idok && strcmp(qmatch, "no") != 0 && (s.flags & 0x8000)) ? EXIT_OK : EXIT_MISMATCH;
}

static int run_pipeline(const struct opts *o)
{
    unsigned long count = o->count;
    size_t namecap = strlen(o->name) + 32;
    char *name = malloc(namecap);
    uint8_t *sendbuf = malloc(count * 300);
    size_t *qoff = malloc(count * sizeof *qoff);
    unsigned char *state = calloc(count, 1); /* 0 waiting, 1 answered */
    int ret = EXIT_USAGE;
    int fd = -1;
    if (!name || !sendbuf || !qoff || !state) {
        fprintf(stderr, "dwq: out of memory\n");
        goto out;
    }
    /* IDs base+i (mod 65536) are distinct as long as count <= 65536. */
    unsigned base = (unsigned)(random() & 0xFFFF);
    size_t total = 0;
    for (unsigned long i = 0; i < count; i++) {
        snprintf(name, namecap, "q%lu.%s", i, o->name);
        qoff[i] = total;
        int n = build_query(o, name, (unsigned)((base + i) & 0xFFFF), sendbuf + total + 2, 298);
        if (n < 0) {
            fprintf(stderr, "dwq: cannot encode the name \"%s\"\n", name);
            goto out;
        }
        put16(sendbuf + total, (unsigned)n);
        total += 2 + (size_t)n;
    }
    struct opts tcp = *o;
    tcp.tcp = true;
    if (open_socket(&tcp, &fd) < 0)
        goto out;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    int64_t start = now_ms();
    int64_t deadline = start + (int64_t)(o->wait_s * 1000);
    size_t written = 0;
    static uint8_t rbuf[2 * MAX_MSG + 2];
    size_t rlen = 0;
    unsigned long answered = 0, mismatched = 0, outoforder = 0, dup = 0;
    unsigned long rc_count[17] = {0};
    enum { MAX_ADDRS = 8 };
    uint8_t addrs[MAX_ADDRS][4];
    unsigned long addr_count[MAX_ADDRS] = {0}, addr_other = 0;
    unsigned naddrs = 0;
    long highest = -1;
    bool closed = false;
    while (answered < count && !closed && now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (written < total)
            pfd.events |= POLLOUT;
        int pr = poll(&pfd, 1, remaining_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        if ((pfd.revents & POLLOUT) && written < total) {
            ssize_t n = send(fd, sendbuf + written, total - written, MSG_NOSIGNAL);
            if (n > 0)
                written += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                closed = true;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, rbuf + rlen, sizeof rbuf - rlen, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                closed = true;
            } else if (n > 0) {
                rlen += (size_t)n;
            }
            size_t p = 0;
            while (rlen - p >= 2 && rlen - p >= 2 + (size_t)get16(rbuf + p)) {
                size_t mlen = get16(rbuf + p);
                const uint8_t *m = rbuf + p + 2;
                p += 2 + mlen;
                if (mlen < HDR) {
                    mismatched++;
                    continue;
                }
                unsigned long idx = (get16(m) - base) & 0xFFFF;
                if (idx >= count) {
                    mismatched++;
                    continue;
                }
                const uint8_t *q = sendbuf + qoff[idx] + 2;
                size_t ql = get16(sendbuf + qoff[idx]);
                if (strcmp(compare_qname(q, ql, m, mlen), "exact") != 0 ||
                    !(get16(m + 2) & 0x8000)) {
                    mismatched++;
                    continue;
                }
                if (state[idx]) {
                    dup++;
                    continue;
                }
                state[idx] = 1;
                answered++;
                if ((long)idx < highest)
                    outoforder++;
                else
                    highest = (long)idx;
                struct summary s;
                walk_reply(m, mlen, false, &s);
                rc_count[s.rcode < 16 ? s.rcode : 16]++;
                if (s.has_a) {
                    unsigned k = 0;
                    while (k < naddrs && memcmp(addrs[k], s.first_a, 4) != 0)
                        k++;
                    if (k == naddrs && naddrs < MAX_ADDRS)
                        memcpy(addrs[naddrs++], s.first_a, 4);
                    if (k < naddrs)
                        addr_count[k]++;
                    else
                        addr_other++;
                }
            }
            memmove(rbuf, rbuf + p, rlen - p);
            rlen -= p;
        }
    }
    int64_t elapsed = now_ms() - start;
    printf("sent=%lu written=%s answered=%lu mismatched=%lu dup=%lu outoforder=%lu rcodes=", count,
           written == total ? "all" : "partial", answered, mismatched, dup, outoforder);
    bool first = true;
    for (unsigned i = 0; i < 17; i++) {
        if (!rc_count[i])
            continue;
        char rc[16];
        rcode_name(i, rc, sizeof rc);
        printf("%s%s:%lu", first ? "" : ",", i == 16 ? "OTHER" : rc, rc_count[i]);
        first = false;
    }
    printf("%s addrs=", first ? "none" : "");
    for (unsigned k = 0; k < naddrs; k++)
        printf("%s%u.%u.%u.%u:%lu", k ? "," : "", addrs[k][0], addrs[k][1], addrs[k][2],
               addrs[k][3], addr_count[k]);
    if (addr_other)
        printf("%sother:%lu", naddrs ? "," : "", addr_other);
    printf("%s time_ms=%lld%s\n", naddrs || addr_other ? "" : "none", (long long)elapsed,
           closed ? " closed=yes" : "");
    ret = (answered == count && mismatched == 0 && dup == 0) ? EXIT_OK : EXIT_NOANSWER;
out:
    if (fd >= 0)
        close(fd);
    free(name);
    free(sendbuf);
    free(qoff);
    free(state);
    return ret;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .server = "127.0.0.1",
        .port = "53",
        .bufsize = 1232,
        .id = -1,
        .wait_s = 5,
        .qtype = 1,
    };
    int c;
    while ((c = getopt(argc, argv, "tp:s:n:edb:x:ri:w:h")) != -1) {
        char *end;
        switch (c) {
        case 't':
            o.tcp = true;
            break;
        case 'r':
            o.raw_stream = true;
            break;
        case 'p':
            o.port = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case 'n':
            o.count = strtoul(optarg, &end, 10);
            if (*end || o.count == 0 || o.count > 65536) {
                fprintf(stderr, "dwq: -n wants 1..65536\n");
                return EXIT_USAGE;
            }
            break;
        case 'e':
            o.edns = true;
            break;
        case 'd':
            o.edns = o.dobit = true;
            break;
        case 'b': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v > 65535) {
                fprintf(stderr, "dwq: -b wants 0..65535\n");
                return EXIT_USAGE;
            }
            o.bufsize = (unsigned)v;
            o.edns = true;
            break;
        }
        case 'x':
            o.hex = optarg;
            break;
        case 'i': {
            long v = strtol(optarg, &end, 0);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "dwq: -i wants 0..65535\n");
                return EXIT_USAGE;
            }
            o.id = v;
            break;
        }
        case 'w':
            o.wait_s = strtod(optarg, &end);
            if (*end || o.wait_s <= 0) {
                fprintf(stderr, "dwq: -w wants a positive number of seconds\n");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage();
            return EXIT_OK;
        default:
            usage();
            return EXIT_USAGE;
        }
    }
    srandom((unsigned)(time(NULL) ^ (getpid() << 8)));
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.hex) {
        if (optind != argc) {
            usage();
            return EXIT_USAGE;
        }
        return run_raw(&o);
    }
    if (optind >= argc || argc - optind > 2) {
        usage();
        return EXIT_USAGE;
    }
    o.name = argv[optind];
    if (argc - optind == 2 && parse_type(argv[optind + 1], &o.qtype) < 0) {
        fprintf(stderr, "dwq: unknown type %s\n", argv[optind + 1]);
        return EXIT_USAGE;
    }
    if (o.count)
        return run_pipeline(&o);
    return run_one(&o);
}
