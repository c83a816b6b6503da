"""Test vectors for the neuron units, with expected outputs from the golden kernels.

Not collected by pytest (no ``test_`` prefix); ``conftest.py`` puts this directory on
``sys.path``.  Expected values always come from ``trident.golden.hw.neuron`` /
``trident.golden.hw.surrogate`` called on the same registers and inputs; the only code here
besides generators is the packing of registers/payloads and the construction of the golden
``NeuronParams`` from register bit patterns (so that arbitrary patterns — NaN, ±inf,
subnormal, negative constants — can be tested, not only what a float configuration rounds
to).

A *segment* is one register configuration with its stream of items; a *case* is a list of
segments run back to back on one DUT (registers and the sigmoid table change between
segments, with the pipeline drained).
"""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trident.golden.hw import fp16 as F
from trident.golden.hw import neuron as hw_neuron
from trident.golden.hw import surrogate as hw_surrogate
from trident.golden.neurons import NeuronConfig
from trident.rtl.neuron import (NeuronBackwardUnit, NeuronUnit, SurrogateUnit, encode_registers,
                                sigmoid_table_words)
from trident.verify.payload import pack, payload_layout, unpack

HERE = Path(__file__).resolve().parent
KINDS = ("if", "lif", "klif")
SURROGATES = ("rectangular", "triangle", "sigmoid")

# binary16 special patterns
SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400, 0x7BFF, 0xFBFF,
            0x7C00, 0xFC00, 0x7E00, 0x7E01, 0xFE00, 0x7C01, 0x3C00, 0xBC00, 0x3BFF, 0x3C01,
            0x4800, 0x47FF, 0x0200, 0x8200]


def h(bits):
    """binary16 tensor of a bit pattern (scalar or array)."""
    return F.from_bits(torch.as_tensor(np.asarray(bits, dtype=np.int64) & 0xFFFF))


def b(t):
    """Bit patterns (int64 numpy) of a binary16 tensor."""
    return F.bits(t).numpy().astype(np.int64)


def r16(x):
    """Round float(s) to binary16 bit patterns (RNE, once)."""
    return b(F.round16(np.asarray(x, dtype=np.float64)))


# ------------------------------------------------------------------- registers and golden
def realistic_registers(rng, kind, soft_reset, decay_input, surrogate):
    """A configuration as the host would derive it from float parameters."""
    tau = float(rng.choice([1.5, 2.0, 3.0, 4.0, rng.uniform(1.05, 20.0)]))
    v_th = float(rng.choice([1.0, 0.5, rng.uniform(0.1, 4.0)]))
    v_reset = None if soft_reset else float(rng.choice([0.0, 0.0, rng.uniform(-1.0, 0.5)]))
    alpha = [None, 1.0, 2.0, 4.0, float(rng.uniform(0.5, 8.0))][int(rng.integers(0, 5))]
    cfg = NeuronConfig(kind=kind, tau=tau, decay_input=decay_input, v_threshold=v_th,
                       v_reset=v_reset, surrogate=surrogate, surrogate_alpha=alpha)
    k = float(rng.choice([1.0, rng.uniform(0.3, 3.0)]))
    return hw_neuron.NeuronParams.from_config(cfg, k=k).registers()


def special_heavy_bits(rng, n=None):
    """Bit patterns: specials, subnormals, moderate normals and uniform patterns."""
    size = 1 if n is None else n
    choice = rng.integers(0, 4, size)
    out = rng.integers(0, 1 << 16, size)
    spec = rng.choice(SPECIALS, size)
    sub = rng.integers(0, 0x400, size) | (rng.integers(0, 2, size) << 15)
    moderate = rng.integers(0x3000, 0x4800, size) | (rng.integers(0, 2, size) << 15)
    out = np.where(choice == 0, spec, np.where(choice == 1, sub,
                                               np.where(choice == 2, moderate, out)))
    return int(out[0]) if n is None else out


