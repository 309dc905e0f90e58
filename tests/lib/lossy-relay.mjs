// A UDP relay that drops a share of the RTP packets passing through it, both ways: the
// loss a real network adds, which this kernel's tc cannot (no netem). The server is
// started with its media bound to one loopback address and advertising another
// (`--media-ip 127.0.0.1 --public-ip 127.0.0.2`, same port); the relay listens on the
// advertised address and forwards to the real one, so every browser's media passes it.
//
// Only RTP is dropped: STUN, DTLS and RTCP pass (RFC 7983 demultiplexing on the first
// byte, RFC 5761 on the second), so connections come up and feedback flows; what is
// lost is media, which retransmission must repair.
import { createSocket } from "node:dgram";

/** A UDP port free on 127.0.0.1 now (the server binds it a moment later). */
export async function freeUdpPort() {
  const s = createSocket("udp4");
  await new Promise((ok, fail) => { s.once("error", fail); s.bind(0, "127.0.0.1", ok); });
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

/** Whether a datagram is RTP (not STUN, DTLS or RTCP). */
export function isRtp(buf) {
  if (buf.length < 12 || buf[0] < 128 || buf[0] > 191) return false;
  const pt = buf[1];
  return pt < 192 || pt > 223;
}

/**
 * `listen` and `target`: {host, port}. `loss`: the share of RTP packets dropped in
 * each direction (0..1), changeable with `setLoss`. `random`: a source of numbers in
 * [0, 1), Math.random unless given.
 */
export async function startLossyRelay({ listen, target, loss = 0, random = Math.random }) {
  const front = createSocket("udp4");
  await new Promise((ok, fail) => { front.once("error", fail); front.bind(listen.port, listen.host, ok); });
  // One upstream socket per client address, so the server sees each client apart and
  // its replies find their way back.
  const clients = new Map();
  const counts = { rtp: 0, dropped: 0, other: 0 };
  const pass = (buf) => {
    if (!isRtp(buf)) { counts.other++; return true; }
    counts.rtp++;
    if (random() < loss) { counts.dropped++; return false; }
    return true;
  };
  front.on("message", (buf, from) => {
    const key = `${from.address}:${from.port}`;
    let up = clients.get(key);
    if (!up) {
      up = createSocket("udp4");
      up.bind(0, "127.0.0.1");
      up.on("message", (back) => { if (pass(back)) front.send(back, from.port, from.address); });
      up.on("error", () => {});
      clients.set(key, up);
    }
    if (pass(buf)) up.send(buf, target.port, target.host);
  });
  front.on("error", () => {});
  return {
    counts,
    setLoss(p) { loss = p; },
    async stop() {
      for (const up of clients.values()) up.close();
      await new Promise((ok) => front.close(ok));
    },
  };
}
