/* idmap: see include/dnsward/idmap.h. */
#include "dnsward/idmap.h"

#include <errno.h>
#include <stdlib.h>

/* IDs are random, so the low bits are already a good hash; mixing them anyway keeps the
 * table sound if a caller ever hands out sequential IDs. */
static size_t idmap_hash(const struct idmap *m, uint16_t id)
{
    return ((size_t)id * 40503u >> 4) & m->mask;
}

int idmap_init(struct idmap *m, size_t max)
{
    if (max == 0 || max > 32768)
        return -EINVAL;
    size_t cap = 4;
    while (cap < 2 * max)
        cap <<= 1;
    m->slots = calloc(cap, sizeof(*m->slots));
    if (m->slots == NULL)
        return -ENOMEM;
    m->mask = cap - 1;
    m->count = 0;
    m->max = max;
    return 0;
}

void idmap_cleanup(struct idmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->count = 0;
}

int idmap_insert(struct idmap *m, uint16_t id, void *value)
{
    if (m->count >= m->max)
        return -ENOSPC;
    size_t i = idmap_hash(m, id);
    while (m->slots[i].value != NULL) {
        if (m->slots[i].id == id)
            return -EEXIST;
        i = (i + 1) & m->mask;
    }
    m->slots[i].value = value;
    m->slots[i].id = id;
    m->count++;
    return 0;
}

static size_t idmap_locate(const struct idmap *m, uint16_t id)
{
    size_t i = idmap_hash(m, id);
    while (m->slots[i].value != NULL) {
        if (m->slots[i].id == id)
            return i;
        i = (i + 1) & m->mask;
    }
    return SIZE_MAX;
}

void *idmap_find(const struct idmap *m, uint16_t id)
{
    if (m->slots == NULL)
        return NULL;
    size_t i = idmap_locate(m, id);
    return i == SIZE_MAX ? NULL : m->slots[i].value;
}

void *idmap_remove(struct idmap *m, uint16_t id)
{
    if (m->slots == NULL)
        return NULL;
    size_t i = idmap_locate(m, id);
    if (i == SIZE_MAX)
        return NULL;
    void *value = m->slots[i].value;
    /* Backward-shift deletion: move later members of the probe run into the hole when
     * their home slot does not lie cyclically between the hole and them, so that no
     * tombstones are needed and lookups stay short. */
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (m->slots[j].value == NULL)
            break;
        size_t home = idmap_hash(m, m->slots[j].id);
        int between = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
        if (between)
            continue;
        m->slots[hole] = m->slots[j];
        hole = j;
    }
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}
