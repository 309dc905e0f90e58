#!/usr/bin/env bash
# Starts Janus 1.1.2 (Debian package) for benchmarks with a loopback-only config of its
# own, generated under a temp dir: HTTP transport on 127.0.0.1 only, VideoRoom only, no
# event handlers or loggers, low log level. Nothing under /etc is read or changed.
#
#   bench/janus.sh DIR PORT   writes the config to DIR, then execs janus in the
#                             foreground (so the caller's `$!` is Janus's own pid)
set -euo pipefail
DIR="${1:?usage: janus.sh DIR PORT}"
PORT="${2:?usage: janus.sh DIR PORT}"
JANUS="${JANUS_BIN:-/usr/bin/janus}"
LIBDIR="${JANUS_LIBDIR:-/usr/lib/x86_64-linux-gnu/janus}"
# Janus never gathers ICE candidates on a loopback interface; the shim makes it see `lo`
# as an ordinary one (see janus-lo-shim.c), so its candidates are 127.0.0.1.
mkdir -p "$DIR"
SHIM="$DIR/janus-lo-shim.so"
cc -shared -fPIC -O2 -o "$SHIM" "$(dirname "${BASH_SOURCE[0]}")/janus-lo-shim.c" -ldl
# Janus loads every .so it finds in its folders; folders holding only the two we want
# keep the other plugins, transports, event handlers and loggers out entirely.
mkdir -p "$DIR/conf" "$DIR/plugins" "$DIR/transports" "$DIR/events" "$DIR/loggers"
ln -sf "$LIBDIR/plugins/libjanus_videoroom.so" "$DIR/plugins/"
ln -sf "$LIBDIR/transports/libjanus_http.so" "$DIR/transports/"

cat > "$DIR/conf/janus.jcfg" <<CFG
general: {
	configs_folder = "$DIR/conf"
	plugins_folder = "$DIR/plugins"
	transports_folder = "$DIR/transports"
	events_folder = "$DIR/events"
	loggers_folder = "$DIR/loggers"
	debug_level = ${JANUS_DEBUG_LEVEL:-2}
	debug_colors = false
	# The load tool keeps its sessions alive; a dead tool's sessions go after 30 s.
	session_timeout = 30
}
media: {
	ipv6 = false
	rtp_port_range = "40000-59999"
}
nat: {
	# Loopback only: gather on lo (127.0.0.1) and nothing else, no STUN/TURN, no mDNS.
	# "lo" also matches names that start with it; a benchmark machine has none.
	ice_enforce_list = "lo"
	ignore_mdns = true
	full_trickle = false
	nice_debug = ${JANUS_NICE_DEBUG:-false}
}
plugins: {
}
transports: {
}
events: {
	broadcast = false
}
CFG

cat > "$DIR/conf/janus.transport.http.jcfg" <<CFG
general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = $PORT
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
CFG

# No static rooms: the load tool creates its own.
cat > "$DIR/conf/janus.plugin.videoroom.jcfg" <<CFG
general: {
}
CFG

LD_PRELOAD="$SHIM" exec "$JANUS" --interface=127.0.0.1 --config="$DIR/conf/janus.jcfg" --configs-folder="$DIR/conf" --disable-colors
