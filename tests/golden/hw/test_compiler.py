"""The compiler + golden device against ``HwExactNetwork.step``: logits, every intermediate
tensor, every gradient, the updated weights and momentum buffers, bit for bit, for several
tilings; and the compile-time checks."""
import copy

import numpy as np
import pytest
import torch

from trident.golden.hw import HwExactNetwork
from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import fp16 as F
from trident.golden.hw import program as P
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig

CORE = D.CoreParams()


def mlp(momentum, spike_input=False):
    """MLP 64-32-10, LIF, sigmoid surrogate, hard reset; scaled so that every layer spikes."""
    torch.manual_seed(0)
    m = SpikingNetwork("fc32", (64,), 10, NeuronConfig(kind="lif", tau=2.0, detach_reset=True, surrogate="sigmoid"))
    with torch.no_grad():
        m.body[0].weight.mul_(3.0)
        m.readout.weight.mul_(4.0)
    return HwExactNetwork.from_float(m, lr=0.5, momentum=momentum, spike_input=spike_input)


def cnn(momentum, spike_input=False):
    """conv 1×8×8 → 4 (K = 3, p = 1), KLIF soft reset, max pool 2, fc 16, readout 4."""
    torch.manual_seed(0)
    cfg = NeuronConfig(kind="klif", tau=2.0, detach_reset=True, surrogate="triangle", v_reset=None, k_init=0.8)
    m = SpikingNetwork("conv4k3p1,maxpool2,fc16", (1, 8, 8), 4, cfg)
    with torch.no_grad():
        for layer in m.body:
            if hasattr(layer, "weight"):
                layer.weight.mul_(4.0)
    return HwExactNetwork.from_float(m, lr=0.1, momentum=momentum, spike_input=spike_input)


def mlp_batch(seed=1, steps=4, n=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 64, generator=g)
    x[torch.rand(n, 64, generator=g) < 0.3] = 0
    return x.unsqueeze(0).repeat(steps, 1, 1), torch.randint(0, 10, (n,), generator=g)


def cnn_batch(seed=1, steps=3, n=4):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, n, 1, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def bits(t):
    return F.bits(t) if t.dtype == torch.float16 else t


def assert_same(a, b, what):
    assert a.shape == b.shape and torch.equal(bits(a), bits(b)), what


def check_step(net, x, y, core=CORE, steps_run=1, **kw):
    """Compile, run ``steps_run`` training steps on the golden device and on ``net`` (traced),
    compare everything; returns the program and the device memory."""
    ref = copy.deepcopy(net)
    prog = C.compile(net, x.shape[1], core, steps=x.shape[0], **kw)
    mem = prog.memory.copy()
    for _ in range(steps_run):
        loss, logits, (fwd, bwd) = P.train_step(prog, mem, x, y)
        tr = ref.step(x, y, trace=True)
        assert fwd.done and bwd.done and not bwd.overflow and tr.updated
        assert loss == tr.loss
        assert_same(logits.half(), tr.logits.half(), "logits")
        assert_same(prog.grad_logits.read(mem), tr.grad_logits, "G")
        body = tr.layers[:-1]
        for i, lt in enumerate(body):
            nxt = tr.layers[i + 1].inputs
            assert lt.spikes.any() and nxt.any(), f"layer {i} silent: not a meaningful case"
            assert_same(prog.potentials[i].read(mem), lt.potential, f"H{i}")
            assert_same(prog.spikes[i].read(mem).flatten(2), nxt.flatten(2), f"spikes{i}")
            assert_same(prog.deltas[i].read(mem), lt.di, f"δI{i}")
            assert lt.di.ne(0).any()
        for i, lt in enumerate(tr.layers):
            assert_same(prog.grads[i].read(mem), lt.grad, f"grad{i}")
            assert_same(prog.weights[i].read(mem), lt.weight_after, f"weight{i}")
            assert lt.grad.ne(0).any() and not torch.equal(lt.weight, lt.weight_after)
        for i, b in enumerate(prog.momentum):
            assert_same(b.read(mem), ref.buffers[i], f"momentum{i}")
    return prog, mem


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("core,kw", [
    (CORE, {}),
    (CORE, dict(max_tile=4)),                                       # many small tiles everywhere
    (D.CoreParams(acc_depth=40, state_depth=32), dict(direct_input=True)),
    (CORE, dict(base=12345)),                                       # relocated image
])
def test_mlp_training_step_is_bit_exact(momentum, core, kw):
    x, y = mlp_batch()
    prog, _ = check_step(mlp(momentum), x, y, core, steps_run=2, **kw)
    if "max_tile" in kw or core != CORE:
        assert len(prog.backward) > 2 + 2 + 4 + 2                    # tiled: more than one per op
    assert bool(prog.momentum) == bool(momentum)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("kw", [{}, dict(max_tile=2)])
