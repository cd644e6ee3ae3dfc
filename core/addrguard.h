/*
 * addrguard.h - keeps dynamic namespaces from reaching into the local network.
 *
 * A namespace that is not in the config is fetched from the host of its
 * name. Without a guard, any client could make the mirror connect to
 * 127.0.0.1, the cloud metadata address or a neighbour on the private
 * network (an open proxy, SSRF). Every address a connection to such a
 * namespace goes to - including after redirects - must be public. The
 * upstream client applies this in libcurl's socket-open callback, so the
 * check sees the address actually connected to, after DNS.
 */
#ifndef OCI_ADDRGUARD_H
#define OCI_ADDRGUARD_H

#include <stdbool.h>
#include <sys/socket.h>

/*
 * True when the address is a globally routable unicast address. Refused:
 * IPv4 0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12,
 * 192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15,
 * 198.51.100/24, 203.0.113/24, 224/4 (multicast), 240/4 and broadcast;
 * IPv6 ::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 2001:db8::/32,
 * 64:ff9b:1::/48, 100::/64, and IPv4-mapped/-compatible or NAT64
 * (64:ff9b::/96) addresses whose IPv4 part is refused. Other families are
 * refused.
 */
bool oci_addr_is_public(const struct sockaddr *sa, socklen_t len);

#endif
