"""Host-side packing of the FP engine's data: weight-scratchpad words, input words, the
layer descriptor, and the current words it returns (docs/engines.md §3).

Pure NumPy (binary16 values are handled as their 16-bit patterns), so the host driver,
the tests and the benchmarks share one definition of every layout.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fc_weight_words", "spike_words", "analog_words", "words_per_step",
           "pack_config", "pack_current_words", "unpack_current_words", "field_offsets",
           "conv_geometry", "conv_config", "conv_weight_words", "feature_map_words",
           "pack_conv_current_words", "bp_weight_words", "need_words", "conv_bp_config",
           "conv_bp_weight_words", "conv_need_words"]


def field_offsets(layout):
    """``{name: (offset, width)}`` of the top-level fields of a ``data.StructLayout``."""
    from amaranth.hdl import Shape

    return {name: (f.offset, Shape.cast(f.shape).width) for name, f in layout}


def _bits16(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.float16:
        return a.view(np.uint16).astype(np.int64)
    return a.astype(np.int64) & 0xFFFF


def fc_weight_words(weight_bits, lanes: int, w_base: int = 0):
    """Scratchpad words of an FC layer: ``(addrs, words)``.

    Word ``w_base + g·I + i`` holds ``W[g·L + l, i]`` in lane ``l`` (bits ``16l .. 16l+15``);
    lanes past the last neuron hold ``+0``.

    Parameters
    ----------
    weight_bits : array [J, I]
        binary16 patterns (or a float16 array).
    lanes : int
        ``L``.
    w_base : int
        Address of the first word.

    Returns
    -------
    addrs : list of int
    words : list of int
        ``ceil(J/L)·I`` entries, in address order.
    """
    w = _bits16(weight_bits)
    out_n, in_n = w.shape
    groups = -(-out_n // lanes)
    padded = np.zeros((groups * lanes, in_n), dtype=np.int64)
    padded[:out_n] = w
    block = padded.reshape(groups, lanes, in_n).astype(object)
    words = np.zeros((groups, in_n), dtype=object)
    for lane in range(lanes):
        words = words | (block[:, lane, :] << (16 * lane))
    addrs = list(range(w_base, w_base + groups * in_n))
    return addrs, [int(x) for x in words.reshape(-1)]


def bp_weight_words(weight_bits, lanes: int, w_base: int = 0):
    """BP engine scratchpad words of an FC layer ``W [J, I]``: the transposed matrix in
    the FP layout, word ``w_base + g·J + j`` = ``{W[j, g·L + l]}_l``."""
    return fc_weight_words(_bits16(weight_bits).T, lanes, w_base)


def need_words(need, lanes: int, block: int):
    """BP need words of a mask ``[R, I]`` (bool): per row ``ceil(I / (L·P))`` words of
    ``L·P`` bits (``block`` = P), bit ``b`` of word ``B`` = ``need[r, B·L·P + b]``."""
    return spike_words(need, lanes * block)


def words_per_step(n_in: int, word_bits: int, mac: bool) -> int:
    """Input words per step: ``ceil(n_in / per_word)``, ``per_word`` = bits or values."""
    per_word = word_bits // 16 if mac else word_bits
    return -(-n_in // per_word)


def spike_words(spikes, word_bits: int):
    """Input words of binary spikes ``[T, I]``: bit ``b`` of word ``w`` is input ``w·B + b``."""
    s = np.asarray(spikes).astype(bool)
    steps, n_in = s.shape
    nw = words_per_step(n_in, word_bits, False)
    row = np.zeros((steps, nw * word_bits), dtype=bool)
    row[:, :n_in] = s
    out = []
    if word_bits % 8 == 0:
        packed = np.packbits(row, axis=1, bitorder="little")          # [T, nw·B/8]
        nb = word_bits // 8
        for t in range(steps):
            data = packed[t].tobytes()
            out += [int.from_bytes(data[w * nb:(w + 1) * nb], "little") for w in range(nw)]
        return out
    for t in range(steps):
        for w in range(nw):
            chunk = row[t, w * word_bits:(w + 1) * word_bits]
            out.append(int(sum(1 << int(b) for b in np.flatnonzero(chunk))))
    return out


def analog_words(values, word_bits: int):
    """Input words of binary16 values ``[T, I]`` (MAC mode): ``word_bits/16`` per word,
    value ``v`` of word ``w`` (bits ``16v ..``) is input ``w·B/16 + v``; padding is ``+0``."""
    x = _bits16(values)
    steps, n_in = x.shape
    per = word_bits // 16
    nw = words_per_step(n_in, word_bits, True)
    out = []
    for t in range(steps):
        row = np.zeros(nw * per, dtype=np.int64)
        row[:n_in] = x[t]
        for w in range(nw):
            value = 0
            for v in range(per):
                value |= int(row[w * per + v]) << (16 * v)
            out.append(value)
    return out


def pack_config(layout, **fields) -> int:
    """The raw descriptor (``cmd`` payload) from field values."""
    offs = field_offsets(layout)
    value = 0
    for name, v in fields.items():
        off, width = offs[name]
        if not 0 <= int(v) < (1 << width):
            raise ValueError(f"{name}={v} does not fit in {width} bits")
        value |= int(v) << off
    return value


def pack_current_words(layout, currents_bits, lanes: int):
    """Expected ``currents`` words and masks for currents ``[T, J]`` (binary16 patterns).

    Returns ``(words, masks)``: one per (step, group), step-major; the mask leaves out
    lanes past neuron ``J − 1`` (their value is not part of the result).
    """
    c = _bits16(currents_bits)
    steps, out_n = c.shape
    groups = -(-out_n // lanes)
    offs = field_offsets(layout)
    v_off = offs["value"][0]
    g_off, g_w = offs["group"]
    t_off, t_w = offs["step"]
    words, masks = [], []
    for t in range(steps):
        for g in range(groups):
            value = (g << g_off) | (t << t_off)
            mask = (((1 << g_w) - 1) << g_off) | (((1 << t_w) - 1) << t_off)
            for lane in range(lanes):
                j = g * lanes + lane
                if j < out_n:
                    value |= int(c[t, j]) << (v_off + 16 * lane)
                    mask |= 0xFFFF << (v_off + 16 * lane)
            words.append(value)
            masks.append(mask)
    return words, masks


def unpack_current_words(layout, words, lanes: int, out_n: int):
    """``currents`` words → ``(steps, groups, currents)``; currents ``[len, L]`` patterns
    (all lanes; the caller drops lanes ≥ ``out_n``)."""
    offs = field_offsets(layout)
    v_off = offs["value"][0]
    g_off, g_w = offs["group"]
    t_off, t_w = offs["step"]
    words = [int(w) for w in words]
    steps = np.array([(w >> t_off) & ((1 << t_w) - 1) for w in words], dtype=np.int64)
    groups = np.array([(w >> g_off) & ((1 << g_w) - 1) for w in words], dtype=np.int64)
    vals = np.array([[(w >> (v_off + 16 * lane)) & 0xFFFF for lane in range(lanes)]
                     for w in words], dtype=np.int64).reshape(len(words), lanes)
    return steps, groups, vals


# ---- convolution ---------------------------------------------------------------------

def conv_geometry(in_c, in_h, in_w, kernel, stride, padding):
    """``(out_h, out_w, out_xbits)`` of a convolution (``out_xbits``: log2 of the
    accumulator row pitch, the power of two ≥ out_w)."""
    out_h = (in_h + 2 * padding - kernel) // stride + 1
    out_w = (in_w + 2 * padding - kernel) // stride + 1
    return out_h, out_w, max(0, (out_w - 1).bit_length())


def conv_config(layout, *, in_c, in_h, in_w, out_c, kernel, stride, padding, lanes, steps,
                w_base=0, mac=None) -> int:
    """The raw ConvEngine descriptor; every address stride is computed here, on the host,
    so the engine needs no multiplier.  ``mac`` is included when not None."""
    if stride & (stride - 1):
        raise ValueError(f"the conv engine supports power-of-two strides, not {stride}")
    out_h, out_w, xbits = conv_geometry(in_c, in_h, in_w, kernel, stride, padding)
    groups = -(-out_c // lanes)
    fields = dict(in_w=in_w, in_h=in_h, in_c=in_c, kernel=kernel,
                  stride_log2=stride.bit_length() - 1, pad=padding, out_h=out_h,
                  out_w=out_w, out_xbits=xbits, n_groups=groups, n_steps=steps,
                  w_base=w_base, w_kk=kernel * kernel, w_gstride=in_c * kernel * kernel,
                  acc_gstride=out_h << xbits, n_inputs=in_c * in_h * in_w)
    if mac is not None:
        fields["mac"] = int(mac)
    return pack_config(layout, **fields)


def conv_weight_words(weight_bits, lanes: int, w_base: int = 0):
    """Scratchpad words of a conv layer ``W [Co, C, K, K]``: ``(addrs, words)``; word
    ``w_base + g·C·K² + c·K² + ky·K + kx`` holds ``W[g·L + l, c, ky, kx]`` in lane ``l``."""
    w = _bits16(weight_bits)
    out_c, in_c, k, _ = w.shape
    flat = w.reshape(out_c, in_c * k * k)
    return fc_weight_words(flat, lanes, w_base)


def feature_map_words(values, word_bits: int, mac: bool):
    """Input words of a feature map ``[T, C, H, W]``: per step, channel and row,
    ``ceil(W / per_word)`` words (spike bits, or binary16 values in MAC mode)."""
    a = np.asarray(values)
    steps, chans, height, width = a.shape
    rows = a.reshape(steps * chans * height, width)
    return analog_words(rows, word_bits) if mac else spike_words(rows, word_bits)


def pack_conv_current_words(layout, currents_bits, lanes: int):
    """Expected ConvEngine words and masks for currents ``[T, Co, Ho, Wo]``: one per
    (step, group, y, x) in that order; lanes past ``Co − 1`` masked out."""
    c = _bits16(currents_bits)
    steps, out_c, out_h, out_w = c.shape
    groups = -(-out_c // lanes)
    offs = field_offsets(layout)
    v_off = offs["value"][0]
    meta_mask = 0
    for name in ("x", "y", "group", "step"):
        off, width = offs[name]
        meta_mask |= ((1 << width) - 1) << off
    words, masks = [], []
    for t in range(steps):
        for g in range(groups):
            for y in range(out_h):
                for x in range(out_w):
                    value = ((x << offs["x"][0]) | (y << offs["y"][0])
                             | (g << offs["group"][0]) | (t << offs["step"][0]))
                    mask = meta_mask
                    for lane in range(lanes):
                        co = g * lanes + lane
                        if co < out_c:
                            value |= int(c[t, co, y, x]) << (v_off + 16 * lane)
                            mask |= 0xFFFF << (v_off + 16 * lane)
                    words.append(value)
                    masks.append(mask)
    return words, masks


def conv_bp_config(layout, *, in_c, in_h, in_w, out_c, kernel, stride, padding, lanes, steps,
                   w_base=0, need=False) -> int:
    """The raw ConvBPEngine descriptor of the forward layer ``C×H×W → Co`` (kernel,
    stride, padding): the δI map ``Co×Ho×Wo`` is the engine's input map, ``C×H×W`` its
    output map; every stride is computed here."""
    if stride & (stride - 1):
        raise ValueError(f"the conv engine supports power-of-two strides, not {stride}")
    out_h, out_w, _ = conv_geometry(in_c, in_h, in_w, kernel, stride, padding)
    xbits = max(0, (in_w - 1).bit_length())
    fields = dict(in_w=out_w, in_h=out_h, in_c=out_c, kernel=kernel,
                  stride_log2=stride.bit_length() - 1, pad=padding, out_h=in_h,
                  out_w=in_w, out_xbits=xbits, n_groups=-(-in_c // lanes), n_steps=steps,
                  w_base=w_base, w_kk=kernel * kernel, w_gstride=out_c * kernel * kernel,
                  acc_gstride=in_h << xbits, n_inputs=out_c * out_h * out_w, need=int(need))
    return pack_config(layout, **fields)


def conv_bp_weight_words(weight_bits, lanes: int, w_base: int = 0):
    """ConvBPEngine words of ``W [Co, C, K, K]``: word ``w_base + g·Co·K² + co·K² + ky·K
    + kx`` holds ``W[co, g·L + l, ky, kx]`` in lane ``l``."""
    return conv_weight_words(_bits16(weight_bits).transpose(1, 0, 2, 3), lanes, w_base)


def conv_need_words(need, lanes: int):
    """ConvBPEngine need words of a mask ``[R, C, H, W]`` (bool): one ``L``-bit word per
    (row, group, iy, ix) in that order, bit ``l`` = ``need[r, g·L + l, iy, ix]``."""
    n = np.asarray(need).astype(np.int64)
    rows, chans, height, width = n.shape
    groups = -(-chans // lanes)
    padded = np.zeros((rows, groups * lanes, height, width), dtype=np.int64)
    padded[:, :chans] = n
    lanes_last = padded.reshape(rows, groups, lanes, height, width).transpose(0, 1, 3, 4, 2)
    weights = 1 << np.arange(lanes, dtype=np.int64)
    return [int(v) for v in (lanes_last * weights).sum(-1).reshape(-1)]
