"""Tests of the verification harness itself (trident.verify)."""

from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from trident.rtl.fp16 import FPAdd, FPCompare, FPMul, Float16, place_registers
from trident.verify.amaranth_sim import simulate_stream
from trident.verify.fp16 import oracle as O
from trident.verify.fp16 import vectors as V
from trident.verify.payload import pack, payload_layout, unpack
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator
from trident.verify.runner import (StreamTestFailure, derive_seed, run_cocotb,
                                   run_stream_vectors)
from trident.verify.tb.scoreboard import Scoreboard, masked
from trident.verify.verilog import config_key, generate_verilog

HERE = Path(__file__).parent


class Accumulator(wiring.Component):
    """Running sum of the input stream (mod 2^width), one registered result per input.

    Members
    -------
    i : In(stream.Signature(width))
    o : Out(stream.Signature(width))
    """

    def __init__(self, width=16):
        self.width = width
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        total = Signal(self.width)
        ce = ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(ce), self.o.payload.eq(total)]
        with m.If(ce):
            m.d.sync += self.o.valid.eq(self.i.valid)
            with m.If(self.i.valid):
                m.d.sync += total.eq(total + self.i.payload)
        return m


# ---- payload packing -------------------------------------------------------------------

def test_pack_unpack_roundtrip(rng):
    layout = data.StructLayout({"a": Float16, "flag": 1, "k": 7})
    a = V.random_bits(rng, 100)
    flag = rng.integers(0, 2, 100)
    k = rng.integers(0, 128, 100)
    packed = pack(layout, a=a, flag=flag, k=k)
    assert packed.dtype == np.uint64
    assert int(packed[0]) == int(a[0]) | (int(flag[0]) << 16) | (int(k[0]) << 17)
    out = unpack(layout, packed)
    assert (out["a"] == a).all() and (out["flag"] == flag).all() and (out["k"] == k).all()


def test_pack_keeps_every_bit_of_large_ints():
    layout = data.StructLayout({"a": 64, "b": 8})
    big = (1 << 63) + 5
    # a list mixing a value ≥ 2**63 with small ones became float64 (low bits lost) before
    packed = pack(data.StructLayout({"a": 64}), a=[big, 3, -1])
    assert [int(x) for x in packed] == [big, 3, (1 << 64) - 1]
    packed = pack(layout, a=np.array([big], dtype=object), b=[0x1FF])
    assert int(packed[0]) == big | (0xFF << 64)
    assert pack(data.StructLayout({"a": 64}), a=np.array([big], dtype=np.uint64))[0] == np.uint64(big)


def test_pack_signed_and_wide():
    from amaranth.hdl import signed
    layout = data.StructLayout({"x": signed(40), "y": unsigned(40)})
    packed = pack(layout, x=[-1, 5], y=[(1 << 40) - 1, 3])
    assert packed.dtype == object and int(packed[0]) == (1 << 80) - 1
    out = unpack(layout, packed)
    assert list(out["x"]) == [-1, 5] and list(out["y"]) == [(1 << 40) - 1, 3]
    with pytest.raises(KeyError):
        pack(layout, z=[1])


def test_payload_layout_of_units():
    dut = FPAdd(tag_width=3)
    layout = payload_layout(dut, "i")
    assert [name for name, _ in layout] == ["a", "b", "sub", "tag"]
    assert payload_layout(dut, "o").size == 16 + 3


# ---- Verilog generation cache ----------------------------------------------------------

def test_verilog_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_VERILOG_CACHE", str(tmp_path))
    first = generate_verilog(FPMul, {"stages": 2})
    assert first.path.parent == tmp_path and first.path.exists()
    stamp = first.path.stat().st_mtime_ns
    again = generate_verilog(FPMul, {"stages": 2})
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    other = generate_verilog(FPMul, {"stages": 3})
    assert other.key != first.key
    plain = generate_verilog(FPMul, {"stages": 2}, optimize=False)
    assert plain.key != first.key
    text = first.path.read_text()
    for port in ("i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready",
                 "clk", "rst"):
        assert f" {port};" in text, port
    assert first.toplevel == "fpmul" and f"module {first.toplevel}(" in text
    assert config_key(FPMul, {"stages": 2}) == first.key


