// Per-member TCP proxies that control every ordered pair of nodes (members and clients).
//
// Every node (data member, lite client) dials from its own loopback source address (127.0.0.x),
// so when a connection reaches the proxy in front of node B, its remote address says who dialled:
// node A. The bytes A writes on it are the link A→B ("upstream"), the bytes B answers are B→A
// ("downstream"). shardgrid keeps one connection per pair whichever side dialled, so the rule of
// an ordered pair (from, to) applies to the upstream of connections A dialled to B's proxy and to
// the downstream of connections B dialled to A's proxy: both carry from→to bytes.
//
// A link is in one of three modes:
//   pass       bytes flow.
//   blackhole  connections are accepted and held, bytes from→to are silently dropped: the peer
//              sees timeouts, never a reset. A byte stream that lost bytes cannot resume (framing
//              and the session cipher are broken), so when such a link returns to pass, every
//              connection that dropped bytes is destroyed (as TCP would end it after its
//              retransmission timeout), and the nodes dial again.
//   reset      existing connections carrying from→to are destroyed (RST) and new ones refused.
import net from 'node:net';

/** @typedef {'pass' | 'blackhole' | 'reset'} LinkMode */

const MODES = new Set(['pass', 'blackhole', 'reset']);

/** Strips the IPv4-mapped prefix so '::ffff:127.0.0.11' and '127.0.0.11' name the same node. */
function plainIp(address) {
  return typeof address === 'string' && address.startsWith('::ffff:') ? address.slice(7) : address;
}

export class Network {
  constructor() {
    /** @type {Map<string, string>} source ip → node name */
    this.byIp = new Map();
    /** @type {Map<string, string>} node name → source ip */
    this.ipOf = new Map();
    /** @type {Map<string, LinkMode>} `${from}>${to}` → mode; absent = pass */
    this.rules = new Map();
    /** @type {Set<Proxy>} */
    this.proxies = new Set();
    /** counters for the report */
    this.stats = { accepted: 0, refused: 0, destroyed: 0, droppedBytes: 0, byLink: {} };
  }

  /** Registers a node and the source address it dials from. */
  addNode(name, ip) {
    if (this.ipOf.has(name) && this.ipOf.get(name) !== ip) throw new Error(`node ${name} already has the address ${this.ipOf.get(name)}`);
    if (this.byIp.has(ip) && this.byIp.get(ip) !== name) throw new Error(`address ${ip} already belongs to ${this.byIp.get(ip)}`);
    this.byIp.set(ip, name);
    this.ipOf.set(name, ip);
  }

  /** The node that dials from `ip`, or undefined (e.g. a status probe from 127.0.0.1). */
  nodeAt(ip) {
    return this.byIp.get(plainIp(ip));
  }

  nodes() {
    return [...this.ipOf.keys()];
  }

  /** @returns {LinkMode} */
  mode(from, to) {
    if (from === undefined || to === undefined) return 'pass';
    return this.rules.get(`${from}>${to}`) ?? 'pass';
  }

  /** Sets the mode of the ordered link from → to and applies it to live connections at once. */
  set(from, to, mode) {
    if (!MODES.has(mode)) throw new Error(`unknown link mode ${mode}`);
    if (from === to) return;
    const k = `${from}>${to}`;
    if (mode === 'pass') this.rules.delete(k);
    else this.rules.set(k, mode);
    for (const p of this.proxies) p.reapply();
  }

  /** Both directions between a and b. */
  setBoth(a, b, mode) {
    this.set(a, b, mode);
    this.set(b, a, mode);
  }

  /** Cuts `node` off from every other node in `others` (both ways). */
  isolate(node, others, mode = 'blackhole') {
    for (const o of others) if (o !== node) this.setBoth(node, o, mode);
  }

  /** One-way: `hearer` still receives from `speaker`, but nothing from `hearer` reaches `speaker`. */
  oneWay(hearer, speaker, mode = 'blackhole') {
    this.set(hearer, speaker, mode);
  }

  /** Split brain: every link between a node of one group and a node of another is cut both ways. */
  split(groups, mode = 'blackhole') {
    for (let i = 0; i < groups.length; i++)
      for (let j = i + 1; j < groups.length; j++) for (const a of groups[i]) for (const b of groups[j]) this.setBoth(a, b, mode);
  }

  /** Every link back to pass. */
  heal() {
    this.rules.clear();
    for (const p of this.proxies) p.reapply();
  }

