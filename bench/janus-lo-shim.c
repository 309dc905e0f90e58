/* LD_PRELOAD shim for the Janus benchmark only: Janus 1.1.2 skips every interface flagged
 * IFF_LOOPBACK when it lists addresses for ICE (src/ice.c), and libnice's own fallback
 * skips loopback too, so on a loopback-only benchmark Janus would gather no 127.0.0.1
 * candidate. This wrapper clears that one flag on `lo` in getifaddrs() results; nothing
 * else changes. libnice then binds its sockets to 127.0.0.1 and pins them to `lo`
 * (IP_UNICAST_IF), so all media stays on 127.0.0.0/8. Janus calls getifaddrs once per
 * new handle, so the wrapper costs nothing measurable. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = NULL;
    if (!real)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int r = real(ifap);
    if (r == 0) {
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) {
            if (i->ifa_name && strcmp(i->ifa_name, "lo") == 0)
                i->ifa_flags &= ~IFF_LOOPBACK;
        }
    }
    return r;
}