def test_combinational_unit_gets_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_VERILOG_CACHE", str(tmp_path))
    for optimize in (True, False):
        text = generate_verilog(FPCompare, {"stages": 0}, optimize=optimize).path.read_text()
        assert "input clk;" in text and "input rst;" in text


# ---- scoreboard --------------------------------------------------------------------------

def test_scoreboard_accounting():
    sb = Scoreboard(name="t")
    for x in (1, 2, 3):
        sb.expect(x, meta=("in", x))
    assert sb.observe(1) and not sb.observe(5) and sb.outstanding == 1
    assert not sb.passed and sb.errors == 1
    assert "got 0x5 expected 0x2" in sb.report()
    sb.observe(3)
    sb.observe(9)                      # nothing outstanding
    assert sb.unexpected == 1 and not sb.passed


def test_scoreboard_pluggable_compare():
    sb = Scoreboard(compare=masked(0xFF))
    sb.expect(0x1234)
    assert sb.observe(0xAB34) and sb.passed
    nan_equal = Scoreboard(compare=lambda g, e: g == e or (O.is_nan([g])[0] and O.is_nan([e])[0]))
    nan_equal.expect(0x7E00)
    assert nan_equal.observe(0x7C01) and nan_equal.passed


# ---- pipeline placement, seeds -----------------------------------------------------------

def test_place_registers():
    w = [1.0, 5.0, 1.0, 1.0]
    assert place_registers(w, 0) == ()
    for s in range(1, 5):
        cuts = place_registers(w, s)
        assert len(cuts) == s and cuts[-1] == 4 and list(cuts) == sorted(set(cuts))
    assert place_registers(w, 2) == (2, 4)           # isolates the slow step
    with pytest.raises(ValueError):
        place_registers(w, 5)


def test_seed_derivation(monkeypatch):
    a, b = derive_seed("x"), derive_seed("y")
    assert a != b and derive_seed("x") == a and 0 <= a < 2 ** 32


# ---- Amaranth simulator helper -----------------------------------------------------------

@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.4, 0.4)])
def test_simulate_stream(idle, backpressure, seed):
    values = list(range(1, 200))
    res = simulate_stream(Accumulator(), values, idle=idle, backpressure=backpressure, seed=seed)
    assert res.outputs == list(np.cumsum(values) & 0xFFFF)
    if not backpressure:
        assert set(res.latencies) == {1}


# ---- cocotb runs -------------------------------------------------------------------------

@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_stream_vectors_detects_mismatches(simulator, rng):
    """A broken expectation must fail, with the vectors named in the message."""
    require_simulator(simulator)
    dut = FPAdd(stages=2)
    a, b = V.random_bits(rng, 300), V.random_bits(rng, 300)
    inputs = pack(payload_layout(dut, "i"), a=a, b=b)
    expected = pack(payload_layout(dut, "o"), z=O.sf_add(a, b))
    expected[[7, 100]] ^= np.uint64(1)
    with pytest.raises(StreamTestFailure) as err:
        run_stream_vectors(FPAdd, simulator, inputs, expected, params={"stages": 2},
                           latency=2, label="harness-negative")
    message = str(err.value)
    assert "2 mismatches" in message and "#7" in message and "TRIDENT_SEED=" in message


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_stream_vectors_wrong_latency_fails(simulator, rng):
    require_simulator(simulator)
    dut = FPAdd(stages=2)
    a, b = V.random_bits(rng, 50), V.random_bits(rng, 50)
    inputs = pack(payload_layout(dut, "i"), a=a, b=b)
    expected = pack(payload_layout(dut, "o"), z=O.sf_add(a, b))
    with pytest.raises(StreamTestFailure, match="latency"):
        run_stream_vectors(FPAdd, simulator, inputs, expected, params={"stages": 2},
                           latency=3, label="harness-latency")


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_custom_cocotb_module(simulator):
    """A hand-written cocotb test (driver, monitor, model, scoreboard) for any component."""
    require_simulator(simulator)
    out = run_cocotb(generate_verilog(Accumulator, {"width": 16}), simulator,
                     test_module="cocotb_accumulator", python_path=[HERE],
                     label="accumulator")
    assert out["passed"], Path(out["log"]).read_text()[-3000:]


# A Verilator build with tracing compiles its own run-time library (~30 s the first
# time on a machine): that one runs with the slow tests.
@pytest.mark.parametrize("simulator", [
    pytest.param("icarus", id="icarus"),
    pytest.param("verilator", id="verilator", marks=pytest.mark.slow)])
