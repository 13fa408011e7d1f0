/* idmap: the DNS IDs in use on one upstream connection, each mapped to what waits for it.
 *
 * A fixed-capacity open-addressing hash table (linear probing, backward-shift deletion),
 * sized when it is created for at most `max` entries, so it never grows and a lookup
 * never allocates. Pure: no I/O; the caller picks the random IDs.
 */
#ifndef DNSWARD_IDMAP_H
#define DNSWARD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
    void *value; /* NULL: empty */
    uint16_t id;
};

struct idmap {
    struct idmap_slot *slots;
    size_t mask; /* capacity - 1, capacity a power of two of at least 2 * max */
    size_t count;
    size_t max;
};

/* Prepare *m for at most max (1..32768) entries. Returns 0, -EINVAL or -ENOMEM. */
int idmap_init(struct idmap *m, size_t max);

/* Release the table (not the values). */
void idmap_cleanup(struct idmap *m);

/* Map id to value (non-NULL, borrowed). Returns 0, -EEXIST if id is in use, or -ENOSPC if
 * the map holds max entries. */
int idmap_insert(struct idmap *m, uint16_t id, void *value);

/* The value mapped to id, or NULL. */
void *idmap_find(const struct idmap *m, uint16_t id);

/* Remove id and return its value, or NULL if it was not mapped. */
void *idmap_remove(struct idmap *m, uint16_t id);

static inline size_t idmap_count(const struct idmap *m)
{
    return m->count;
}

static inline int idmap_full(const struct idmap *m)
{
    return m->count >= m->max;
}

#endif