def random_registers(rng, kind, soft_reset, decay_input, surrogate):
    """Every constant an arbitrary binary16 pattern (also NaN, ±inf, subnormal, negative);
    half of them kept moderate so that spikes and surrogate windows still happen."""
    regs = {"kind": kind, "soft_reset": soft_reset, "decay_input": decay_input,
            "surrogate": surrogate}
    for name in ("v_th", "v_reset", "v_rest", "inv_tau", "leak", "k", "surrogate_alpha",
                 "surrogate_half_width", "surrogate_neg_alpha_sq"):
        if rng.random() < 0.5:
            regs[name] = int(rng.integers(0x3000, 0x4400)) | (int(rng.random() < 0.2) << 15)
        else:
            regs[name] = special_heavy_bits(rng)
    if surrogate == "sigmoid":
        regs["surrogate_slope"] = [special_heavy_bits(rng) for _ in range(64)]
        regs["surrogate_intercept"] = [special_heavy_bits(rng) for _ in range(64)]
    return regs


def golden_surrogate(regs):
    """The golden ``HwSurrogate`` holding exactly the register patterns of ``regs``."""
    name = regs["surrogate"]
    cls = {"rectangular": hw_surrogate.Rectangular, "triangle": hw_surrogate.Triangle,
           "sigmoid": hw_surrogate.SigmoidPWL}[name]
    sg = cls.__new__(cls)
    sg.alpha16 = h(regs["surrogate_alpha"]).reshape(())
    sg.alpha = float(sg.alpha16)
    if name == "rectangular":
        sg.half_width16 = h(regs["surrogate_half_width"]).reshape(())
    elif name == "triangle":
        sg.neg_alpha_sq16 = h(regs["surrogate_neg_alpha_sq"]).reshape(())
    else:
        sg.slope16 = h(regs["surrogate_slope"])
        sg.intercept16 = h(regs["surrogate_intercept"])
        sg.range16 = F.const(hw_surrogate.SIGMOID_RANGE)
    return sg


def golden_params(regs):
    """``NeuronParams`` whose constants are exactly the register patterns of ``regs``."""
    c = {n: h(regs[n]).reshape(()) for n in ("v_th", "v_reset", "v_rest", "inv_tau", "leak", "k")}
    return hw_neuron.NeuronParams(
        kind=regs["kind"], decay_input=bool(regs["decay_input"]),
        soft_reset=bool(regs["soft_reset"]), neg_inv_tau=F.neg(c["inv_tau"]),
        surrogate=golden_surrogate(regs), **c)


def golden_potentials(p, h_seq, s_seq):
    """``V[t]`` after the reset, from the golden kernels' own ``scale`` and primitives
    (``neuron_forward`` returns S and H only; these are its reset lines)."""
    z = hw_neuron.scale(p, h_seq)
    if p.soft_reset:
        return torch.where(s_seq, F.sub(z, p.v_th.expand_as(z)), z)
    return torch.where(s_seq, p.v_reset.expand_as(z), z)


def value_of(bits, default=1.0):
    v = float(h(bits))
    return v if np.isfinite(v) and 2 ** -10 < abs(v) < 1000 else default


# ------------------------------------------------------------------- input generators
def currents(rng, regs, shape):
    """Input currents: around the threshold, exactly at crafted points, specials, random."""
    vth = value_of(regs["v_th"])
    itau = value_of(regs["inv_tau"], 0.5)
    n = int(np.prod(shape))
    near = r16(vth * rng.uniform(-1.0, 3.0, n) * rng.choice([1.0, 1.0, 1 / itau], n))
    crafted = rng.choice(np.concatenate([
        r16([vth, vth / itau, 2 * vth, vth - value_of(regs["v_rest"], 0.0)]),
        [regs["v_th"], regs["v_th"] ^ 0x8000, (regs["v_th"] + 1) & 0xFFFF,
         (regs["v_th"] - 1) & 0xFFFF]]), n)
    pick = rng.random(n)
    out = np.where(pick < 0.55, near,
                   np.where(pick < 0.7, crafted,
                            np.where(pick < 0.85, special_heavy_bits(rng, n),
                                     rng.integers(0, 1 << 16, n))))
    return out.reshape(shape)


