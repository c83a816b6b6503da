"""Quick tests in the Amaranth simulator: play packed payloads through a stream component.

For unit tests that need no HDL simulator: elaborate in-process, drive ``i`` (with
optional idle cycles), consume ``o`` (with optional back-pressure), return the outputs
and the per-transaction latency.  ~10 k transactions/s; use the cocotb runs for volume.

Example
-------
>>> from trident.rtl.fp16 import FPAdd
>>> from trident.verify.amaranth_sim import simulate_stream
>>> from trident.verify.payload import pack, payload_layout
>>> dut = FPAdd(stages=3)
>>> res = simulate_stream(dut, pack(payload_layout(dut, "i"), a=[0x3C00], b=[0x3C00]))
>>> hex(res.outputs[0]), res.latencies[0]
('0x4000', 3)
"""

import random
from dataclasses import dataclass, field

from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

__all__ = ["StreamResult", "simulate_stream"]


@dataclass
class StreamResult:
    """What :func:`simulate_stream` observed.

    Attributes
    ----------
    outputs : list of int
        Raw output payloads, in order.
    latencies : list of int
        For each transaction, clock edges between its input and its output transfer.
    cycles : int
        Clock cycles simulated.
    probes : list of int
        The values of the ``probes`` signals two cycles after the last output.
    """
    outputs: list = field(default_factory=list)
    latencies: list = field(default_factory=list)
    cycles: int = 0
    probes: list = field(default_factory=list)


def simulate_stream(dut, inputs, *, idle=0.0, backpressure=0.0, seed=0, vcd=None,
                    max_cycles=None, in_port="i", out_port="o", n_outputs=None, probes=()):
    """Simulate a component with stream ports ``i``/``o`` on a list of payloads.

    Parameters
    ----------
    dut : wiring.Component
        Has ``In(stream.Signature)`` port ``in_port`` and ``Out(stream.Signature)``
        port ``out_port`` in the ``sync`` domain.
    inputs : sequence of int
        Raw input payloads (see :func:`trident.verify.payload.pack`).
    idle : float
        Probability of inserting an idle cycle before presenting each input.
    backpressure : float
        Probability that ``o.ready`` is low on a cycle.
    seed : int
        Seed of the idle/back-pressure pattern.
    vcd : str or path, optional
        Write a VCD waveform there.
    max_cycles : int, optional
        Give up (``TimeoutError``) after this many cycles (default: generous).
    n_outputs : int, optional
        Outputs to collect, for components that do not make one output per input (default:
        one per input). Latencies are then not recorded.
    probes : sequence of Value
        Signals of the component to read when it is done (e.g. a count of flag pulses),
        two cycles after the last output so that registered flags settle.

    Returns
    -------
    StreamResult
    """
    inputs = [int(x) for x in inputs]
    n = len(inputs)
    one_to_one = n_outputs is None
    n_out = n if one_to_one else n_outputs
    if max_cycles is None:
        max_cycles = 100 + 4 * n + int(n * (idle + backpressure) * 20)
    i_port, o_port = getattr(dut, in_port), getattr(dut, out_port)
    i_payload, o_payload = Value.cast(i_port.payload), Value.cast(o_port.payload)
    result = StreamResult()
    rng = random.Random(seed)

    async def bench(ctx):
        accepted_at = []
        sent = 0
        presenting = False
        cycle = 0
        ctx.set(i_port.valid, 0)
        while len(result.outputs) < n_out:
            if cycle >= max_cycles:
                raise TimeoutError(
                    f"{len(result.outputs)} of {n_out} outputs after {cycle} cycles")
            if not presenting and sent < n and not (idle and rng.random() < idle):
                ctx.set(i_payload, inputs[sent])
                ctx.set(i_port.valid, 1)
                presenting = True
            elif not presenting:
                ctx.set(i_port.valid, 0)
            ctx.set(o_port.ready, 0 if (backpressure and rng.random() < backpressure) else 1)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                i_port.ready, o_port.valid, o_port.ready, o_payload)
            if presenting and i_ready:
                accepted_at.append(cycle)
                sent += 1
                presenting = False
            if o_valid and o_ready:
                k = len(result.outputs)
                result.outputs.append(payload)
                if one_to_one:
                    result.latencies.append(cycle - accepted_at[k] if k < len(accepted_at) else -1)
            cycle += 1
        result.cycles = cycle
        if probes:
            ctx.set(i_port.valid, 0)
            await ctx.tick().repeat(2)
            result.probes = [ctx.get(p) for p in probes]

    # The wrapper defines ``sync`` so that combinational units (stages=0) simulate too.
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    return result