def test_cnn_training_step_is_bit_exact(momentum, kw):
    x, y = cnn_batch()
    prog, _ = check_step(cnn(momentum), x, y, **kw)
    ops = [d.op for d in prog.forward if d.layer == D.LayerType.CONV]
    assert len(ops) == (2 if kw else 1)                             # 4 channels in tiles of 2
    assert any(d.pool == 2 for d in prog.forward)


@pytest.mark.parametrize("network,batch", [(mlp, mlp_batch), (cnn, cnn_batch)], ids=["mlp", "cnn"])
def test_spike_input_training_step_is_bit_exact(network, batch):
    """Spike input: the input crosses DRAM as bits and the first layer is event-driven (no
    MAC-mode descriptor); the device still equals ``HwExactNetwork`` bit for bit."""
    x, y = batch()
    spikes = x > 0.6
    prog, _ = check_step(network(0.9, spike_input=True), spikes.float(), y)
    assert prog.input.kind == "spikes"
    assert prog.input.pitch == -(-prog.input.elements // D.SPIKES_PER_WORD)
    assert not any(d.analog for d in prog.forward + prog.backward)
    analog = C.compile(network(0.9), x.shape[1], CORE, steps=x.shape[0])
    assert prog.input.size * 8 < analog.input.size                 # 64 inputs: 2 words, not 32


@pytest.mark.parametrize("network,batch", [(mlp, mlp_batch), (cnn, cnn_batch)], ids=["mlp", "cnn"])
def test_spike_input_gives_the_binary16_paths_bits(network, batch):
    """On 0/1 inputs the event-driven first layer computes exactly what MAC mode computes
    (fma(W, 1, acc) = RNE(acc + W); δI·1 = δI): same losses and weights, step after step."""
    x, y = batch()
    spikes = (x > 0.6).float()
    mac, event = network(0.9), network(0.9, spike_input=True)
    for _ in range(3):
        assert mac.train_step(spikes, y)[0] == event.train_step(spikes, y)[0]
    for a, b in zip(mac.weights, event.weights):
        assert_same(a, b, "weights")
    assert any(not torch.equal(a, b) for a, b in zip(mac.weights, network(0.9).weights))


def test_spike_input_refuses_other_values_and_direct_input():
    net = mlp(0.0, spike_input=True)
    x, y = mlp_batch()
    with pytest.raises(ValueError, match=r"every value must be 0 or 1, got 0\.\d+ at \[T, N, …\] index"):
        net.step(x, y)
    prog = C.compile(net, x.shape[1], CORE, steps=x.shape[0])
    with pytest.raises(ValueError, match="every value must be 0 or 1"):
        prog.input_words(x)
    with pytest.raises(C.CompileError, match="exclude each other"):
        C.compile(net, x.shape[1], CORE, steps=x.shape[0], direct_input=True)


def test_the_image_holds_the_packed_programs():
    prog = C.compile(cnn(0.9), 4, CORE, steps=3, max_tile=2)
    for pc, descs in ((prog.forward_pc, prog.forward), (prog.backward_pc, prog.backward)):
        assert descs[-1].op == D.Opcode.END
        for k, d in enumerate(descs):
            words = prog.memory[pc + k * D.DESC_WORDS:pc + (k + 1) * D.DESC_WORDS]
            assert D.unpack(words) == d and D.validate(d, CORE) == D.ErrorCode.NONE
    ops = [D.Opcode(d.op).name for d in prog.backward]
    assert ops[-4:] == ["UPDATE"] * 3 + ["END"] and all(d.guard for d in prog.backward if d.op == D.Opcode.UPDATE)
    # the readout's and the conv layer's BP and WG are fused; layer 0 has only its WG
    assert ops[0] == "BPWG" and "BP" not in ops and ops.count("WG") >= 1
    assert {D.Opcode(d.op).name for d in prog.backward if d.tag == 0} - {"UPDATE", "END"} == {"BPN", "WG"}
    apart = [D.Opcode(d.op).name for d in C.compile(cnn(0.9), 4, CORE, steps=3, max_tile=2, fuse=False).backward]
    first_bp = apart.index("BP")
    assert "BPWG" not in apart and apart[:first_bp] == ["WG"] * first_bp   # the readout: WG, then BP


def test_relocated_image_uses_only_words_from_base():
    prog = C.compile(mlp(0.9), 8, CORE, steps=4, base=5000)
    assert prog.forward_pc == 5000 and not prog.memory[:5000].any()
    buffers = [prog.input, prog.logits, prog.grad_logits, *prog.weights, *prog.grads, *prog.momentum,
               *prog.potentials, *prog.spikes, *prog.deltas, *prog.errors]
    spans = sorted((b.addr, b.addr + b.size) for b in buffers)
    assert spans[0][0] >= 5000 and spans[-1][1] == prog.memory.size
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))      # no two buffers overlap


