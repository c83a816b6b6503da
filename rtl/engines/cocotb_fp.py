"""cocotb side of the engine tests (run inside Icarus or Verilator): FPEngine,
ConvEngine and WGEngine share it.

Loads the stimulus written by :func:`trident.rtl.engines.harness.run_cocotb_fc`, plays the
cases back to back (weights, descriptor, input words and — for the WG engine — delta
words, for the BP engine need words; random idle input cycles and back-pressure on the output if asked), and writes
every output word (``currents`` or ``grads``), the counters and the wall time of each case
to a JSON file.  No arithmetic happens here: the comparison
with the golden is done on the pytest side.

Signals are driven and sampled on the falling clock edge (TOOLCHAIN.md): the engine's
``ready`` outputs never depend on the ``valid`` inputs driven at the same edge and
``currents.valid`` never on ``currents.ready``, so a value sampled there is the one the
next rising edge sees.

Environment: ``TRIDENT_FP_VECTORS`` (.npz in), ``TRIDENT_FP_RESULTS`` (JSON out),
``TRIDENT_IDLE``, ``TRIDENT_BACKPRESSURE``.
"""

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from trident.verify.tb.env import env_float, reset, start_clock, words_to_ints


@cocotb.test()
async def fp_engine_cases(dut):
    with np.load(os.environ["TRIDENT_FP_VECTORS"]) as f:
        arrays = {k: f[k] for k in f.files}
    weights = words_to_ints(arrays["weights"])
    inputs = words_to_ints(arrays["inputs"])
    deltas = words_to_ints(arrays["deltas"])
    configs = words_to_ints(arrays["config"])
    off_w, off_i, off_o, off_d = (arrays[f"off_{k}"].tolist() for k in "wiod")
    has_weights = hasattr(dut, "weights__valid")
    # the second input stream: deltas (WG engine) or need words (BP engine)
    aux = "deltas" if hasattr(dut, "deltas__valid") else "need"
    has_deltas = hasattr(dut, f"{aux}__valid")
    out = "grads" if hasattr(dut, "grads__valid") else "currents"
    limits = arrays["limit"].tolist()
    idle = env_float("TRIDENT_IDLE")
    backpressure = env_float("TRIDENT_BACKPRESSURE")
    rng = random.Random(random.getrandbits(64))

    clk = start_clock(dut)
    for name in ("weights__valid", "deltas__valid", "need__valid", "cmd__valid",
                 "inputs__valid", "cnt_clear"):
        if hasattr(dut, name):
            getattr(dut, name).value = 0
    getattr(dut, f"{out}__ready").value = 1
    await reset(dut)
    edge = FallingEdge(clk)
    await edge

    results = []
    t_all = time.perf_counter()
    for c, config in enumerate(configs):
        t0 = time.perf_counter()
        dut.cnt_clear.value = 1
        await edge
        dut.cnt_clear.value = 0
        for payload in weights[off_w[c]:off_w[c + 1]]:
            dut.weights__payload.value = payload
            dut.weights__valid.value = 1
            await edge
        if has_weights:
            dut.weights__valid.value = 0
        dut.cmd__payload.value = config
        dut.cmd__valid.value = 1
        while True:
            ready = int(dut.cmd__ready.value)
            await edge
            if ready:
                break
        dut.cmd__valid.value = 0

        words = inputs[off_i[c]:off_i[c + 1]]
        dwords = deltas[off_d[c]:off_d[c + 1]] if has_deltas else []
        n_out = off_o[c + 1] - off_o[c]
        outs, sent, dsent, cycles = [], 0, 0, 0
        in_valid, in_ready = dut.inputs__valid, dut.inputs__ready
        in_payload = dut.inputs__payload
        if has_deltas:
            aux_valid, aux_ready, aux_payload = (getattr(dut, f"{aux}__{k}")
                                                 for k in ("valid", "ready", "payload"))
        o_valid = getattr(dut, f"{out}__valid")
        o_ready = getattr(dut, f"{out}__ready")
        o_payload = getattr(dut, f"{out}__payload")
        busy = dut.busy
        timed_out = False
        while True:
            present = sent < len(words) and not (idle and rng.random() < idle)
            if present:
                in_payload.value = words[sent]
                in_valid.value = 1
                if int(in_ready.value):
                    sent += 1
            else:
                in_valid.value = 0
            if has_deltas:
                if dsent < len(dwords) and not (idle and rng.random() < idle):
                    aux_payload.value = dwords[dsent]
                    aux_valid.value = 1
                    if int(aux_ready.value):
                        dsent += 1
                else:
                    aux_valid.value = 0
            take = not (backpressure and rng.random() < backpressure)
            o_ready.value = int(take)
            if take and int(o_valid.value):
                outs.append(o_payload.value.to_unsigned())
            await edge
            cycles += 1
            if len(outs) >= n_out and not int(busy.value):
                break
            if cycles > limits[c]:
                timed_out = True
                break
        in_valid.value = 0
        if has_deltas:
            aux_valid.value = 0
        o_ready.value = 1
        counters = {"busy": int(dut.cnt_busy.value), "events": int(dut.cnt_events.value),
                    "ops": int(dut.cnt_ops.value), "skipped": int(dut.cnt_skipped.value)}
        results.append({"outputs": [f"{x:x}" for x in outs], "counters": counters,
                        "sent": sent, "timed_out": timed_out,
                        "wall_s": time.perf_counter() - t0})
        if timed_out:
            dut._log.error("case %d timed out after %d cycles (%d/%d inputs, %d/%d outputs)",
                           c, cycles, sent, len(words), len(outs), n_out)
            break
    summary = {"cases": results, "wall_s": time.perf_counter() - t_all}
    path = os.environ["TRIDENT_FP_RESULTS"]
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f)
    os.replace(path + ".tmp", path)
    assert not any(r["timed_out"] for r in results), "a case timed out"
