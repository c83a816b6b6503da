"""Synthesis harnesses: the tops that put a design on a board.

:class:`BoardTop` gives any *core* (an elaboratable with a ``leds`` output that runs in the
``sync`` domain) a board's clock pin and LED pins. Cores provided here:

* :class:`Blinky` — a counter and an LFSR on the LEDs; small, used by CI to prove the flow.
* :class:`UnitHarness` — wraps arithmetic units for measurement: every input port of every
  unit is a register loaded from free-running LFSRs, every output port is
  registered and XOR-reduced (pipelined) to one LED per unit. Nothing can be optimised
  away, the I/O count does not depend on the unit, and the critical path that nextpnr
  reports is the unit's own register-to-register path.
"""
from __future__ import annotations

from amaranth.hdl import (Cat, ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module,
                          Signal, Value)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BoardTop", "Blinky", "UnitHarness", "LFSRBank", "NullUnit", "unit_ports"]


class BoardTop(wiring.Component):
    """Top-level module: board clock in, LEDs out; the core runs in ``sync`` on that clock.

    The ``sync`` domain is reset-less: registers start from their ``init`` values, which the
    ECP5 bitstream loads at configuration. (No reset net means no high-fanout reset path in
    the timing report.)
    """

    def __init__(self, core: Elaboratable, n_leds: int, *, led_invert: int = 0,
                 differential_clock: bool = False):
        self.core = core
        self.n_leds = n_leds
        self.led_invert = led_invert
        self.differential_clock = differential_clock
        members = {"led": Out(n_leds)}
        if differential_clock:
            members.update(clk_p=In(1), clk_n=In(1))
        else:
            members["clk"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync", reset_less=True)
        if self.differential_clock:
            clk_buf = Signal()
            m.submodules.clk_ibufds = Instance("IBUFDS", i_I=self.clk_p, i_IB=self.clk_n,
                                               o_O=clk_buf)
            m.d.comb += ClockSignal("sync").eq(clk_buf)
        else:
            m.d.comb += ClockSignal("sync").eq(self.clk)
        m.submodules.core = self.core
        leds = self.core.leds
        width = min(len(leds), self.n_leds)
        out = Signal(self.n_leds)
        m.d.comb += out[:width].eq(leds[:width])
        m.d.comb += self.led.eq(out ^ Const(self.led_invert, self.n_leds))
        return m


class LFSRBank(Elaboratable):
    """``width`` pseudo-random bits per cycle from 64-bit maximal-length Fibonacci LFSRs
    (x^64 + x^63 + x^61 + x^60 + 1), one per 64 output bits, seeded differently. Each costs
    one LUT4 (the feedback XOR) and 64 FFs, so the harness adds almost no logic of its own;
    shifting by one bit per cycle is plenty of activity for synthesis, which cannot see
    through the sequence."""

    TAPS = (63, 62, 60, 59)          # 0-based positions of x^64, x^63, x^61, x^60

    def __init__(self, width: int, seed: int = 0x2545F4914F6CDD1D):
        self.width = width
        self.seed = seed
        self.n = max(1, -(-width // 64))
        self.out = Signal(width)

    def elaborate(self, platform):
        m = Module()
        states = []
        for i in range(self.n):
            s0 = ((self.seed * (2 * i + 1)) ^ (0x9E3779B97F4A7C15 * (i + 1))) & (2**64 - 1) or 1
            s = Signal(64, init=s0, name=f"lfsr{i}")
            fb = s[self.TAPS[0]] ^ s[self.TAPS[1]] ^ s[self.TAPS[2]] ^ s[self.TAPS[3]]
            m.d.sync += s.eq(Cat(fb, s[:63]))
            states.append(s)
        m.d.comb += self.out.eq(Cat(*states)[:self.width])
        return m


def unit_ports(unit) -> tuple[list[Signal], list[Signal]]:
    """(inputs, outputs) of a unit: the flattened ports of an ``amaranth.lib.wiring``
    component, or, for a plain elaboratable, its ``inputs()``/``outputs()`` methods."""
    if hasattr(unit, "signature") and isinstance(unit.signature, wiring.Signature):
        ins, outs = [], []
        for _path, member, value in unit.signature.flatten(unit):
            # struct-shaped ports (e.g. Float16 views) are handled as their bits
            (ins if member.flow == wiring.In else outs).append(Value.cast(value))
        return ins, outs
    if hasattr(unit, "inputs") and hasattr(unit, "outputs"):
        return ([Value.cast(v) for v in unit.inputs()],
                [Value.cast(v) for v in unit.outputs()])
    raise TypeError(f"{type(unit).__name__} is neither a wiring.Component nor has "
                    "inputs()/outputs(): cannot wrap it for synthesis")


class NullUnit(Elaboratable):
    """Stands in for ``unit`` with the same input widths and no logic: its outputs are its
    inputs. A harness around it measures the harness's own cost (generators, input and
    output registers, XOR tree), to subtract from a build of the real unit."""

    def __init__(self, unit):
        ins, _outs = unit_ports(unit)
        unit._MustUse__silence = True             # only measured, never elaborated
        self._ins = [Signal(len(s), name=f"null_in{i}") for i, s in enumerate(ins)]

    def inputs(self):
        return self._ins

    def outputs(self):
        return self._ins

    def elaborate(self, platform):
        return Module()


def _xor_reduce_pipelined(m: Module, bits, name: str) -> Signal:
    """XOR-reduce ``bits`` in a tree of 4-input XORs with a register after each level."""
    level = 0
    bits = list(bits)
    while len(bits) > 1:
        nxt = []
        for i in range(0, len(bits), 4):
            r = Signal(name=f"{name}_x{level}_{i // 4}")
            group = bits[i:i + 4]
            acc = group[0]
            for b in group[1:]:
                acc = acc ^ b
            m.d.sync += r.eq(acc)
            nxt.append(r)
        bits = nxt
        level += 1
    return bits[0]


class UnitHarness(Elaboratable):
    """Measurement harness for one or more units (see module docstring)."""

    def __init__(self, units: dict[str, Elaboratable], n_leds: int = 8):
        self.units = dict(units)
        self.leds = Signal(max(n_leds, len(self.units)))

    def elaborate(self, platform):
        m = Module()
        ports = {}
        total_in = 0
        for name, unit in self.units.items():
            m.submodules[name] = unit
            ins, outs = unit_ports(unit)
            if not ins or not outs:
                raise TypeError(f"unit {name!r} has no inputs or no outputs")
            ports[name] = (ins, outs)
            total_in += sum(len(s) for s in ins)

        m.submodules.rng = rng = LFSRBank(total_in)
        offset = 0
        reduced = []
        for name, (ins, outs) in ports.items():
            for s in ins:
                m.d.sync += s.eq(rng.out[offset:offset + len(s)])    # registered inputs
                offset += len(s)
            captured = Signal(sum(len(s) for s in outs), name=f"{name}_out")
            m.d.sync += captured.eq(Cat(*outs))                       # registered outputs
            reduced.append(_xor_reduce_pipelined(m, list(captured), name))
        m.d.comb += self.leds[:len(reduced)].eq(Cat(*reduced))
        return m


class Blinky(Elaboratable):
    """A 26-bit counter and a 16-bit LFSR: LED 0..3 show the counter's top bits, the rest
    the LFSR (stepped when the counter's low 22 bits wrap). Small and quick to build."""

    def __init__(self, n_leds: int = 8):
        self.leds = Signal(n_leds)

    def elaborate(self, platform):
        m = Module()
        counter = Signal(26)
        lfsr = Signal(16, init=0xACE1)
        m.d.sync += counter.eq(counter + 1)
        with m.If(counter[:22] == 0):
            # x^16 + x^14 + x^13 + x^11 + 1, Fibonacci form
            fb = lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]
            m.d.sync += lfsr.eq(Cat(lfsr[1:], fb))
        n = len(self.leds)
        m.d.comb += self.leds.eq(Cat(counter[-4:], lfsr)[:n])
        return m
