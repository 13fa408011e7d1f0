/* base64: see include/dnsward/base64.h.
 *
 * The decoder is strict because what it decodes comes from the network (a DoH GET's dns=
 * parameter) or from a configuration (a DNS stamp): every byte string has exactly one
 * accepted encoding (RFC 4648 §3.5, canonical encoding), and the input is checked in full
 * before a byte is written, so a malformed input is -EINVAL whatever the capacity. */
#include "dnsward/base64.h"

#include <errno.h>
#include <limits.h>

static const char base64url_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of a character of the base64url alphabet (RFC 4648 §5, Table 2), or -1.
 * Written as ranges rather than a table indexed by char, so that no locale or signedness
 * of char can let '+', '/' or a byte above 0x7f through. */
static int base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    /* The result must be returnable as an int; a larger input cannot be encoded into any
     * buffer a caller could describe to us, so it does not fit either. */
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -ENOSPC;
    size_t n = base64url_encoded_len(len);
    if (cap < n + 1)
        return -ENOSPC;

    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = base64url_alphabet[v >> 18];
        out[o++] = base64url_alphabet[(v >> 12) & 0x3f];
        out[o++] = base64url_alphabet[(v >> 6) & 0x3f];
        out[o++] = base64url_alphabet[v & 0x3f];
    }
    /* The last 1 or 2 bytes make 2 or 3 characters, the unused bits zero, and no '='. */
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = base64url_alphabet[v >> 18];
        out[o++] = base64url_alphabet[(v >> 12) & 0x3f];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = base64url_alphabet[v >> 18];
        out[o++] = base64url_alphabet[(v >> 12) & 0x3f];
        out[o++] = base64url_alphabet[(v >> 6) & 0x3f];
    }
    out[o] = '\0';
    return (int)n;
}

int base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    /* Padding: one or two '=' that make the last group four characters long, so only
     * when the length is a multiple of 4, and never a whole group of them. */
    size_t pad = 0;
    if (len % 4 == 0 && len > 0 && in[len - 1] == '=') {
        pad = in[len - 2] == '=' ? 2 : 1;
        len -= pad;
    }
    /* One character holds 6 bits, less than a byte: a last group of one character is
     * never the end of an encoding (RFC 4648 §4). A padded group keeps 2 or 3. */
    size_t rem = len % 4;
    if (rem == 1 || (pad > 0 && rem != 4 - pad))
        return -EINVAL;

    /* Everything is checked before anything is written; a '=' left in the input is not in
     * the alphabet, which is what refuses padding in the middle or too much of it. */
    for (size_t i = 0; i < len; i++) {
        if (base64url_value(in[i]) < 0)
            return -EINVAL;
    }
    /* The bits of the last character that no byte uses must be zero (RFC 4648 §3.5):
     * 4 of them after 2 characters, 2 after 3. */
    if (rem == 2 && (base64url_value(in[len - 1]) & 0x0f) != 0)
        return -EINVAL;
    if (rem == 3 && (base64url_value(in[len - 1]) & 0x03) != 0)
        return -EINVAL;

    size_t n = len / 4 * 3 + (rem ? rem - 1 : 0);
    if (n > cap || n > (size_t)INT_MAX)
        return -ENOSPC;

    size_t o = 0;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t v =
            (uint32_t)base64url_value(in[i]) << 18 | (uint32_t)base64url_value(in[i + 1]) << 12 |
            (uint32_t)base64url_value(in[i + 2]) << 6 | (uint32_t)base64url_value(in[i + 3]);
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem >= 2) {
        uint32_t v = (uint32_t)base64url_value(in[i]) << 18 | (uint32_t)base64url_value(in[i + 1])
                                                                  << 12;
        if (rem == 3)
            v |= (uint32_t)base64url_value(in[i + 2]) << 6;
        out[o++] = (uint8_t)(v >> 16);
        if (rem == 3)
            out[o++] = (uint8_t)(v >> 8);
    }
    return (int)n;
}