def potentials(rng, regs, shape):
    """Stored H for BP: near V_th (and V_th/k), on sigmoid-segment knots, specials."""
    vth = value_of(regs["v_th"])
    k = value_of(regs["k"])
    alpha = value_of(regs.get("surrogate_alpha", 0x3C00))
    n = int(np.prod(shape))
    base = np.where(rng.random(n) < 0.5, vth, vth / k) if regs["kind"] == "klif" \
        else np.full(n, vth)
    near = r16(base + rng.normal(0, 1.5, n) / alpha)
    knots = r16(base + rng.integers(-70, 70, n) / (8 * alpha))
    crafted = rng.choice(np.concatenate([r16([vth, vth / k, 0.0]),
                                         [regs["v_th"], (regs["v_th"] + 1) & 0xFFFF]]), n)
    pick = rng.random(n)
    out = np.where(pick < 0.45, near, np.where(pick < 0.6, knots,
                   np.where(pick < 0.7, crafted,
                            np.where(pick < 0.85, special_heavy_bits(rng, n),
                                     rng.integers(0, 1 << 16, n)))))
    return out.reshape(shape)


def spike_grads(rng, shape):
    """δS: a third ±0 (skipped), moderate values of spread exponents, specials."""
    n = int(np.prod(shape))
    moderate = r16(rng.normal(0, 1, n) * 2.0 ** rng.integers(-20, 8, n))
    pick = rng.random(n)
    zero = np.where(rng.random(n) < 0.5, 0x0000, 0x8000)
    out = np.where(pick < 0.3, zero, np.where(pick < 0.85, moderate,
                                             special_heavy_bits(rng, n)))
    return out.reshape(shape)


def surrogate_inputs(rng, regs, n):
    """x = Z − V_th: the window/segment region, the cut-off, specials and uniform patterns."""
    alpha = value_of(regs.get("surrogate_alpha", 0x3C00))
    near = r16(rng.normal(0, 3, n) / alpha)
    knots = r16(rng.integers(-66, 66, n) / (8 * alpha))
    pick = rng.random(n)
    out = np.where(pick < 0.4, near, np.where(pick < 0.55, knots,
                   np.where(pick < 0.75, special_heavy_bits(rng, n), rng.integers(0, 1 << 16, n))))
    return out


# ------------------------------------------------------------------- segments
@dataclass
class Segment:
    """One configuration and its items (raw payloads in and expected out)."""
    regs: dict
    inputs: np.ndarray
    expected: np.ndarray
    label: str = ""
    steps: int = 1
    neurons: int = 0

    @property
    def regs_word(self):
        return encode_registers(self.regs)

    @property
    def table(self):
        return sigmoid_table_words(self.regs) if self.regs["surrogate"] == "sigmoid" else None


def forward_segment(dut, rng, regs, steps, neurons, label=""):
    """``steps`` × ``neurons`` forward items (step-major), expected from ``neuron_forward``."""
    p = golden_params(regs)
    x = currents(rng, regs, (steps, neurons))
    s_seq, h_seq = hw_neuron.neuron_forward(p, h(x))
    v_seq = golden_potentials(p, h_seq, s_seq)
    v_bits = b(v_seq)
    v_in = np.concatenate([rng.integers(0, 1 << 16, (1, neurons)), v_bits[:-1]], axis=0)
    first = np.zeros((steps, neurons), dtype=np.int64)
    first[0] = 1
    tagmax = (1 << dut.tag_width) - 1 if dut.tag_width else 0
    tag = rng.integers(0, tagmax + 1, (steps, neurons))
    extra_in = {"tag": tag.ravel()} if dut.tag_width else {}
    inputs = pack(payload_layout(dut, "i"), x=x.ravel(), v=v_in.ravel(), first=first.ravel(),
                  **extra_in)
    expected = pack(payload_layout(dut, "o"), s=s_seq.numpy().astype(np.int64).ravel(),
                    h=b(h_seq).ravel(), v=v_bits.ravel(), **extra_in)
    return Segment(regs, inputs, expected, label, steps, neurons)


