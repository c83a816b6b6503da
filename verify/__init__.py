"""trident.verify: the harness every RTL test uses.

- :mod:`.verilog`      Amaranth -> Verilog, cached per configuration (``build/verilog/``)
- :mod:`.runner`       cocotb runs on Icarus and Verilator from pytest: builds cached per
                       simulator/configuration, one run directory per run, seeds, waves
- :mod:`.payload`      pack/unpack stream payloads (``data.StructLayout``) bit-exactly
- :mod:`.amaranth_sim` quick tests in the Amaranth simulator
- :mod:`.memory_peer`  a word memory behind a request/response port (stalls, latency)
- :mod:`.tb`           cocotb side: StreamDriver, StreamMonitor, Scoreboard, clock/reset,
                       and ``tb.stream_test``, the generic vector-file test
- :mod:`.fp16`         FP16 oracles (SoftFloat, NumPy), vector generators, unit specs
- :mod:`.pytest_fixtures`  ``seed``/``rng`` fixtures and simulator parametrisation

Shortest path for a stream component::

    from trident.verify.payload import pack, payload_layout
    from trident.verify.runner import run_stream_vectors

    dut = MyUnit(stages=2)
    inputs = pack(payload_layout(dut, "i"), a=a, b=b)            # numpy arrays of fields
    expected = pack(payload_layout(dut, "o"), z=reference(a, b))
    run_stream_vectors(MyUnit, "verilator", inputs, expected, params={"stages": 2},
                       latency=dut.latency)                       # raises on any mismatch

See ``docs/fp16.md`` for the environment variables and a hand-written cocotb test.
"""