def test_buffers_encode_and_decode_contiguous_words():
    prog = C.compile(cnn(0.0), 4, CORE, steps=3)
    x, _ = cnn_batch()
    words = prog.input_words(x)
    assert words.dtype == np.uint32 and words.size == prog.input.size
    assert_same(prog.input.decode(words), F.round16(x.double()), "input")
    s = torch.rand(3, 4, 4, 4, 4) < 0.5                             # conv spikes, pooled 4×4 maps
    assert torch.equal(prog.spikes[0].decode(prog.spikes[0].encode(s)), s)
    with pytest.raises(ValueError, match="expected shape"):
        prog.spikes[0].encode(s[:, :2])


def test_host_map_checks_shapes_and_direct_input():
    prog = C.compile(mlp(0.0), 8, CORE, steps=4, direct_input=True)
    mem = prog.memory.copy()
    x, _ = mlp_batch()
    with pytest.raises(ValueError, match="direct input"):
        prog.write_input(mem, x + torch.arange(4.0)[:, None, None])
    with pytest.raises(ValueError, match="expected input"):
        prog.write_input(mem, x[:, :4])
    prog.write_input(mem, x)
    assert prog.input.size == 8 * 32                               # one row per sample, 64 binary16
    assert_same(prog.input.read(mem), F.round16(x[0].double()), "input")


@pytest.mark.parametrize("net,core,kw,match", [
    (cnn, D.CoreParams(conv=False), {}, r"layer 0 \(conv 1→4\): this core has no convolution"),
    (mlp, D.CoreParams(mac=False), {}, "no MAC mode"),
    (mlp, D.CoreParams(dram_words=4096), {}, "needs .* words of DRAM"),
    (mlp, D.CoreParams(weight_depth=256), {}, r"layer 0 \(fc 64→32\): not even 32 outputs fit"),
    (mlp, D.CoreParams(max_inputs=32), {}, r"layer 0 .*input row of 64 elements exceeds the event list \(32\)"),
    (mlp, D.CoreParams(max_steps=2), {}, "T = 4"),
    (cnn, D.CoreParams(max_pool=1), {}, "pool 2 exceed"),
])
def test_compile_errors_name_the_layer_and_the_limit(net, core, kw, match):
    with pytest.raises(C.CompileError, match=match):
        C.compile(net(0.0), 8 if net is mlp else 4, core, steps=4 if net is mlp else 3, **kw)