def forward_step_segment(dut, rng, regs, n, label=""):
    """``n`` single steps from an arbitrary state ``V`` (``first`` = 0): expected from the
    golden ``charge`` and ``scale`` and the reset lines of ``neuron_forward``."""
    p = golden_params(regs)
    x = currents(rng, regs, (n,))
    v = np.where(rng.random(n) < 0.5, currents(rng, regs, (n,)), special_heavy_bits(rng, n))
    hh = hw_neuron.charge(p, h(v), h(x))
    z = hw_neuron.scale(p, hh)
    s = F.ge(z, p.v_th.expand_as(z))
    v_new = golden_potentials(p, hh, s)
    tagmax = (1 << dut.tag_width) - 1 if dut.tag_width else 0
    extra = {"tag": rng.integers(0, tagmax + 1, n)} if dut.tag_width else {}
    inputs = pack(payload_layout(dut, "i"), x=x, v=v, first=0, **extra)
    expected = pack(payload_layout(dut, "o"), s=s.numpy().astype(np.int64), h=b(hh),
                    v=b(v_new), **extra)
    return Segment(regs, inputs, expected, label, 1, n)


def backward_segment(dut, rng, regs, steps, neurons, from_forward=True, label=""):
    """``steps`` × ``neurons`` BP items, t = T … 1 (step-major), expected from
    ``neuron_backward``; H/S from a golden forward pass or random."""
    p = golden_params(regs)
    if from_forward:
        x = currents(rng, regs, (steps, neurons))
        s_seq, h_seq = hw_neuron.neuron_forward(p, h(x))
        # sprinkle crafted potentials in (the surrogate's interesting points)
        mask = rng.random((steps, neurons)) < 0.3
        h_bits = np.where(mask, potentials(rng, regs, (steps, neurons)), b(h_seq))
        h_seq = h(h_bits)
    else:
        h_bits = potentials(rng, regs, (steps, neurons))
        h_seq = h(h_bits)
        s_seq = torch.from_numpy(rng.random((steps, neurons)) < 0.4)
    ds = spike_grads(rng, (steps, neurons))
    g = hw_neuron.neuron_backward(p, h_seq, s_seq, h(ds))
    du = b(g.du)
    order = list(reversed(range(steps)))
    du_next = np.stack([du[t + 1] if t + 1 < steps else rng.integers(0, 1 << 16, neurons)
                        for t in order])
    last = np.array([[int(t == steps - 1)] * neurons for t in order])
    tagmax = (1 << dut.tag_width) - 1 if dut.tag_width else 0
    tag = rng.integers(0, tagmax + 1, (steps, neurons))
    extra = {"tag": tag.ravel()} if dut.tag_width else {}
    sel = lambda a: np.asarray(a)[order].ravel()   # noqa: E731
    inputs = pack(payload_layout(dut, "i"), h=sel(h_bits), s=sel(s_seq.numpy().astype(np.int64)),
                  ds=sel(ds), du_next=du_next.ravel(), last=last.ravel(), **extra)
    expected = pack(payload_layout(dut, "o"), sg=sel(b(g.h)), du=sel(du), di=sel(b(g.di)),
                    **extra)
    return Segment(regs, inputs, expected, label, steps, neurons)


