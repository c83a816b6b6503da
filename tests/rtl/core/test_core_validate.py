"""The core's descriptor checks against ``descriptors.validate``, field by field.

The sequencer's validation works on the descriptor and the products of its shift-and-add
loop: the per-slot checks one slot per cycle, the others' sums and comparisons registered,
before the error priority (the sequencer's SETTLE state walks the slots); this test drives it
directly, one walk per descriptor (products computed by the testbench as the loop would), so
thousands of descriptors run in seconds: every
descriptor of compiled MLP and CNN training steps (all valid), and random mutations of them
(one to three fields changed), and every slot address of the valid ones moved to the last
word DRAM can hold and one past it, each compared with the golden's error code.
"""

import dataclasses
import random

import pytest
import torch
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from trident.golden.hw import HwExactNetwork
from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.rtl.core.core import TridentCore, core_params, descriptor_layout

ADDR_WIDTH = 16


class _Checks(Elaboratable):
    """The core's validation logic alone: ``d`` in, ``err`` out, ``prod`` driven from outside."""

    def __init__(self, core):
        self.core = core
        self.d = Signal(descriptor_layout)
        self.err = Signal(4)
        self.slot_k = Signal(range(len(D.SLOTS) + 1))
        self.products, self.prod, self.el = core._products(self.d)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.err.eq(self.core._validate(m, self.d, self.prod, self.el, self.slot_k))
        return m


NETWORKS = {
    "conv": (("conv4k3p1,maxpool2,conv6k3s2,fc16", (2, 9, 9), False),
             ("conv3k5p2,maxpool3,fc8", (1, 10, 7), True),
             ("conv2k3p1,maxpool2,fc8", (1, 8, 6), False)),      # maps a multiple of the pool
    "fc": (("fc24,fc12", (20,), False), ("fc40", (36,), True)),
}


def _programs(core_params, networks):
    """Every descriptor of the compiled training steps of ``networks``."""
    torch.manual_seed(0)
    cfg = NeuronConfig(kind="klif", tau=2.0, detach_reset=True, surrogate="sigmoid", k_init=0.8)
    descs = []
    for arch, shape, direct in networks:
        net = HwExactNetwork.from_float(SpikingNetwork(arch, shape, 4, cfg), lr=0.1, momentum=0.5)
        prog = C.compile(net, 3, core_params, steps=2, direct_input=direct, max_tile=4)
        descs += list(prog.forward) + list(prog.backward)
    return descs


GEOMETRY = ("in_h", "in_w", "out_h", "out_w", "pool_h", "pool_w", "kernel", "stride", "pool",
            "padding", "kk", "in_plane", "out_plane", "pool_plane")


def _mutate(rng, desc):
    """``desc`` with one to three fields changed, half of them the conv geometry's (whose
    checks are off by one only on a few values), often with the products that derive from
    them (K², planes) recomputed."""
    fields = [f for f in D.FIELDS if f.name != "tag"]
    geometry = [f for f in fields if f.name in GEOMETRY]
    values = {}
    for _ in range(rng.choice((1, 1, 2, 3))):
        f = rng.choice(geometry if rng.random() < 0.5 else fields)
        old = getattr(desc, f.name)
        choices = [0, 1, old + 1, max(old - 1, 0), old * 2, old + 2, rng.randrange(1 << f.width)]
        values[f.name] = min(rng.choice(choices), (1 << f.width) - 1)
    mutated = dataclasses.replace(desc, **values)
    if rng.random() < 0.4:      # keep K² and the planes consistent: one equation off at a time
        g = mutated
        mutated = dataclasses.replace(g, kk=g.kernel ** 2, in_plane=g.in_h * g.in_w,
                                      out_plane=g.out_h * g.out_w, pool_plane=g.pool_h * g.pool_w)
    return mutated


def _at_the_dram_boundary(desc, params):
    """For each slot whose address moves a valid ``desc`` out of DRAM: the descriptor with
    that address as high as it can go (valid, its span ending at DRAM's last word) and one
    word higher (``ADDRESS_RANGE``), found by bisection with the golden checks."""
    out = []
    for s in D.SLOTS:
        name = f"{s}_addr"
        width = next(f.width for f in D.FIELDS if f.name == name)
        moved = lambda a: dataclasses.replace(desc, **{name: a})      # noqa: E731
        top = (1 << width) - 1
        if D.validate(moved(top), params) == D.ErrorCode.NONE:
            continue                                # the slot is not used
        lo, hi = getattr(desc, name), top           # valid at lo, not at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if D.validate(moved(mid), params) == D.ErrorCode.NONE else (lo, mid)
        assert D.validate(moved(hi), params) == D.ErrorCode.ADDRESS_RANGE
        out += [moved(lo), moved(hi)]
    return out


def _value(desc):
    return sum(w << (32 * k) for k, w in enumerate(D.pack(desc)))


def _run(core, descs):
    dut = _Checks(core)
    params = core.core_params()
    mismatches = []

    async def bench(ctx):
        for desc in descs:
            ctx.set(dut.d.as_value(), _value(desc))
            for name, a, b in dut.products:        # the loop's operands: a 16, b 32 bits
                ctx.set(dut.prod[name], ((ctx.get(a) & 0xFFFF) * (ctx.get(b) & 0xFFFFFFFF))
                        & ((1 << 48) - 1))
            for k in range(len(D.SLOTS) + 1):      # SETTLE: the walk over the slots
                ctx.set(dut.slot_k, k)
                await ctx.tick()
            want = D.validate(desc, params)
            got = ctx.get(dut.err)
            if got != want:
                mismatches.append((desc, want.name, D.ErrorCode(got).name))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return mismatches


@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_checks_match_golden(kind):
    """A core with convolution, and one without (a conv descriptor is then UNSUPPORTED)."""
    core = TridentCore(conv=kind == "conv", addr_width=ADDR_WIDTH)
    core._MustUse__silence = True         # only its checks are elaborated
    params = core.core_params()
    base = _programs(params, NETWORKS[kind])
    if kind == "fc":        # and conv descriptors for the core without conv
        base += _programs(core_params(conv=True, addr_width=ADDR_WIDTH), NETWORKS["conv"])[:12]
    rng = random.Random(1)
    boundary = [b for d in base if D.validate(d, params) == D.ErrorCode.NONE
                for b in _at_the_dram_boundary(d, params)]
    assert len(boundary) > 50
    descs = list(base) + boundary + [_mutate(rng, rng.choice(base)) for _ in range(3000)]
    codes = {D.validate(d, params) for d in descs}
    # the mutations reach most codes (not just NONE and INCONSISTENT)
    assert len(codes) >= 10, sorted(c.name for c in codes)
    mismatches = _run(core, descs)
    assert not mismatches, (f"{len(mismatches)} of {len(descs)} descriptors differ, e.g. "
                            f"{mismatches[:3]}")
