/* service: notification, socket activation and the privilege drop. See
 * include/dnsward/service.h.
 *
 * The notification protocol is small enough to speak by hand (one datagram of
 * "KEY=VALUE" lines to the AF_UNIX socket in $NOTIFY_SOCKET, sd_notify(3)), and so is
 * socket activation (descriptors 3 .. 3+$LISTEN_FDS-1 when $LISTEN_PID is ours,
 * sd_listen_fds(3)); with libsystemd the build uses its functions, which follow every
 * later extension of both.
 */
#include "dnsward/service.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef DNSWARD_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "dnsward/config.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"

enum {
    SERVICE_NOTIFY_MAX = 1024, /* a state with the MONOTONIC_USEC= added */
    SERVICE_LISTEN_FDS_START = 3,
};

/* A socket connected to $NOTIFY_SOCKET before the privileges were dropped: the socket's
 * path may be out of reach afterwards (outside the chroot, or in a directory the new user
 * cannot enter), but a connected datagram socket keeps its peer. -1 until then. */
static int notify_fd = -1;

/* The address in $NOTIFY_SOCKET: a path, or an abstract name written with a leading '@'.
 * Returns 1 and the address, 0 when the variable is unset or empty, or -errno. */
static int notify_addr(struct sockaddr_un *sun, socklen_t *len)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (e == NULL || e[0] == '\0')
        return 0;
    size_t n = strlen(e);
    if (e[0] != '/' && e[0] != '@')
        return -EAFNOSUPPORT; /* vsock: addresses (systemd 254) are not spoken here */
    if (n > sizeof(sun->sun_path))
        return -ENAMETOOLONG;
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, e, n);
    /* An abstract name starts with a NUL and is exactly as long as the address says:
     * no terminating NUL is part of it. */
    if (e[0] == '@')
        sun->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return 1;
}

/* Whether state holds the line "RELOADING=1". */
static bool state_is_reloading(const char *state)
{
    static const char line[] = "RELOADING=1";
    for (const char *p = state; (p = strstr(p, line)) != NULL; p++) {
        char after = p[sizeof(line) - 1];
        if ((p == state || p[-1] == '\n') && (after == '\0' || after == '\n'))
            return true;
    }
    return false;
}

#ifndef DNSWARD_HAVE_LIBSYSTEMD
/* Send msg to $NOTIFY_SOCKET on a socket of its own. Returns 1, 0 or -errno as
 * service_notify. */
