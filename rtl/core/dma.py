"""The core's DMA client: address generators, read and write channels over the memory port.

A *channel* moves one tensor between DRAM and an engine stream.  Its addresses come from an
:class:`AddressGen`, a three-level loop ``base + a·stride_a + b·stride_b + c·stride_c``
(strides are two's complement modulo the address space, so they may be negative), which
covers every access pattern of the core: rows of a batch in sample-major order, time
reversed rows, the gathers and scatters between row-major weights and the engines'
lane-interleaved words (docs/core.md §4).

Reads are issued round-robin between the read channels (a channel keeps its turn for up to
``run`` words in a row, so a burst-forming DRAM port sees each tensor's consecutive words
together) and never block the response path:
a channel issues only while its own response FIFO has room for everything it has in flight,
and a tag FIFO remembers which channel each outstanding read belongs to, so the in-order
responses are always taken and steered at once.  Writes go before reads (their producers
stall otherwise).  An address at or above ``limit`` is not issued; it sets ``error``.

Every path through the DMA is registered at both ends: each write channel's words enter a
two-word FIFO, each read channel's words leave through one, and the chosen request enters a
two-word request FIFO in front of the memory port, so neither a producer's ``valid``, a
consumer's ``ready`` nor the port's ``ready`` reaches the arbitration (or, through it,
another channel) in the same cycle; each address generator hands its addresses to the
arbitration through a two-entry FIFO, so the arbitration's choice reaches no counter.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .ports import WORD_BITS, MemoryPortSignature

__all__ = ["gen_layout", "write_layout", "AddressGen", "DMA"]


def gen_layout(addr_width: int, count_bits: int) -> data.StructLayout:
    """An address program: ``base``, loop counts ``count_a/b/c`` (outer to inner; any 0
    gives no address) and strides ``stride_a/b/c`` (modulo ``2^addr_width``)."""
    return data.StructLayout({
        "base": addr_width,
        "count_a": count_bits, "count_b": count_bits, "count_c": count_bits,
        "stride_a": addr_width, "stride_b": addr_width, "stride_c": addr_width,
    })


#: Payload of a write channel: the word and ``skip`` (consume an address, write nothing:
#: lanes past the end of a tensor).
write_layout = data.StructLayout({"data": WORD_BITS, "skip": 1})


class AddressGen(wiring.Component):
    """Three nested counters producing ``base + a·stride_a + b·stride_b + c·stride_c``.

    Members
    -------
    cmd : In(stream.Signature(gen_layout))
        A program, accepted while idle.  It is registered and the counters start from the
        register one cycle later, so ``cmd.valid`` (the sequencer's state) reaches only
        the program register, not the counters' next-value logic.
    addr : Out(stream.Signature(addr_width))
        ``count_a·count_b·count_c`` addresses, ``c`` fastest, from a two-entry FIFO: its
        ``ready`` (the DMA's arbitration) moves only the FIFO's read side, and the counters
        advance while the FIFO has room (a registered level), so no consumer's decision
        reaches the counters' next-value logic in the same cycle.
    limit : In(addr_width)
        The first address out of range; steady while a program runs.
    out_of_range : Out(1)
        ``addr.payload >= limit``, compared as the address is formed and kept beside it in
        the FIFO (the comparison's carry chain is not on the DMA's arbitration path).
    busy : Out(1)
        An accepted program is being loaded, has addresses left, or has some in the FIFO.
    """

    def __init__(self, addr_width: int, count_bits: int):
        self.addr_width = addr_width
        self.layout = gen_layout(addr_width, count_bits)
        super().__init__({
            "cmd": In(stream.Signature(self.layout)),
            "addr": Out(stream.Signature(addr_width)),
            "limit": In(addr_width),
            "out_of_range": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = Signal(self.layout)
        # the iterations left in each loop, the current one included: counting down to a
        # constant 1 needs no `count − 1` and no comparison of two counters
        a, b, c = (Signal.like(cfg.count_a, name=n) for n in "abc")
        ptr_a, ptr_b, ptr = (Signal(self.addr_width, name=n) for n in ("ptr_a", "ptr_b", "ptr"))
        out_of_range = Signal()
        running = Signal()
        load = Signal()                 # cfg holds a program accepted in the last cycle
        out = fifo.SyncFIFO(width=self.addr_width + 1, depth=2)
        m.submodules.out = out
        advance = running & out.w_rdy
        m.d.comb += [self.cmd.ready.eq(~running & ~load),
                     self.busy.eq(running | load | out.r_rdy),
                     out.w_en.eq(advance), out.w_data.eq(Cat(ptr, out_of_range)),
                     self.addr.valid.eq(out.r_rdy), self.addr.payload.eq(out.r_data),
                     self.out_of_range.eq(out.r_data[-1]), out.r_en.eq(self.addr.ready)]

        def move_to(value):
            # each candidate is compared with the limit on its own, from registers (the
            # address wraps: strides are modulo the address space)
            value = value[:self.addr_width]
            m.d.sync += [ptr.eq(value), out_of_range.eq(value >= self.limit)]

        m.d.sync += load.eq(self.cmd.valid & self.cmd.ready)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += cfg.eq(self.cmd.payload)
        with m.If(load):
            m.d.sync += [a.eq(cfg.count_a), b.eq(cfg.count_b), c.eq(cfg.count_c),
                         ptr_a.eq(cfg.base), ptr_b.eq(cfg.base),
                         running.eq((cfg.count_a != 0) & (cfg.count_b != 0) & (cfg.count_c != 0))]
            move_to(cfg.base)
        with m.If(advance):
            with m.If(c != 1):
                m.d.sync += c.eq(c - 1)
                move_to(ptr + cfg.stride_c)
            with m.Elif(b != 1):
                nxt = ptr_b + cfg.stride_b
                m.d.sync += [c.eq(cfg.count_c), b.eq(b - 1), ptr_b.eq(nxt)]
                move_to(nxt)
            with m.Elif(a != 1):
                nxt = ptr_a + cfg.stride_a
                m.d.sync += [c.eq(cfg.count_c), b.eq(cfg.count_b), a.eq(a - 1), ptr_a.eq(nxt),
                             ptr_b.eq(nxt)]
                move_to(nxt)
            with m.Else():
                m.d.sync += running.eq(0)
        return m


class DMA(wiring.Component):
    """Read and write channels sharing one memory port (docs/core.md §4).

    Parameters
    ----------
    addr_width : int
        Word-address width of the memory port.
    count_bits : int
        Width of an address program's loop counts.
    read_channels, write_channels : int
        Number of channels.
    depth : int
        Response FIFO depth per read channel (its maximum outstanding reads).
    run : int
        Read words a channel may issue in a row before the next channel's turn (1: plain
        round robin).

    Members
    -------
    bus : Out(MemoryPortSignature(addr_width))
        The memory port (the core is the initiator).
    rd_cmd : In(stream.Signature(gen_layout)).array(read_channels)
        Address program of each read channel.
    rd : Out(stream.Signature(32)).array(read_channels)
        The words read, in address-program order.
    rd_busy : Out(read_channels)
        Channel has addresses left or words not yet taken.
    wr_cmd : In(stream.Signature(gen_layout)).array(write_channels)
        Address program of each write channel.
    wr : In(stream.Signature(write_layout)).array(write_channels)
        The words to write, one per address (``skip``: consume the address only).
    wr_busy : Out(write_channels)
        Channel has addresses left, or a request is still waiting for the memory port.
    limit : In(addr_width)
        Addresses ``>= limit`` are refused.
    error : Out(1)
        An address was refused (sticky until ``clear``).
    clear : In(1)
        Clears ``error``.
    """

    def __init__(self, addr_width=24, *, count_bits=16, read_channels=3, write_channels=2,
                 depth=8, run=1):
        if run < 1:
            raise ValueError(f"run must be at least 1, not {run}")
        self.addr_width = addr_width
        self.run = run
        self.count_bits = count_bits
        self.n_rd = read_channels
        self.n_wr = write_channels
        self.depth = depth
        layout = gen_layout(addr_width, count_bits)
        super().__init__({
            "bus": Out(MemoryPortSignature(addr_width)),
            "rd_cmd": In(stream.Signature(layout)).array(read_channels),
            "rd": Out(stream.Signature(WORD_BITS)).array(read_channels),
            "rd_busy": Out(read_channels),
            "wr_cmd": In(stream.Signature(layout)).array(write_channels),
            "wr": In(stream.Signature(write_layout)).array(write_channels),
            "wr_busy": Out(write_channels),
            "limit": In(addr_width),
            "error": Out(1),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        resp = self.bus.resp
        refused = Signal()
        # the request chosen this cycle (``req``) waits in a FIFO for the memory port
        queue = fifo.SyncFIFO(width=len(self.bus.req.payload.as_value()), depth=2)
        m.submodules.requests = queue
        req = stream.Signature(self.bus.req.payload.shape()).create(path=("req",))
        m.d.comb += [queue.w_en.eq(req.valid), queue.w_data.eq(req.payload), req.ready.eq(queue.w_rdy),
                     self.bus.req.valid.eq(queue.r_rdy), self.bus.req.payload.eq(queue.r_data),
                     queue.r_en.eq(self.bus.req.ready)]

        # ---- write channels: a write goes out when its address and its word are both there
        wr_issue = Signal()
        wr_sel = [Signal(name=f"wr_sel{k}") for k in range(self.n_wr)]
        taken = Signal()
        for k in range(self.n_wr):
            gen = AddressGen(self.addr_width, self.count_bits)
            m.submodules[f"wgen{k}"] = gen
            wiring.connect(m, wiring.flipped(self.wr_cmd[k]), gen.cmd)
            m.d.comb += [gen.limit.eq(self.limit), self.wr_busy[k].eq(gen.busy | queue.r_rdy)]
            words = fifo.SyncFIFO(width=write_layout.size, depth=2)
            m.submodules[f"wbuf{k}"] = words
            m.d.comb += [words.w_en.eq(self.wr[k].valid), words.w_data.eq(self.wr[k].payload),
                         self.wr[k].ready.eq(words.w_rdy)]
            word = write_layout(words.r_data)
            both = gen.addr.valid & words.r_rdy
            bad = gen.out_of_range
            silent = word.skip | bad
            # the first channel with a real write owns the bus this cycle
            mine = both & ~silent & ~taken
            m.d.comb += wr_sel[k].eq(mine)
            fire = both & (silent | (mine & req.ready))
            m.d.comb += [gen.addr.ready.eq(fire), words.r_en.eq(fire)]
            with m.If(both & bad & ~word.skip):
                m.d.comb += refused.eq(1)
            with m.If(mine):
                m.d.comb += [req.payload.addr.eq(gen.addr.payload), req.payload.write.eq(1),
                             req.payload.data.eq(word.data)]
            taken = taken | mine
        m.d.comb += wr_issue.eq(taken)

        # ---- read channels: credits, round-robin, tag FIFO steering the responses
        tag_bits = max(1, (self.n_rd - 1).bit_length())
        tags = fifo.SyncFIFO(width=tag_bits, depth=self.n_rd * self.depth)
        m.submodules.tags = tags
        rr = Signal(range(self.n_rd))                   # channel with priority this cycle
        streak = Signal(range(self.run + 1))            # words channel `rr` issued in a row
        cand = Signal(self.n_rd)
        fifos, gens = [], []
        for k in range(self.n_rd):
            gen = AddressGen(self.addr_width, self.count_bits)
            m.submodules[f"rgen{k}"] = gen
            wiring.connect(m, wiring.flipped(self.rd_cmd[k]), gen.cmd)
            m.d.comb += gen.limit.eq(self.limit)
            buf = fifo.SyncFIFO(width=WORD_BITS, depth=self.depth)
            m.submodules[f"rbuf{k}"] = buf
            # the consumer takes its words from a two-word FIFO: its ready goes no further
            out = fifo.SyncFIFO(width=WORD_BITS, depth=2)
            m.submodules[f"rout{k}"] = out
            pending = Signal(range(self.depth + 1), name=f"pending{k}")
            popped = buf.r_rdy & out.w_rdy
            m.d.comb += [
                out.w_en.eq(popped), out.w_data.eq(buf.r_data), buf.r_en.eq(out.w_rdy),
                self.rd[k].valid.eq(out.r_rdy), self.rd[k].payload.eq(out.r_data),
                out.r_en.eq(self.rd[k].ready),
                self.rd_busy[k].eq(gen.busy | (pending != 0) | out.r_rdy),
                cand[k].eq(gen.addr.valid & (pending != self.depth)),
            ]
            issue = Signal(name=f"issue{k}")
            m.d.sync += pending.eq(pending + issue - popped)
            fifos.append(buf)
            gens.append((gen, issue))

        # rotate the candidates so that channel ``rr`` comes first
        pick = Signal(range(self.n_rd))
        found = Signal()
        for off in reversed(range(self.n_rd)):
            idx = Signal(range(self.n_rd), name=f"rr_idx{off}")
            m.d.comb += idx.eq(Mux(rr + off >= self.n_rd, rr + off - self.n_rd, rr + off))
            with m.If(cand.bit_select(idx, 1)):
                m.d.comb += [pick.eq(idx), found.eq(1)]
        for k, (gen, issue) in enumerate(gens):
            bad = gen.out_of_range
            sel = found & (pick == k) & ~wr_issue
            with m.If(sel):
                m.d.comb += [req.payload.addr.eq(gen.addr.payload), req.payload.write.eq(0)]
                with m.If(bad):
                    m.d.comb += [gen.addr.ready.eq(1), refused.eq(1)]
                with m.Else():
                    m.d.comb += [issue.eq(req.ready), gen.addr.ready.eq(req.ready),
                                 tags.w_en.eq(req.ready), tags.w_data.eq(k)]
                    with m.If(req.ready):
                        issued = Mux(rr == k, streak + 1, 1)
                        with m.If(issued < self.run):
                            m.d.sync += [rr.eq(k), streak.eq(issued)]
                        with m.Else():
                            m.d.sync += [rr.eq(Mux(k == self.n_rd - 1, 0, k + 1)), streak.eq(0)]
        read_req = Signal()
        for k, (gen, _) in enumerate(gens):
            with m.If(found & (pick == k) & ~wr_issue & ~gen.out_of_range):
                m.d.comb += read_req.eq(1)
        m.d.comb += req.valid.eq(wr_issue | read_req)

        m.d.comb += [resp.ready.eq(tags.r_rdy), tags.r_en.eq(resp.valid & tags.r_rdy)]
        for k, buf in enumerate(fifos):
            m.d.comb += [buf.w_data.eq(resp.payload),
                         buf.w_en.eq(resp.valid & tags.r_rdy & (tags.r_data == k))]

        with m.If(self.clear):
            m.d.sync += self.error.eq(0)
        with m.Elif(refused):
            m.d.sync += self.error.eq(1)

        return m
