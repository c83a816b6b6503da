"""cocotb side of the update-unit tests (run inside Icarus or Verilator).

Loads the stimulus written by :func:`trident.rtl.engines.wg_conv_harness.run_cocotb_update`:
per segment one register write, then its input words (random idle cycles and output
back-pressure if asked; no wait between segments), and writes every output word to a
JSON file.  No arithmetic happens here: the comparison with the golden is on the pytest
side.  Signals are driven on the falling clock edge and sampled once they have settled
(``ReadOnly``): the unit's ``i.ready`` depends on the ``o.ready`` driven in the same cycle.

Environment: ``TRIDENT_UPDATE_VECTORS`` (.npz in), ``TRIDENT_UPDATE_RESULTS`` (JSON out),
``TRIDENT_IDLE``, ``TRIDENT_BACKPRESSURE``.
"""

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from trident.verify.tb.env import env_float, reset, start_clock, words_to_ints


@cocotb.test()
async def update_cases(dut):
    with np.load(os.environ["TRIDENT_UPDATE_VECTORS"]) as f:
        regs = words_to_ints(f["regs"])
        inputs = words_to_ints(f["inputs"])
        offsets = f["offsets"].tolist()
    idle = env_float("TRIDENT_IDLE")
    backpressure = env_float("TRIDENT_BACKPRESSURE")
    rng = random.Random(random.getrandbits(64))
    seg_of = [s for s in range(len(regs)) for _ in range(offsets[s + 1] - offsets[s])]
    total = len(seg_of)

    clk = start_clock(dut)
    dut.regs__valid.value = 0
    dut.i__valid.value = 0
    dut.o__ready.value = 1
    await reset(dut)
    edge = FallingEdge(clk)
    await edge

    outs, sent, seg, cycles = [], 0, -1, 0
    t0 = time.perf_counter()
    while len(outs) < total and cycles < 50 * total + 200:
        dut.regs__valid.value = 0
        dut.i__valid.value = 0
        present = False
        if sent < total and seg_of[sent] != seg:
            seg = seg_of[sent]
            dut.regs__payload.value = regs[seg]
            dut.regs__valid.value = 1
        elif sent < total and not (idle and rng.random() < idle):
            present = True
            dut.i__payload.value = inputs[sent]
            dut.i__valid.value = 1
        take = not (backpressure and rng.random() < backpressure)
        dut.o__ready.value = int(take)
        await ReadOnly()
        if present and int(dut.i__ready.value):
            sent += 1
        if take and int(dut.o__valid.value):
            outs.append(dut.o__payload.value.to_unsigned())
        await edge
        cycles += 1
    path = os.environ["TRIDENT_UPDATE_RESULTS"]
    with open(path + ".tmp", "w") as f:
        json.dump({"outputs": [f"{x:x}" for x in outs], "cycles": cycles,
                   "wall_s": time.perf_counter() - t0}, f)
    os.replace(path + ".tmp", path)
    assert len(outs) == total, f"{len(outs)} of {total} outputs"