def test_waves_on_request(simulator, monkeypatch, rng):
    require_simulator(simulator)
    monkeypatch.setenv("TRIDENT_WAVES", "1")
    dut = FPMul(stages=1)
    a, b = V.random_bits(rng, 20), V.random_bits(rng, 20)
    result = run_stream_vectors(FPMul, simulator, pack(payload_layout(dut, "i"), a=a, b=b),
                                pack(payload_layout(dut, "o"), z=O.sf_mul(a, b)),
                                params={"stages": 1}, latency=1, label="waves")
    assert result.waves is not None and Path(result.waves).exists()
    assert Path(result.waves).stat().st_size > 0


# ---- the oracles agree with each other -----------------------------------------------------

def test_oracles_agree(rng):
    a, b = V.random_bits(rng, 200_000), V.random_bits(rng, 200_000)
    assert (O.sf_add(a, b) == O.np_add(a, b)).all()
    assert (O.sf_sub(a, b) == O.np_sub(a, b)).all()
    assert (O.sf_mul(a, b) == O.np_mul(a, b)).all()
    x, y = V.special_pairs()
    assert (O.sf_mul(x, y) == O.np_mul(x, y)).all() and (O.sf_add(x, y) == O.np_add(x, y)).all()


def test_tie_generators_make_ties(rng):
    a, b, sub = V.ties_add(rng, 200)
    assert len(a) == 200
    for x, y, s in zip(a.tolist(), b.tolist(), sub.tolist()):
        ix, ex = V.exact_value(x)
        iy, ey = V.exact_value(y)
        base = min(ex, ey)
        total = (ix << (ex - base)) + (-1 if s else 1) * (iy << (ey - base))
        assert V.is_tie(total, base)
    a, b, c = V.ties_fma(rng, 50)
    assert len(a) == 50


class TwoMemories(wiring.Component):
    """A zero-initialised memory (8 × 8 bits), a one-bit one (16 × 1) and a table (4 × 8 bits,
    1 2 3 4), read combinationally at ``addr``."""

    def __init__(self):
        super().__init__({"addr": In(4), "zero": Out(8), "flag": Out(1), "word": Out(8)})

    def elaborate(self, platform):
        from amaranth.lib.memory import Memory
        m = Module()
        for name, shape, depth, init in (("zeros", 8, 8, []), ("bits", 1, 16, []),
                                         ("rom", 8, 4, [1, 2, 3, 4])):
            mem = Memory(shape=shape, depth=depth, init=init)
            m.submodules[name] = mem
            port = mem.read_port(domain="comb")
            m.d.comb += port.addr.eq(self.addr)
            m.d.comb += {"zeros": self.zero, "bits": self.flag, "rom": self.word}[name].eq(port.data)
        return m


def test_zero_memories_are_zeroed_by_a_loop(tmp_path, monkeypatch):
    """Memories that start at zero lose Amaranth's word-by-word initialiser for a loop (a
    2^21-word DRAM took minutes otherwise); a non-zero table keeps its words; Icarus reads
    zeros and the table back (an uninitialised Verilog memory would read x)."""
    import shutil
    import subprocess
    monkeypatch.setenv("TRIDENT_VERILOG_CACHE", str(tmp_path))
    module = generate_verilog(TwoMemories)
    text = module.path.read_text()
    assert text.count("initial for") == 2 and "8'h00;" not in text and "8'h04;" in text
    if not shutil.which("iverilog"):
        pytest.skip("Icarus Verilog is not installed")
    bench = tmp_path / "bench.v"
    bench.write_text(f"""module bench; reg clk = 0, rst = 0; reg [3:0] addr; wire [7:0] zero, word; wire flag;
  {module.toplevel} dut(.clk(clk), .rst(rst), .addr(addr), .zero(zero), .flag(flag), .word(word));
  integer i;
  initial begin
    for (i = 0; i < 4; i = i + 1) begin addr = i; #1 $display("%0d %0d %0d", zero, flag, word); end
  end
endmodule
""")
    subprocess.run(["iverilog", "-o", str(tmp_path / "sim"), str(bench), str(module.path)], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:4] == ["0 0 1", "0 0 2", "0 0 3", "0 0 4"]
