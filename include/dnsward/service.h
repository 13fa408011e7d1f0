/* service: what a service manager (systemd, an init script, a container runtime) needs
 * of the daemon: readiness and reload notification, sockets it passes in (socket
 * activation), and giving up root once the sockets are bound.
 *
 * Notification follows sd_notify(3): with libsystemd when the build found it, otherwise
 * the same datagram written to $NOTIFY_SOCKET by hand; without $NOTIFY_SOCKET nothing is
 * sent. Socket activation follows sd_listen_fds(3): the descriptors from 3 on that
 * $LISTEN_FDS names, when $LISTEN_PID is this process. They are adopted by listener.c:
 * listener_socket() hands out an adopted socket of the same type bound to the same
 * address instead of binding a new one, so a unit may bind port 53 for a process that
 * never had the right to.
 */
#ifndef DNSWARD_SERVICE_H
#define DNSWARD_SERVICE_H

#include <stddef.h>

/* Tell the service manager about a state change: "READY=1", "RELOADING=1",
 * "STOPPING=1", "STATUS=...", several separated by newlines (sd_notify(3)). A RELOADING=1
 * gets the MONOTONIC_USEC= (CLOCK_MONOTONIC, in microseconds) that systemd 253 and later
 * ask for. After service_drop_privileges, the message goes through a socket connected
 * before the drop, since the path in $NOTIFY_SOCKET may be out of reach then (a chroot).
 * Returns 1 if sent, 0 if there is no service manager to tell, or -errno (also logged,
 * rate-limited); never fatal to the caller. */
int service_notify(const char *state);

/* Adopt the sockets passed by socket activation (see above) for listener_socket(), each
 * made close-on-exec and logged (info). Call it before any listener is created. Unsets
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so children do not see them. Returns the
 * number adopted (0 without socket activation) or -errno with a reason in err: malformed
 * variables, a descriptor that is not a bound UDP or TCP socket of IPv4 or IPv6, or more
 * than LISTENER_MAX_ADOPTED of them. */
int service_adopt_sockets(char *err, size_t errlen);

/* Close the adopted sockets that no listener took, logging each once (warning) as unused
 * (the unit passes an address the configuration does not listen on). Call it once every
 * listener is created. Returns how many. */
int service_close_unused_sockets(void);

/* Give up root after the sockets are bound and every file needed is read: look user up
 * and set its supplementary groups (both read the databases in /etc), chroot to
 * chroot_dir (unless "" or NULL) and chdir("/"), then set its gid and uid (real,
 * effective and saved), and check that root cannot be regained. When run as root with no
 * user, logs a warning that it keeps running as root and returns 0; a user that is root
 * itself is warned about too. When not root: a user that is the current one is fine
 * (nothing to give up; chroot_dir is still tried), another fails. Returns 0 or -errno
 * with a reason in err ("user 'dnsward': no such user"). */
int service_drop_privileges(const char *user, const char *chroot_dir, char *err, size_t errlen);

#endif
