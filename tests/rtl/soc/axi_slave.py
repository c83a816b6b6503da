"""A behavioural AXI4 memory (a subordinate) for the Amaranth simulator, with a protocol
checker: random ready/valid gaps on all five channels and a random latency before each
read burst's data, and assertions that the manager keeps AXI's rules — stable valid payloads, INCR bursts of 4-byte beats within one 4 KB
page and ``max_burst`` beats, ``wlast`` on exactly the last beat.

Writes land in ``memory`` when their last W beat arrives (before B).  A read burst takes
its data from ``memory`` either when its AR is accepted or beat by beat as the R beats
are first offered (chosen at random per burst: a memory may do either), so a manager that
lets a read overtake an earlier write, or a write an earlier read, reads a wrong value.
"""

from dataclasses import dataclass, field


@dataclass
class AxiMemory:
    """State of one simulated AXI memory.

    Attributes
    ----------
    memory : dict
        Word address → value; absent words read as ``initial(addr)``.
    read_bursts, write_bursts : list of (word address, beats)
        Every accepted AR and AW, in order.
    stall : float
        Probability that a channel pauses in a cycle.
    latency : int
        Most cycles between an AR and its first R beat (random, uniform).
    """
    axi: object
    rng: object
    max_burst: int
    stall: float = 0.3
    latency: int = 24
    memory: dict = field(default_factory=dict)
    read_bursts: list = field(default_factory=list)
    write_bursts: list = field(default_factory=list)

    @staticmethod
    def initial(addr):
        return (addr * 0x9E3779B1 + 0x1234) & 0xFFFF_FFFF

    def read(self, addr):
        return self.memory.get(addr, self.initial(addr))

    def _check_burst(self, byte_addr, length, burst, size, channel):
        beats = length + 1
        assert byte_addr % 4 == 0, f"{channel}: unaligned address {byte_addr:#x}"
        assert burst == 1 and size == 2, f"{channel}: burst {burst}, size {size} (INCR, 4 B)"
        assert beats <= self.max_burst, f"{channel}: {beats} beats > max_burst {self.max_burst}"
        first, last = byte_addr, byte_addr + 4 * beats - 1
        assert first >> 12 == last >> 12, f"{channel}: burst {first:#x}…{last:#x} crosses 4 KB"
        return byte_addr // 4, beats

    async def serve(self, ctx):
        axi, rng = self.axi, self.rng
        r_beats, w_bursts, b_queue = [], [], []
        held = {}                                  # channel → payload offered, not taken
        cycle = 0
        while True:
            cycle += 1
            go = {ch: rng.random() >= self.stall for ch in ("ar", "aw", "w", "r", "b")}
            go["w"] = go["w"] and bool(w_bursts)     # data only for an accepted AW
            ctx.set(axi.arready, go["ar"])
            ctx.set(axi.awready, go["aw"])
            ctx.set(axi.wready, go["w"])
            r_valid = go["r"] and bool(r_beats) and r_beats[0][3] <= cycle
            ctx.set(axi.rvalid, r_valid)
            if r_valid:
                if r_beats[0][0] is None:           # served late: read it now, then hold it
                    r_beats[0][0] = self.read(r_beats[0][2])
                ctx.set(axi.rdata, r_beats[0][0])
                ctx.set(axi.rlast, r_beats[0][1])
            b_valid = go["b"] and bool(b_queue)
            ctx.set(axi.bvalid, b_valid)
            sampled = await ctx.tick().sample(
                axi.arvalid, axi.araddr, axi.arlen, axi.arburst, axi.arsize,
                axi.awvalid, axi.awaddr, axi.awlen, axi.awburst, axi.awsize,
                axi.wvalid, axi.wdata, axi.wlast, axi.rready, axi.bready)
            (arvalid, araddr, arlen, arburst, arsize, awvalid, awaddr, awlen, awburst, awsize,
             wvalid, wdata, wlast, rready, bready) = sampled[2:]
            for ch, valid, payload in (("ar", arvalid, (araddr, arlen)),
                                       ("aw", awvalid, (awaddr, awlen)),
                                       ("w", wvalid, (wdata, wlast))):
                if ch in held:
                    assert valid and payload == held[ch], \
                        f"{ch}valid dropped or its payload changed before {ch}ready"
                held.pop(ch, None)
                if valid and not go[ch]:
                    held[ch] = payload
            if arvalid and go["ar"]:
                start, beats = self._check_burst(araddr, arlen, arburst, arsize, "AR")
                self.read_bursts.append((start, beats))
                early = rng.random() < 0.5
                due = cycle + int(rng.integers(0, self.latency + 1))
                r_beats += [[self.read(start + i) if early else None, int(i == beats - 1),
                             start + i, due] for i in range(beats)]
            if awvalid and go["aw"]:
                start, beats = self._check_burst(awaddr, awlen, awburst, awsize, "AW")
                self.write_bursts.append((start, beats))
                w_bursts.append([start, beats, []])
            if wvalid and go["w"]:
                start, beats, data = w_bursts[0]
                data.append(wdata)
                assert wlast == (len(data) == beats), \
                    f"wlast {wlast} on beat {len(data)} of a {beats}-beat burst"
                if wlast:
                    for i, value in enumerate(data):
                        self.memory[start + i] = value
                    w_bursts.pop(0)
                    b_queue.append(start)
            if r_valid and rready:
                r_beats.pop(0)
            if b_valid and bready:
                b_queue.pop(0)