  /** The active rules, as `from>to: mode` strings (for logs). */
  describe() {
    return [...this.rules].map(([k, m]) => `${k}:${m}`);
  }

  /**
   * Starts the proxy of node `name`: listens on 127.0.0.1:listenPort and forwards to
   * 127.0.0.1:targetPort. The target may change later (proxy.retarget) when a node restarts.
   */
  async proxy(name, listenPort, targetPort) {
    const p = new Proxy(this, name, listenPort, targetPort);
    await p.listen();
    this.proxies.add(p);
    return p;
  }

  async close() {
    await Promise.all([...this.proxies].map((p) => p.close()));
    this.proxies.clear();
  }
}

class Proxy {
  constructor(network, name, listenPort, targetPort) {
    this.network = network;
    this.name = name;
    this.listenPort = listenPort;
    this.targetPort = targetPort;
    /** @type {Set<Link>} */
    this.links = new Set();
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.listenPort, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.listenPort = this.server.address().port;
        resolve();
      });
    });
  }

  accept(socket) {
    const from = this.network.nodeAt(socket.remoteAddress);
    const link = new Link(this, socket, from);
    const name = `${from ?? `unknown(${socket.remoteAddress})`}>${this.name}`;
    this.network.stats.byLink[name] = (this.network.stats.byLink[name] ?? 0) + 1;
    if (link.upMode() === 'reset' || link.downMode() === 'reset') {
      this.network.stats.refused++;
      socket.resetAndDestroy();
      return;
    }
    this.network.stats.accepted++;
    this.links.add(link);
    link.start();
  }

  /** Applies changed rules to live connections: reset kills, blackhole→pass kills tainted ones. */
  reapply() {
    for (const l of [...this.links]) l.reapply();
  }

  async close() {
    for (const l of [...this.links]) l.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** One accepted connection and its upstream connection to the target. */
class Link {
  constructor(proxy, client, from) {
    this.proxy = proxy;
    this.client = client;
    this.from = from;
    this.to = proxy.name;
    this.upstream = undefined;
    this.taintedUp = false;
    this.taintedDown = false;
    this.closed = false;
  }

  upMode() {
    return this.proxy.network.mode(this.from, this.to);
  }

  downMode() {
    return this.proxy.network.mode(this.to, this.from);
  }

  start() {
    const up = net.connect({ host: '127.0.0.1', port: this.proxy.targetPort });
    this.upstream = up;
    up.setNoDelay(true);
    this.client.setNoDelay(true);
    const stats = this.proxy.network.stats;
    this.client.on('data', (chunk) => {
      if (this.closed) return;
      if (this.upMode() === 'pass') up.write(chunk);
      else {
        this.taintedUp = true;
        stats.droppedBytes += chunk.length;
      }
    });
    up.on('data', (chunk) => {
      if (this.closed) return;
      if (this.downMode() === 'pass') this.client.write(chunk);
      else {
        this.taintedDown = true;
        stats.droppedBytes += chunk.length;
      }
    });
    // a side that ends or fails ends the other; while blackholed, an end is a byte too: hold it
    const endFrom = (side) => () => {
      const mode = side === 'client' ? this.upMode() : this.downMode();
      if (mode === 'pass') this.destroy();
      else if (side === 'client') this.taintedUp = true;
      else this.taintedDown = true;
    };
    this.client.on('end', endFrom('client'));
    up.on('end', endFrom('upstream'));
    this.client.on('error', () => this.destroy());
    up.on('error', () => this.destroy());
    this.client.on('close', () => this.destroy());
    up.on('close', () => this.destroy());
    this.client.resume();
  }

  reapply() {
    if (this.closed) return;
    const up = this.upMode();
    const down = this.downMode();
    if (up === 'reset' || down === 'reset') return this.destroy(true);
    if ((up === 'pass' && this.taintedUp) || (down === 'pass' && this.taintedDown)) return this.destroy(true);
  }

  destroy(rst = false) {
    if (this.closed) return;
    this.closed = true;
    this.proxy.links.delete(this);
    if (rst) this.proxy.network.stats.destroyed++;
    if (rst && typeof this.client.resetAndDestroy === 'function' && !this.client.destroyed) this.client.resetAndDestroy();
    else this.client.destroy();
    if (this.upstream !== undefined) {
      if (rst && typeof this.upstream.resetAndDestroy === 'function' && !this.upstream.destroyed && this.upstream.readyState === 'open') this.upstream.resetAndDestroy();
      else this.upstream.destroy();
    }
  }
}

/** A free TCP port on 127.0.0.1 (asked from the OS, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