def surrogate_segment(dut, rng, regs, n, x=None, label=""):
    """``n`` surrogate items (or the given ``x`` patterns), expected from the golden
    surrogate."""
    sg = golden_surrogate(regs)
    x = surrogate_inputs(rng, regs, n) if x is None else np.asarray(x, dtype=np.int64)
    tagmax = (1 << dut.tag_width) - 1 if dut.tag_width else 0
    extra = {"tag": rng.integers(0, tagmax + 1, len(x))} if dut.tag_width else {}
    inputs = pack(payload_layout(dut, "i"), x=x, **extra)
    expected = pack(payload_layout(dut, "o"), sg=b(sg(h(x))), **extra)
    return Segment(regs, inputs, expected, label, 1, len(x))


def configurations(kinds=KINDS, resets=(False, True), decays=(False, True),
                   surrogates=SURROGATES):
    """Every combination (kind, soft_reset, decay_input, surrogate)."""
    return list(itertools.product(kinds, resets, decays, surrogates))


def make_registers(rng, mode, kind, soft, decay, surrogate):
    if mode == "realistic":
        return realistic_registers(rng, kind, soft, decay, surrogate)
    return random_registers(rng, kind, soft, decay, surrogate)


# ------------------------------------------------------------------- describing mismatches
def describe(dut, seg, index, got):
    lay_i, lay_o = payload_layout(dut, "i"), payload_layout(dut, "o")
    fi = {k: hex(int(v[0])) for k, v in unpack(lay_i, [int(seg.inputs[index])]).items()}
    fg = {k: hex(int(v[0])) for k, v in unpack(lay_o, [int(got)]).items()}
    fe = {k: hex(int(v[0])) for k, v in unpack(lay_o, [int(seg.expected[index])]).items()}
    return f"[{seg.label}] #{index} in {fi} got {fg} expected {fe} regs {short_regs(seg.regs)}"


