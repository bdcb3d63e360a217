"""Per-link TCP proxy in front of every node's raft port, for partitions.

Each node advertises 127.0.2.<id>:PORT to its peers and listens on
127.0.1.<id>:PORT (flipd --raft-bind); this proxy listens on the advertised
address and forwards to the real one. It reads libraft's connection
handshake (u64 protocol, u64 sender id, u64 padded address length, then
the address; little endian) to learn which node is calling, so it can cut individual links.

A cut link is paused, not reset: bytes are neither read nor forwarded in
either direction, as when packets are dropped and TCP keeps retrying; on
heal they flow again. Connections opened across a cut wait for the heal.
Only loopback addresses are used. Client links are never cut here (every
client reaches every node), and there is no one-way drop, loss or delay:
those need the netns mode (tests/chaos/netns.py).
"""
import asyncio
import struct
import threading

HANDSHAKE_FIXED = 24  # protocol, id, address length


class LinkProxy:
    mode = "proxy"
    features = ("partition",)

    def __init__(self, nodes, port):
        """nodes: iterable of node ids; port: the raft port of every node."""
        self.nodes = list(nodes)
        self.port = port
        self.blocked = set()  # (src, dst) pairs that are cut
        self.reset = False    # cut links are closed (reset), not paused
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.servers = []
        self.links = []  # live (src, dst, pause_event)
        self.ready = threading.Event()
        self.bytes = 0

    # ---- control, from the harness thread ---------------------------------

    def start(self):
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("proxy did not start")

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def set_blocked(self, pairs, reset=False):
        """Replaces the set of cut (src, dst) links; both directions of a
        TCP connection stop when either direction is cut. reset: instead of
        pausing them, close their connections and every new one at once (a
        peer then reconnects as soon as the cut heals, with nothing stale
        held back)."""
        pairs = set(pairs)
        self.loop.call_soon_threadsafe(self._apply, pairs, reset)

    def isolate(self, node):
        others = [n for n in self.nodes if n != node]
        return {(node, o) for o in others} | {(o, node) for o in others}

    def split(self, side_a, side_b):
        return {(a, b) for a in side_a for b in side_b} | {(b, a) for a in side_a for b in side_b}

    def heal(self):
        self.set_blocked(set())

    # ---- addresses (the same questions netns.NetnsNet answers) ---------------

    def client_host(self, i):
        return "127.0.0.1"

    def raft_addr(self, i, port):
        return f"127.0.2.{i}:{port}"  # this proxy

    def raft_bind(self, i, port):
        return f"127.0.1.{i}:{port}"

    def node_prefix(self, i):
        return []

    def client_source(self, home):
        return None

    def sub_prefix(self, home):
        return []

    def cut_off(self, home, node):
        return False  # client links are never cut here

    # ---- the proxy itself ------------------------------------------------

    def _run(self):
        asyncio.set_event_loop(self.loop)
        for n in self.nodes:
            srv = self.loop.run_until_complete(
                asyncio.start_server(lambda r, w, dst=n: self._accept(r, w, dst),
                                     f"127.0.2.{n}", self.port))
            self.servers.append(srv)
        self.ready.set()
        self.loop.run_forever()

    def _apply(self, pairs, reset=False):
        self.blocked = pairs
        self.reset = reset
        for (src, dst, ev, conns) in list(self.links):
            if (src, dst) in pairs or (dst, src) in pairs:
                ev.clear()
                if reset:
                    for w in conns:
                        w.transport.abort()
            else:
                ev.set()

    def _open(self, src, dst):
        return (src, dst) not in self.blocked and (dst, src) not in self.blocked

    async def _accept(self, reader, writer, dst):
        up_w = None
        link = None
        try:
            hdr = await asyncio.wait_for(reader.readexactly(HANDSHAKE_FIXED), 10)
            _, src, alen = struct.unpack("<QQQ", hdr)
            if alen > 4096:
                raise ValueError("not a raft handshake")
            # the length is already padded to 8 bytes by the sender
            rest = await asyncio.wait_for(reader.readexactly(alen), 10)
            gate = asyncio.Event()
            if self._open(src, dst):
                gate.set()
            elif self.reset:
                return
            conns = [writer]
            link = (src, dst, gate, conns)
            self.links.append(link)
            await gate.wait()
            up_r, up_w = await asyncio.open_connection(f"127.0.1.{dst}", self.port)
            conns.append(up_w)
            up_w.write(hdr + rest)
            await asyncio.gather(self._pump(reader, up_w, gate),
                                 self._pump(up_r, writer, gate))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            pass
        finally:
            if link in self.links:
                self.links.remove(link)
            for w in (writer, up_w):
                if w is not None:
                    try:
                        w.close()
                    except OSError:
                        pass

    async def _pump(self, reader, writer, gate):
        try:
            while True:
                await gate.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await gate.wait()
                writer.write(data)
                self.bytes += len(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.close()
            except OSError:
                pass