static int notify_send(const char *msg, size_t len)
{
    struct sockaddr_un sun;
    socklen_t slen;
    int rc = notify_addr(&sun, &slen);
    if (rc <= 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = 1;
    if (sendto(fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&sun, slen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}
#endif

int service_notify(const char *state)
{
    static struct log_limit lim = LOG_LIMIT_INIT(60, 3);
    char msg[SERVICE_NOTIFY_MAX];
    int n;
    if (state_is_reloading(state)) {
        /* systemd 253 (Type=notify-reload) wants to know which reload a later READY=1
         * ends: the time the reload began, on CLOCK_MONOTONIC, in microseconds. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        n = snprintf(msg, sizeof(msg), "%s\nMONOTONIC_USEC=%" PRIu64, state,
                     (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    } else {
        n = snprintf(msg, sizeof(msg), "%s", state);
    }
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EMSGSIZE;

    int rc;
    if (notify_fd >= 0) {
        rc = send(notify_fd, msg, (size_t)n, MSG_NOSIGNAL) < 0 ? -errno : 1;
    } else {
#ifdef DNSWARD_HAVE_LIBSYSTEMD
        rc = sd_notify(0, msg);
#else
        rc = notify_send(msg, (size_t)n);
#endif
    }
    if (rc < 0) {
        /* The first line names the state ("READY=1"); the rest is detail. */
        log_limited(&lim, LOG_WARNING, "cannot notify the service manager of %.*s: %s",
                    (int)strcspn(state, "\n"), state, strerror(-rc));
    }
    return rc;
}

/* Connect notify_fd to $NOTIFY_SOCKET while its path can still be reached. Returns 0
 * (also when there is no $NOTIFY_SOCKET) or -errno. */
static int notify_keep(void)
{
    struct sockaddr_un sun;
    socklen_t slen;
    int rc = notify_addr(&sun, &slen);
    if (rc <= 0 || notify_fd >= 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&sun, slen) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    notify_fd = fd;
    return 0;
}

/* The number of sockets passed to this process (sd_listen_fds(3) with
 * unset_environment), each made close-on-exec; 0 without socket activation, or -errno. */
static int listen_fds(void)
{
#ifdef DNSWARD_HAVE_LIBSYSTEMD
    return sd_listen_fds(1);
#else
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    int n = 0;
    if (pid_s != NULL && fds_s != NULL) {
        char *end;
        errno = 0;
        unsigned long pid = strtoul(pid_s, &end, 10);
        if (errno != 0 || end == pid_s || *end != '\0') {
            n = -EINVAL;
            goto out;
        }
        /* The variables were meant for another process (a parent that passed its
         * environment on): not ours. */
        if (pid != (unsigned long)getpid())
            goto out;
        errno = 0;
        long fds = strtol(fds_s, &end, 10);
        if (errno != 0 || end == fds_s || *end != '\0' || fds < 0 ||
            fds > INT_MAX - SERVICE_LISTEN_FDS_START) {
            n = -EINVAL;
            goto out;
        }
        for (int fd = SERVICE_LISTEN_FDS_START; fd < SERVICE_LISTEN_FDS_START + fds; fd++) {
            if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
                n = -errno;
                goto out;
            }
        }
        n = (int)fds;
    }
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
#endif
}

/* "udp 127.0.0.1:53" for a socket, for the logs. */
static void describe_socket(int fd, char *out, size_t cap)
{
    int type = 0;
    socklen_t tlen = sizeof(type);
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    char where[64] = "?";
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen);
    if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
        config_format_addr((const struct sockaddr *)&ss, where, sizeof(where));
    snprintf(out, cap, "%s %s",
             type == SOCK_DGRAM    ? "udp"
             : type == SOCK_STREAM ? "tcp"
                                   : "?",
             where);
}

int service_adopt_sockets(char *err, size_t errlen)
{
    int n = listen_fds();
    if (n < 0) {
        snprintf(err, errlen, "socket activation: LISTEN_PID/LISTEN_FDS: %s", strerror(-n));
        return n;
    }
    for (int fd = SERVICE_LISTEN_FDS_START; fd < SERVICE_LISTEN_FDS_START + n; fd++) {
        int rc = listener_adopt(fd);
        if (rc == -ENOSPC) {
            snprintf(err, errlen, "socket activation: %d sockets passed in, at most %d are taken",
                     n, LISTENER_MAX_ADOPTED);
            return rc;
        }
        if (rc < 0) {
            snprintf(err, errlen,
                     "socket activation: descriptor %d is not a bound UDP or TCP socket of IPv4 "
                     "or IPv6",
                     fd);
            return rc;
        }
        char what[96];
        describe_socket(fd, what, sizeof(what));
        log_info("socket activation: %s passed in", what);
    }
    return n;
}

int service_close_unused_sockets(void)
{
    int fd, n = 0;
    while ((fd = listener_adopted_take_unused()) >= 0) {
        char what[96];
        describe_socket(fd, what, sizeof(what));
        log_warn("socket activation: %s was passed in, but no listener is configured there; "
                 "closed",
                 what);
        close(fd);
        n++;
    }
    return n;
}

/* The privilege drop proper, as root: groups, chroot, gid, uid, in this order. initgroups
 * reads the group database, so it comes before the chroot; the chroot needs root, so it
 * comes before setuid. */
static int drop_root(const char *user, uid_t uid, gid_t gid, const char *chroot_dir, char *err,
                     size_t errlen)
{
    if (initgroups(user, gid) != 0) {
        int e = errno;
        snprintf(err, errlen, "user '%s': initgroups: %s", user, strerror(e));
        return -e;
    }
    if (chroot_dir != NULL && chroot_dir[0] != '\0') {
        if (chroot(chroot_dir) != 0 || chdir("/") != 0) {
            int e = errno;
            snprintf(err, errlen, "chroot '%s': %s", chroot_dir, strerror(e));
            return -e;
        }
    }
    /* All three ids (real, effective, saved), so that none is left to switch back to. */
    if (setresgid(gid, gid, gid) != 0) {
        int e = errno;
        snprintf(err, errlen, "user '%s': setgid %u: %s", user, (unsigned)gid, strerror(e));
        return -e;
    }
    if (setresuid(uid, uid, uid) != 0) {
        int e = errno;
        snprintf(err, errlen, "user '%s': setuid %u: %s", user, (unsigned)uid, strerror(e));
        return -e;
    }
    /* A drop that can be undone is no drop (a kernel or a security module that let a
     * part of it fail quietly): make sure root is out of reach now. */
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid ||
                     getgid() != gid || getegid() != gid)) {
        snprintf(err, errlen, "user '%s': root could be regained after the switch", user);
        return -EPERM;
    }
    /* No PR_SET_NO_NEW_PRIVS here: it guards execve, and dnsward never executes anything;
     * a unit sets it anyway (NoNewPrivileges=yes). */
    return 0;
}

