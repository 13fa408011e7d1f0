/* base64: the base64url encoding of RFC 4648 §5 without padding, as DoH's GET requests
 * (RFC 8484 §6) and DNS stamps carry DNS messages and stamps.
 *
 * Pure: bytes in, bytes out; no allocation, no I/O.
 */
#ifndef DNSWARD_BASE64_H
#define DNSWARD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* The encoded length of n bytes (without padding), not counting a terminating NUL. */
static inline size_t base64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Encode len bytes of in as base64url without padding into out, NUL-terminated.
 * Returns the encoded length, or -ENOSPC if cap < base64url_encoded_len(len) + 1. */
int base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* Decode len characters of base64url (the alphabet A-Z a-z 0-9 - _) into out. Padding
 * ('=') is accepted only where it completes the last group (as some encoders send it);
 * any other character, a length that leaves 1 character in the last group, or non-zero
 * unused bits in the last character (a non-canonical encoding) is an error. Returns the
 * decoded length, -EINVAL for malformed input, or -ENOSPC if it does not fit in cap. */
int base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
