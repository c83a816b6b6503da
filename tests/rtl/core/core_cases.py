"""Programs for the core tests and their golden results.

* :func:`layer_program` — one random FC layer as a program ``FP, BPN, BP, WG, UPDATE, END``
  (or ``FP, BPN, BPWG, UPDATE, END`` with ``fused``; hand-packed with
  ``golden.hw.descriptors``): input spikes of a chosen density (or analog input), a random
  incoming ``δS``, all neuron options; every operand in its own DRAM region.
* :func:`bad_programs` — one program per error code, each a bad descriptor after a good
  one (the core must stop at the bad one, with its code and address).
* :func:`network` — a small MLP compiled by ``golden.hw.compiler`` (a whole training step).

The expected DRAM image always comes from the golden device, ``golden.hw.program.run``;
the RTL must reproduce every word of it.
"""

from dataclasses import dataclass

import numpy as np
import torch

from trident.golden.hw import HwExactNetwork
from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import fp16 as F
from trident.golden.hw import program as P
from trident.golden.hw.network import host_loss_grad
from trident.golden.hw.neuron import NeuronParams
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig

#: A small core: every test size fits, the Amaranth simulation stays quick; WG tiles of
#: more than 4 groups run in several passes.
SMALL_CORE = dict(lanes=4, weight_depth=512, state_depth=64, max_inputs=256, max_steps=8,
                  max_batch=8, addr_width=16, wg_groups=4)

FC_GEOMETRY = dict(kernel=1, stride=1, pool=1, padding=0, in_h=1, in_w=1, out_h=1, out_w=1,
                   pool_h=1, pool_w=1, kk=1, in_plane=1, out_plane=1, pool_plane=1)


