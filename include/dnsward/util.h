/* util: the few macros every module uses. */
#ifndef DNSWARD_UTIL_H
#define DNSWARD_UTIL_H

#include <stddef.h>

/* The struct that embeds member, from a pointer to that member. */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
