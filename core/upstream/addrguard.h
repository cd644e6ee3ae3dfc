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
 * True when the address is a globally reachable unicast address, after
 * IANA's IPv4 and IPv6 special-purpose address registries. Refused: IPv4
 * 0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12, 192.0.0/24
 * (but for the anycast 192.0.0.9 and .10), 192.0.2/24, 192.88.99/24,
 * 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 (multicast),
 * 240/4 and broadcast; IPv6 outside 2000::/3 (::, ::1, the deprecated
 * IPv4-compatible and SIIT forms, 64:ff9b:1::/48, 100::/64, 100:0:0:1::/64,
 * 5f00::/16, fc00::/7, fe80::/10, fec0::/10, ff00::/8...) and inside it
 * 2001::/23 (but for its globally reachable parts: 2001:1::1 to ::3,
 * 2001:3::/32, 2001:4:112::/48, 2001:20::/28, 2001:30::/28), 2001:db8::/32,
 * 3fff::/20. IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) and 6to4
 * (2002::/16) addresses are judged by the IPv4 address they carry, Teredo
 * (2001::/32) by both its server and its client address. Other families
 * are refused.
 */
bool oci_addr_is_public(const struct sockaddr *sa, socklen_t len);

#endif