def test_ablations_do_not_compile():
    torch.manual_seed(0)
    m = SpikingNetwork("fc8", (12,), 4, NeuronConfig(kind="lif", tau=2.0, detach_reset=True))
    with pytest.raises(C.CompileError, match="exact WG"):
        C.compile(HwExactNetwork.from_float(m, lr=0.1, wg_accumulator="fp32"), 4, CORE, steps=2)


def test_direct_input_reads_less():
    x, y = mlp_batch()
    traffic = []
    for direct in (False, True):
        prog = C.compile(mlp(0.0), 8, CORE, steps=4, direct_input=direct)
        mem = prog.memory.copy()
        _, _, (fwd, bwd) = P.train_step(prog, mem, x, y)
        traffic.append(fwd.words_read + bwd.words_read)
        assert isinstance(mem, np.ndarray)
    # the input (64 binary16 = 32 words per row) is read once per sample instead of per step,
    # by FP and by WG of the first layer
    assert traffic[0] - traffic[1] == 2 * 32 * 8 * (4 - 1)


@pytest.mark.parametrize("arch,shape,kw", [
    ("conv4k3p1,maxpool2,conv6k3", (1, 8, 8), dict(kind="lif", surrogate="sigmoid")),      # conv on pooled maps
    ("conv4k3s2p1,fc8", (2, 9, 9), dict(kind="if", surrogate="rectangular")),              # stride 2, 2 channels
    ("conv3k3p1,maxpool3,fc12,fc8", (1, 10, 7), dict(kind="lif", decay_input=False, surrogate="triangle",
                                                     v_reset=None)),                      # ragged pooling
])
@pytest.mark.parametrize("max_tile", [None, 1])
def test_other_layer_shapes_and_neurons_are_bit_exact(arch, shape, kw, max_tile):
    torch.manual_seed(0)
    m = SpikingNetwork(arch, shape, 5, NeuronConfig(tau=2.0, detach_reset=True, **kw))
    with torch.no_grad():
        for layer in m.body:
            if hasattr(layer, "weight"):
                layer.weight.mul_(4.0)
        m.readout.weight.mul_(3.0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 5, *shape, generator=g), torch.randint(0, 5, (5,), generator=g)
    check_step(HwExactNetwork.from_float(m, lr=0.1, momentum=0.5), x, y, max_tile=max_tile)


@pytest.mark.slow
def test_digits_epoch_on_the_device_equals_the_golden_network():
    """One epoch of the digits MLP 64-256-10 (T = 8, N = 32, momentum 0.9, direct input) on
    the golden device: the same weights, bit for bit, as ``HwExactNetwork.train_step``."""
    from trident.golden.hw.measure import load_digits_split, make_model
    xtr, ytr, _, _ = load_digits_split()
    net = HwExactNetwork.from_float(make_model(0, "sigmoid"), lr=0.5, momentum=0.9)
    prog = C.compile(net, 32, CORE, steps=8, direct_input=True)
    mem = prog.memory.copy()
    perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(0))
    for a in range(0, len(xtr) - 31, 32):
        idx = perm[a:a + 32]
        x = xtr[idx].unsqueeze(0).expand(8, 32, 64)
        loss, logits, _ = P.train_step(prog, mem, x, ytr[idx])
        ref_loss, ref_logits = net.train_step(x, ytr[idx])
        assert loss == ref_loss and torch.equal(logits, ref_logits)
    for got, want in zip(prog.read_weights(mem), net.weights):
        assert_same(got, want, "weights after one epoch")
    for got, want in zip(prog.momentum, net.buffers):
        assert_same(got.read(mem), want, "momentum after one epoch")