int service_drop_privileges(const char *user, const char *chroot_dir, char *err, size_t errlen)
{
    bool has_user = user != NULL && user[0] != '\0';
    bool has_chroot = chroot_dir != NULL && chroot_dir[0] != '\0';
    if (!has_user) {
        if (has_chroot) {
            /* config_finish refuses this already: root can leave a chroot. */
            snprintf(err, errlen, "chroot: needs user (root can leave a chroot)");
            return -EINVAL;
        }
        if (geteuid() == 0)
            log_warn("running as root: set `user` (and `chroot`) to give up root once the "
                     "sockets are bound");
        return 0;
    }

    /* Before the chroot: the user database is outside it. getpwnam's result lives in a
     * static buffer, so take what is needed at once. */
    errno = 0;
    const struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        /* getpwnam(3): not found may come as 0, ENOENT, ESRCH, EBADF or EPERM. */
        int e = errno != 0 ? errno : ENOENT;
        snprintf(err, errlen, "user '%s': %s", user,
                 e == ENOENT || e == ESRCH || e == EBADF || e == EPERM ? "no such user"
                                                                       : strerror(e));
        return -e;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;

    if (geteuid() != 0) {
        /* Nothing to give up, and nothing to switch with: fine when the configuration
         * names the user this already runs as (a unit's User=), an error otherwise. */
        if (uid != geteuid() || uid != getuid()) {
            snprintf(err, errlen, "user '%s': cannot switch to it without root (running as uid %u)",
                     user, (unsigned)geteuid());
            return -EPERM;
        }
        if (has_chroot && (chroot(chroot_dir) != 0 || chdir("/") != 0)) {
            int e = errno;
            snprintf(err, errlen, "chroot '%s': %s", chroot_dir, strerror(e));
            return -e;
        }
        return 0;
    }

    int rc = notify_keep();
    if (rc < 0) {
        /* Not fatal: the service manager will time out waiting for READY=1 and say so. */
        log_warn("cannot connect to the service manager's notification socket: %s", strerror(-rc));
    }
    rc = drop_root(user, uid, gid, has_chroot ? chroot_dir : NULL, err, errlen);
    if (rc < 0)
        return rc;
    if (uid == 0)
        log_warn("user '%s' is root: nothing is given up", user);
    else
        log_notice("running as user %s (uid %u, gid %u)%s%s", user, (unsigned)uid, (unsigned)gid,
                   has_chroot ? ", chroot " : "", has_chroot ? chroot_dir : "");
    return 0;
}