def half_words(count):
    return -(-count // 2)


def spike_words(count):
    return -(-count // 32)


class _Allocator:
    def __init__(self, start):
        self.top = start

    def take(self, words):
        addr, self.top = self.top, self.top + words
        return addr


@dataclass
class Case:
    """A program and its DRAM image (``memory`` is the initial image)."""
    label: str
    memory: np.ndarray
    pcs: list
    regions: dict

    def golden(self, core_params):
        """The golden device's final memory and statuses."""
        mem = self.memory.copy()
        statuses = [P.run(mem, pc, core_params) for pc in self.pcs]
        return mem, statuses


def _slot(name, addr, pitch, words, tstride=0):
    return {f"{name}_addr": addr, f"{name}_pitch": pitch, f"{name}_words": words,
            f"{name}_tstride": tstride}


def _random_half(rng, shape, zeros, scale):
    v = rng.standard_normal(shape) * scale
    v[rng.random(shape) < zeros] = 0.0
    return v.astype(np.float16)


def conv_geometry(in_h, in_w, kernel, stride=1, padding=0, pool=1):
    """The descriptor's geometry fields of a conv layer on ``in_h × in_w`` maps."""
    out_h = (in_h + 2 * padding - kernel) // stride + 1
    out_w = (in_w + 2 * padding - kernel) // stride + 1
    pool_h, pool_w = out_h // pool, out_w // pool
    return dict(kernel=kernel, stride=stride, pool=pool, padding=padding, in_h=in_h, in_w=in_w,
                out_h=out_h, out_w=out_w, pool_h=pool_h, pool_w=pool_w, kk=kernel * kernel,
                in_plane=in_h * in_w, out_plane=out_h * out_w, pool_plane=pool_h * pool_w)


def layer_program(rng, core_params, *, n_in, n_out, steps, batch, density, kind="lif",
                  soft_reset=False, surrogate="rectangular", decay_input=True, analog=False,
                  momentum=False, fused=False, conv=None, label=None):
    """One FC layer (``n_in`` inputs, ``n_out`` neurons) or, with ``conv`` (the keywords of
    :func:`conv_geometry`), one conv layer (``n_in`` → ``n_out`` channels): FP, BPN, BP, WG
    (or BPWG), UPDATE on random data (see the module docstring)."""
    cfg = NeuronConfig(kind=kind, tau=2.0, decay_input=decay_input, v_threshold=1.0,
                       v_reset=None if soft_reset else 0.0, detach_reset=True,
                       surrogate=surrogate, k_init=0.8)
    neuron = NeuronParams.from_config(cfg)
    geometry = conv_geometry(**conv) if conv else FC_GEOMETRY
    rows = steps * batch
    x_len = n_in * geometry["in_plane"]                 # elements of a row, per tensor
    h_len = n_out * geometry["out_plane"]
    s_len = n_out * geometry["pool_plane"]
    w_len = n_in * geometry["kk"]
    pw = half_words(w_len)
    x_words = half_words(x_len) if analog else spike_words(x_len)
    # WG in output tiles of as many groups as the accumulators take (a conv layer's δI maps
    # of a tile in the state memory); BPWG takes all outputs
    wg_outs = core_params.lanes * core_params.wg_groups
    if conv:
        wg_outs = min(wg_outs, core_params.state_depth // geometry["out_plane"] // 2 * 2)
    wg_tiles = [dict(out_lo=lo, out_cnt=min(wg_outs, n_out - lo)) for lo in range(0, n_out, wg_outs)]
    fused = fused and len(wg_tiles) == 1
    alloc = _Allocator((5 + len(wg_tiles)) * D.DESC_WORDS)      # the program comes first
    sizes = {"params": D.PARAM_WORDS, "w": n_out * pw, "x": rows * x_words,
             "h": rows * half_words(h_len), "s": rows * spike_words(s_len),
             "ds": rows * half_words(s_len), "di": rows * half_words(h_len),
             "dsb": rows * half_words(x_len), "g": n_out * pw, "m": n_out * pw}
    reg = {name: alloc.take(size) for name, size in sizes.items()}
    mem = np.zeros(alloc.top + 16, dtype=np.uint32)

    # weights scaled so that the neurons see about one threshold per step
    fan_in = n_in * geometry["kk"]
    active = max(1.0, density * fan_in) if not analog else fan_in * 0.5
    w = _random_half(rng, (n_out, w_len), 0.05, 2.5 / np.sqrt(active))
    mem[reg["w"]:reg["w"] + n_out * pw] = D.pack_half(w, pw).reshape(-1)
    if analog:
        x = _random_half(rng, (rows, x_len), 1 - density, 1.0)
        mem[reg["x"]:reg["x"] + rows * x_words] = D.pack_half(x, x_words).reshape(-1)
    else:
        x = rng.random((rows, x_len)) < density
        mem[reg["x"]:reg["x"] + rows * x_words] = D.pack_spikes(x, x_words).reshape(-1)
    ds = _random_half(rng, (rows, s_len), 0.3, 4.0)
    hw_ds = half_words(s_len)
    mem[reg["ds"]:reg["ds"] + rows * hw_ds] = D.pack_half(ds, hw_ds).reshape(-1)
    if momentum:
        mb = _random_half(rng, (n_out, w_len), 0.2, 0.5)
        mem[reg["m"]:reg["m"] + n_out * pw] = D.pack_half(mb, pw).reshape(-1)
    block = D.param_block(neuron, steps, F.const(0.25), F.const(0.5) if momentum else None, 3)
    mem[reg["params"]:reg["params"] + D.PARAM_WORDS] = block

    common = dict(steps=steps, batch=batch, param_addr=reg["params"],
                  layer=D.LayerType.CONV if conv else D.LayerType.FC,
                  out_lo=0, out_cnt=n_out, in_lo=0, in_cnt=n_in, out_total=n_out,
                  in_total=n_in, **geometry)
    nbits = dict(neuron=int(D.NeuronType[kind.upper()]),
                 surrogate=int(D.SurrogateType[surrogate.upper()]), soft_reset=int(soft_reset),
                 decay_input=int(decay_input))
    hs = half_words(h_len)
    ss = spike_words(s_len)
    ds_words = half_words(s_len)
    xs = half_words(x_len)
    plane = geometry["out_plane"]

    def t_slot(name, region, words):
        return _slot(name, reg[region], words, words, batch * words)

    descs = [
        D.Descriptor(op=D.Opcode.FP, analog=int(analog), **common, **nbits,
                     **_slot("a", reg["w"], pw, pw), **t_slot("b", "x", x_words),
                     **t_slot("c", "h", hs), **t_slot("d", "s", ss)),
        D.Descriptor(op=D.Opcode.BPN, **common, **nbits, **t_slot("b", "ds", ds_words),
                     **t_slot("c", "h", hs), **t_slot("d", "di", hs)),
        *([D.Descriptor(op=D.Opcode.BPWG, analog=int(analog), **common,
                        **_slot("a", reg["w"], pw, pw), **t_slot("b", "di", hs),
                        **t_slot("c", "dsb", xs), **_slot("d", reg["g"], pw, pw),
                        **t_slot("e", "x", x_words))] if fused else [
          D.Descriptor(op=D.Opcode.BP, **common, **_slot("a", reg["w"], pw, pw),
                       **t_slot("b", "di", hs), **t_slot("c", "dsb", xs)),
          *(D.Descriptor(op=D.Opcode.WG, analog=int(analog), **{**common, **tile},
                         **_slot("a", reg["g"] + tile["out_lo"] * pw, pw, pw),
                         **t_slot("b", "x", x_words),
                         **_slot("c", reg["di"] + tile["out_lo"] * plane // 2, hs,
                                 half_words(tile["out_cnt"] * plane), batch * hs))
            for tile in wg_tiles)]),
        D.Descriptor(op=D.Opcode.UPDATE, param_addr=reg["params"], length=n_out * pw,
                     momentum=int(momentum), a_addr=reg["w"], b_addr=reg["g"], c_addr=reg["m"]),
        D.Descriptor(op=D.Opcode.END),
    ]
    for k, d in enumerate(descs):
        problem = D.validate(d, core_params)
        if problem != D.ErrorCode.NONE:
            raise ValueError(f"layer_program: descriptor {k} ({d.op.name}) fails {problem.name}")
        mem[k * D.DESC_WORDS:(k + 1) * D.DESC_WORDS] = D.pack(d)
    shape = (f"conv{n_in}x{n_out}-{conv['in_h']}x{conv['in_w']}k{conv['kernel']}"
             f"s{conv.get('stride', 1)}p{conv.get('padding', 0)}m{conv.get('pool', 1)}"
             if conv else f"fc{n_in}x{n_out}")
    label = label or (f"{shape}-T{steps}-N{batch}-d{density}-{kind}-"
                      f"{'soft' if soft_reset else 'hard'}-{surrogate}{'-analog' if analog else ''}"
                      f"{'-bpwg' if fused else ''}")
    return Case(label, mem, [0], {k: (reg[k], sizes[k]) for k in reg})


def bad_programs(rng, core_params, good_first=True):
    """``{ErrorCode: Case}``: a valid FP layer program whose second descriptor (the first
    one unless ``good_first``) breaks one rule; for ``PC_RANGE``, a program running off the
    end of DRAM."""
    base = layer_program(rng, core_params, n_in=8, n_out=4, steps=1, batch=1, density=0.5)
    good = D.unpack(base.memory[:D.DESC_WORDS])
    wg = D.unpack(base.memory[3 * D.DESC_WORDS:4 * D.DESC_WORDS])
    dram = core_params.dram_words

    def variant(**changes):
        return D.Descriptor(**{**good.__dict__, **changes})

    breaks = {
        D.ErrorCode.BAD_OPCODE: variant(op=len(D.Opcode)),       # the first unused opcode
        D.ErrorCode.BAD_LAYER: variant(layer=3),
        D.ErrorCode.BAD_NEURON: variant(neuron=3),
        D.ErrorCode.BAD_SURROGATE: variant(surrogate=3),
        D.ErrorCode.UNSUPPORTED: variant(layer=D.LayerType.CONV),
        D.ErrorCode.ZERO_SIZE: variant(batch=0),
        D.ErrorCode.SIZE_LIMIT: variant(steps=core_params.max_steps + 1),
        D.ErrorCode.INCONSISTENT: variant(b_words=good.b_words + 1),
        D.ErrorCode.WEIGHT_CAPACITY: variant(out_cnt=64, out_total=64, in_cnt=200, in_total=200,
                                             a_words=100, a_pitch=100, b_words=7, b_pitch=7,
                                             b_tstride=7, c_words=32, c_pitch=32, c_tstride=32,
                                             d_words=2, d_pitch=2, d_tstride=2),
        D.ErrorCode.STATE_CAPACITY: variant(out_cnt=core_params.state_depth + 4,
                                            out_total=core_params.state_depth + 4,
                                            c_words=(core_params.state_depth + 4) // 2,
                                            c_pitch=(core_params.state_depth + 4) // 2,
                                            c_tstride=(core_params.state_depth + 4) // 2,
                                            d_words=3, d_pitch=3, d_tstride=3),
        D.ErrorCode.INPUT_CAPACITY: variant(in_cnt=core_params.max_inputs + 2,
                                            in_total=core_params.max_inputs + 2, a_words=129,
                                            a_pitch=129, b_words=9, b_pitch=9, b_tstride=9),
        D.ErrorCode.ACC_CAPACITY: D.Descriptor(**{      # accumulators: 4 groups × 200 inputs
            **wg.__dict__, "out_cnt": 16, "out_total": 16, "in_cnt": 200, "in_total": 200,
            "a_words": 100, "a_pitch": 100, "b_words": 7, "b_pitch": 7, "b_tstride": 7,
            "c_words": 8, "c_pitch": 8, "c_tstride": 8}),
        D.ErrorCode.ADDRESS_RANGE: variant(c_addr=dram - 1),
        D.ErrorCode.MISALIGNED: variant(out_lo=2, out_cnt=2, c_words=1, d_words=1,
                                        c_addr=good.c_addr),
    }
    cases = {}
    for code, bad in breaks.items():
        mem = base.memory.copy()
        at = D.DESC_WORDS if good_first else 0
        mem[at:at + D.DESC_WORDS] = D.pack(bad)
        cases[code] = Case(f"bad-{code.name}", mem, [0], base.regions)
    # ACC_CAPACITY again: more groups than the WG engine's delta buffer, few inputs
    groups = core_params.wg_groups + 1
    outputs, delta_words = core_params.lanes * groups, core_params.lanes // 2 * groups
    mem = base.memory.copy()
    mem[at:at + D.DESC_WORDS] = D.pack(D.Descriptor(**{
        **wg.__dict__, "out_cnt": outputs, "out_total": outputs, "in_cnt": 2, "in_total": 2,
        "a_words": 1, "a_pitch": 1, "c_words": delta_words, "c_pitch": delta_words,
        "c_tstride": delta_words}))
    cases["ACC_CAPACITY-groups"] = Case("bad-ACC_CAPACITY-groups", mem, [0], base.regions)
    # BPWG: the program's BP with WG's gradient tile (d) and input (e), broken in its own slots
    bp = D.unpack(base.memory[2 * D.DESC_WORDS:3 * D.DESC_WORDS])
    bpwg = dict(bp.__dict__, op=D.Opcode.BPWG, **{f"d_{k}": getattr(wg, f"a_{k}") for k in
                                                  ("addr", "pitch", "words", "tstride")},
                **{f"e_{k}": getattr(wg, f"b_{k}") for k in ("addr", "pitch", "words", "tstride")})
    outputs = core_params.lanes * groups                  # more WG groups than the engine's
    for name, changes in {
            "INCONSISTENT": dict(e_words=bpwg["e_words"] + 1),
            "ACC_CAPACITY": dict(out_cnt=outputs, out_total=outputs, b_words=outputs // 2,
                                 b_pitch=outputs // 2, b_tstride=outputs // 2),
            "ADDRESS_RANGE-d": dict(d_addr=dram - 1),
            "ADDRESS_RANGE-e": dict(e_addr=dram)}.items():
        assert D.validate(D.Descriptor(**{**bpwg, **changes}), core_params).name == name.split("-")[0]
        mem = base.memory.copy()
        mem[at:at + D.DESC_WORDS] = D.pack(D.Descriptor(**{**bpwg, **changes}))
        cases[f"BPWG-{name}"] = Case(f"bad-BPWG-{name}", mem, [0], base.regions)
    # a program without END that runs off the end of DRAM (descriptors of zeros are END,
    # so fill the tail with copies of the good descriptor)
    mem = np.zeros(dram, dtype=np.uint32)
    mem[:base.memory.size] = base.memory
    pc = dram - D.DESC_WORDS - 20
    mem[pc:pc + D.DESC_WORDS] = D.pack(good)
    cases[D.ErrorCode.PC_RANGE] = Case("bad-PC_RANGE", mem, [pc], base.regions)
    return cases


def network(core_params, arch="fc12", inputs=16, classes=4, steps=2, batch=2, kind="lif",
            surrogate="rectangular", soft_reset=False, momentum=0.0, direct_input=False,
            spike_input=False, seed=0):
    """A training step of a small network (``inputs``: a count, or a map shape ``(C, H,
    W)`` for a CNN; ``spike_input``: 0/1 inputs, an event-driven first layer): ``(Case,
    host)``; the case runs the forward then the backward program, ``host(memory)`` writes
    ``G`` in between (the host's part)."""
    torch.manual_seed(seed)
    cfg = NeuronConfig(kind=kind, tau=2.0, detach_reset=True, surrogate=surrogate,
                       v_reset=None if soft_reset else 0.0, k_init=0.8)
    shape = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    model = SpikingNetwork(arch, shape, classes, cfg)
    with torch.no_grad():
        for layer in model.body:
            if hasattr(layer, "weight"):
                layer.weight.mul_(3.0)
        model.readout.weight.mul_(4.0)
    net = HwExactNetwork.from_float(model, lr=0.5, momentum=momentum, spike_input=spike_input)
    prog = C.compile(net, batch, core_params, steps=steps, direct_input=direct_input)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(batch, *shape, generator=g)
    x[torch.rand(batch, *shape, generator=g) < 0.3] = 0
    x_seq = x.unsqueeze(0).expand(steps, *x.shape).clone()
    if spike_input:
        x_seq = (torch.rand(x_seq.shape, generator=g) < x_seq).float()     # rate coding
    labels = torch.randint(0, classes, (batch,), generator=g)
    mem = prog.memory.copy()
    prog.write_input(mem, x_seq)

    def host(memory):
        _, g16 = host_loss_grad(prog.read_logits(memory), labels, prog.loss_scale)
        prog.write_loss_grad(memory, g16)

    regions = {f"{name}{i}": (b.addr, b.size) for name in
               ("potentials", "spikes", "deltas", "errors", "weights", "grads", "momentum")
               for i, b in enumerate(getattr(prog, name))}
    case = Case(f"net-{arch}-{kind}-{surrogate}-T{steps}-N{batch}", mem,
                [prog.forward_pc, prog.backward_pc], regions)
    return case, host, prog, net, (x_seq, labels)


def golden_with_host(case, host, core_params):
    """The golden device on a two-program training step (``host`` between the programs)."""
    mem = case.memory.copy()
    fwd = P.run(mem, case.pcs[0], core_params)
    host(mem)
    bwd = P.run(mem, case.pcs[1], core_params)
    return mem, [fwd, bwd]


def describe_diff(expected, got, regions):
    """A readable list of the first differing words and the tensors they belong to."""
    diff = np.flatnonzero(expected != got)
    lines = []
    for a in diff[:12]:
        where = [name for name, (addr, size) in regions.items() if addr <= a < addr + size]
        lines.append(f"word {a} {where}: expected {int(expected[a]):#010x}, got {int(got[a]):#010x}")
    return f"{diff.size} words differ:\n" + "\n".join(lines)