def short_regs(regs):
    return {k: (hex(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in regs.items() if k not in ("surrogate_slope", "surrogate_intercept")}


# ------------------------------------------------------------------- Amaranth simulator
def simulate_segments(dut, segments, *, idle=0.0, backpressure=0.0, seed=0,
                      feedback=None, max_cycles=None):
    """Run ``segments`` through ``dut`` in the Amaranth simulator.

    Sets ``regs``, loads the sigmoid table (when the segment has one) with the pipeline
    drained, then streams the inputs.  ``feedback(segment, index, outputs)`` may replace
    the precomputed input ``index`` by one built from the outputs seen so far (return
    ``None`` to wait a cycle): the closed loop of a real engine.

    Returns a list (per segment) of lists of raw output payloads and the latencies seen.
    """
    from amaranth.hdl import ClockDomain, Module, Value
    from amaranth.sim import Simulator

    rnd = random.Random(seed)
    results = [[] for _ in segments]
    latencies = []
    i_payload, o_payload = Value.cast(dut.i.payload), Value.cast(dut.o.payload)
    regs = Value.cast(dut.regs)
    total = sum(len(s.inputs) for s in segments)
    if max_cycles is None:
        max_cycles = 2000 * len(segments) + int(total * (4 + 20 * (idle + backpressure)))

    async def bench(ctx):
        cycle = 0
        for si, seg in enumerate(segments):
            ctx.set(dut.i.valid, 0)
            ctx.set(regs, seg.regs_word)
            if seg.table is not None and hasattr(dut, "table"):
                for addr, (slope, intercept) in enumerate(seg.table):
                    ctx.set(dut.table.en, 1)
                    ctx.set(dut.table.addr, addr)
                    ctx.set(Value.cast(dut.table.slope), slope)
                    ctx.set(Value.cast(dut.table.intercept), intercept)
                    await ctx.tick()
                ctx.set(dut.table.en, 0)
            out = results[si]
            n = len(seg.inputs)
            sent, presenting, accepted = 0, False, []
            while len(out) < n:
                if cycle > max_cycles:
                    raise TimeoutError(f"segment {si}: {len(out)} of {n} outputs")
                if not presenting and sent < n and not (idle and rnd.random() < idle):
                    value = int(seg.inputs[sent]) if feedback is None else \
                        feedback(seg, sent, out)
                    if value is not None:
                        ctx.set(i_payload, value)
                        ctx.set(dut.i.valid, 1)
                        presenting = True
                if not presenting:
                    ctx.set(dut.i.valid, 0)
                ctx.set(dut.o.ready, 0 if (backpressure and rnd.random() < backpressure) else 1)
                _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                    dut.i.ready, dut.o.valid, dut.o.ready, o_payload)
                if presenting and i_ready:
                    accepted.append(cycle)
                    sent += 1
                    presenting = False
                if o_valid and o_ready:
                    latencies.append(cycle - accepted[len(out)])
                    out.append(payload)
                cycle += 1
            ctx.set(dut.i.valid, 0)

    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results, latencies


def check_results(dut, segments, results):
    """Compare outputs with expectations; returns (checked, list of mismatch strings)."""
    bad, checked = [], 0
    for seg, out in zip(segments, results):
        assert len(out) == len(seg.inputs)
        for i, (got, exp) in enumerate(zip(out, seg.expected)):
            checked += 1
            if int(got) != int(exp):
                bad.append(describe(dut, seg, i, got))
    return checked, bad


# ------------------------------------------------------------------- cocotb runs
def write_segments(path, segments):
    """The vector file of ``cocotb_neuron`` (.npz)."""
    regs = np.array([[(s.regs_word >> (64 * w)) & (2 ** 64 - 1) for w in range(3)]
                     for s in segments], dtype=np.uint64)
    tables = np.array([[(sl | (ic << 16)) for sl, ic in (s.table or [(0, 0)] * 64)]
                       for s in segments], dtype=np.uint64)
    has_table = np.array([s.table is not None for s in segments], dtype=np.uint8)
    lengths = np.array([len(s.inputs) for s in segments], dtype=np.int64)
    inputs = np.concatenate([np.asarray(s.inputs, dtype=np.uint64) for s in segments])
    expected = np.concatenate([np.asarray(s.expected, dtype=np.uint64) for s in segments])
    np.savez(path, regs=regs, tables=tables, has_table=has_table, lengths=lengths,
             inputs=inputs, expected=expected)


@dataclass
class CocotbResult:
    simulator: str
    vectors: int
    summary: dict = field(default_factory=dict)
    build_s: float = 0.0
    test_s: float = 0.0
    passed: bool = False
    log: Path = None


def run_cocotb_segments(cls, params, simulator, segments, *, idle=0.0, backpressure=0.0,
                        latency=None, label="neuron", seed=None):
    """Build ``cls(**params)`` for ``simulator`` and play ``segments`` through it."""
    import json

    from trident.verify.runner import derive_seed, run_cocotb
    from trident.verify.verilog import build_root, generate_verilog

    vmod = generate_verilog(cls, params)
    stage = build_root() / "vectors"
    stage.mkdir(parents=True, exist_ok=True)
    base = stage / f"{label}-{simulator}-{os.getpid()}-{random.getrandbits(32):08x}"
    vec, summary = base.with_suffix(".npz"), base.with_suffix(".json")
    write_segments(vec, segments)
    env = {"TRIDENT_VECTORS": str(vec), "TRIDENT_SUMMARY": str(summary),
           "TRIDENT_IDLE": str(idle), "TRIDENT_BACKPRESSURE": str(backpressure),
           "TRIDENT_LATENCY": str(-1 if latency is None else latency)}
    seed = derive_seed(label, simulator) if seed is None else seed
    try:
        out = run_cocotb(vmod, simulator, test_module="cocotb_neuron", extra_env=env,
                         seed=seed, label=label, python_path=[HERE])
        data = json.loads(summary.read_text()) if summary.exists() else {}
    finally:
        vec.unlink(missing_ok=True)
        summary.unlink(missing_ok=True)
    return CocotbResult(simulator, sum(len(s.inputs) for s in segments), data, out["build_s"],
                        out["test_s"], bool(out["passed"]) and data.get("errors", 1) == 0
                        and data.get("missing", 1) == 0 and not data.get("latency_errors"),
                        out["log"])


def failure_text(dut, segments, res):
    """Readable mismatches of a cocotb run (global index → segment and item)."""
    starts = np.cumsum([0] + [len(s.inputs) for s in segments])
    lines = [f"{res.simulator}: {res.summary.get('errors')} mismatches, "
             f"{res.summary.get('missing')} missing, latency errors "
             f"{res.summary.get('latency_errors')} of {res.vectors}; log {res.log}"]
    for m in res.summary.get("mismatches", [])[:15]:
        g = m["index"]
        si = int(np.searchsorted(starts, g, side="right") - 1)
        got = int(m["got"], 16) if m.get("got") else 0
        lines.append("  " + describe(dut, segments[si], g - starts[si], got))
    if not res.summary and res.log and Path(res.log).exists():
        lines.append(Path(res.log).read_text(errors="replace")[-3000:])
    return "\n".join(lines)


UNITS = {"forward": NeuronUnit, "surrogate": SurrogateUnit, "backward": NeuronBackwardUnit}


# ------------------------------------------------------------------- closed loop (state fed back)
def _field(layout, name):
    from trident.verify.payload import fields_of
    off, width, _ = fields_of(layout)[name]
    return off, (1 << width) - 1


def forward_feedback(dut):
    """``feedback`` for :func:`simulate_segments`: item (t, j) takes ``v`` from the unit's
    own output for (t−1, j), as an engine writing ``o.v`` back to its state memory."""
    lay_i, lay_o = payload_layout(dut, "i"), payload_layout(dut, "o")
    vi_off, vi_mask = _field(lay_i, "v")
    vo_off, vo_mask = _field(lay_o, "v")

    def feedback(seg, index, outputs):
        value = int(seg.inputs[index])
        if index < seg.neurons:                       # t = 1: `first` set, v ignored
            return value
        prev = index - seg.neurons
        if prev >= len(outputs):
            return None                               # V[t−1] not out yet: wait
        v = (int(outputs[prev]) >> vo_off) & vo_mask
        return (value & ~(vi_mask << vi_off)) | (v << vi_off)
    return feedback


def backward_feedback(dut):
    """``feedback``: item (t, j) takes ``du_next`` from the unit's output for (t+1, j)."""
    lay_i, lay_o = payload_layout(dut, "i"), payload_layout(dut, "o")
    di_off, di_mask = _field(lay_i, "du_next")
    do_off, do_mask = _field(lay_o, "du")

    def feedback(seg, index, outputs):
        value = int(seg.inputs[index])
        if index < seg.neurons:                       # t = T: `last` set
            return value
        prev = index - seg.neurons
        if prev >= len(outputs):
            return None
        du = (int(outputs[prev]) >> do_off) & do_mask
        return (value & ~(di_mask << di_off)) | (du << di_off)
    return feedback


def scramble_state_inputs(dut, segments, name, rng):
    """Replace every fed-back field (``v`` / ``du_next``) by garbage, so that a closed-loop
    run can only pass if the unit's own outputs are fed back."""
    off, mask = _field(payload_layout(dut, "i"), name)
    for seg in segments:
        junk = rng.integers(0, mask + 1, len(seg.inputs)).astype(np.uint64)
        ins = np.asarray(seg.inputs, dtype=np.uint64)
        keep = np.arange(len(ins)) < seg.neurons
        seg.inputs = np.where(keep, ins, (ins & np.uint64(~(mask << off) & (2**64 - 1)))
                              | (junk << np.uint64(off)))
