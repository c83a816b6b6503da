"""The layer-descriptor format: what a Trident core executes (docs/descriptors.md).

A descriptor is :data:`DESC_WORDS` little-endian 32-bit words in DRAM.  One descriptor is one
operation on one *tile* of one layer, over all T steps and all N samples.  The host compiler
(:mod:`.compiler`) writes them; the core's sequencer (RTL) and the golden device model
(:mod:`.program`) read them.  Everything here is the single definition of the format: the field
table :data:`FIELDS` (the RTL builds its ``data.FlexibleLayout`` from it), the enums, the
parameter block, the DRAM packing of spikes and binary16 rows, and :func:`validate`, the checks
a core performs before it touches memory.

Members
-------
DESC_WORDS, PARAM_WORDS, PARAM_TABLE_OFFSET, PARAM_HEADER_WORDS : int
    Sizes (in 32-bit words) of a descriptor and of a parameter block (header + sigmoid table).
Opcode, LayerType, NeuronType, SurrogateType, ErrorCode : IntEnum
    Enumerations with explicit encodings; ``ErrorCode.message`` is the readable text.
Field : NamedTuple
    ``(name, word, offset, width, doc)``: one descriptor field; never straddles a word.
FIELDS : tuple of Field
    The field table, in word order.
SLOTS : tuple of str
    The five tensor operands ``a`` … ``e`` (``<slot>_addr``, ``_pitch``, ``_words``,
    ``_tstride``); docs/descriptors.md §3 gives each opcode's roles (only ``BPWG`` uses ``e``).
Descriptor
    A mutable record with one ``int`` attribute per field (unset fields are 0).
CoreParams
    A core's elaboration parameters that :func:`validate` checks against.
pack(desc) -> list of int
unpack(words) -> Descriptor
validate(desc, core) -> ErrorCode
split_bpwg(desc) -> (Descriptor, Descriptor)
    The ``BP`` and the ``WG`` that a ``BPWG`` fuses (same results, δI read twice).
slot_rows(desc, slot) -> (rows, per_sample)
    How many rows a slot spans (used by the address check and by DRAM traffic counting).
param_block(neuron, steps, lr16, momentum16, shift) -> list of int
    The words of a parameter block; ``decode_param_block(words) -> dict`` reads them back.
pack_spikes(rows, pitch), unpack_spikes(words, count), pack_half(rows, pitch),
unpack_half(words, count)
    The DRAM row layouts (vectorised; equal to ``rtl.engines.layout`` with 32-bit words).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np
import torch

from . import fp16 as F
from .surrogate import SIGMOID_SEGMENTS

__all__ = ["DESC_WORDS", "PARAM_WORDS", "PARAM_HEADER_WORDS", "PARAM_TABLE_OFFSET", "SPIKES_PER_WORD",
           "HALVES_PER_WORD", "Opcode", "LayerType", "NeuronType", "SurrogateType", "ErrorCode",
           "Field", "FIELDS", "SLOTS", "Descriptor", "CoreParams", "pack", "unpack", "validate",
           "slot_rows", "expected_words", "split_bpwg", "param_block", "decode_param_block", "pack_spikes", "unpack_spikes",
           "pack_half", "unpack_half"]

DESC_WORDS = 32
PARAM_HEADER_WORDS = 8
PARAM_TABLE_OFFSET = 8
PARAM_WORDS = PARAM_TABLE_OFFSET + SIGMOID_SEGMENTS
SPIKES_PER_WORD = 32
HALVES_PER_WORD = 2


class Opcode(IntEnum):
    """What a descriptor does (``op``, 4 bits; 7–15 are invalid: ``BAD_OPCODE``)."""
    END = 0        # stop: done, no error
    FP = 1         # forward: currents → neuron unit → H, spikes (max-pooled) | readout logits
    BP = 2         # transposed product for a tile of the layer's inputs: δS of the layer below
    BPN = 3        # neuron BP for a tile of a layer's outputs: max-pool routing, δU recursion → δI
    WG = 4         # weight gradient of a tile (outputs × inputs), exact accumulator → binary16
    UPDATE = 5     # SGD (+ momentum) over a range of words of weights
    BPWG = 6       # BP and WG of an input tile (all outputs) on one read of δI, run concurrently


class LayerType(IntEnum):
    """``layer``, 2 bits; 3 is invalid (``BAD_LAYER``)."""
    FC = 0
    CONV = 1
    READOUT = 2


class NeuronType(IntEnum):
    """``neuron``, 2 bits; the same encoding as ``rtl.neuron.registers.NeuronKind``."""
    IF = 0
    LIF = 1
    KLIF = 2


class SurrogateType(IntEnum):
    """``surrogate``, 2 bits; the same encoding as ``rtl.neuron.registers.SurrogateKind``."""
    RECTANGULAR = 0
    TRIANGLE = 1
    SIGMOID = 2


_MESSAGES = {
    0: "no error",
    1: "bad opcode",
    2: "layer type reserved, or not valid for this opcode",
    3: "neuron type reserved",
    4: "surrogate type reserved",
    5: "feature not built into this core (convolution or analog MAC input)",
    6: "a size, count or geometry field is zero",
    7: "a size is beyond the core's limits (steps, batch, kernel, stride, pooling, padding)",
    8: "inconsistent fields (tile outside the layer, geometry, planes, pitch, words or stride)",
    9: "the weight tile does not fit the weight scratchpad",
    10: "the tile's neurons do not fit the on-chip state memory",
    11: "an input row does not fit the event list",
    12: "the gradient tile does not fit the WG accumulators",
    13: "an operand or the parameter block lies outside DRAM",
    14: "a tile does not start (or end) on a word boundary of a packed row it touches",
    15: "the program counter ran outside DRAM",
}


class ErrorCode(IntEnum):
    """Why a core stopped (the control port's ``error``; 0 = none).  :func:`validate` checks
    in this order and reports the first failure; ``PC_RANGE`` is raised by the fetch."""
    NONE = 0
    BAD_OPCODE = 1
    BAD_LAYER = 2
    BAD_NEURON = 3
    BAD_SURROGATE = 4
    UNSUPPORTED = 5
    ZERO_SIZE = 6
    SIZE_LIMIT = 7
    INCONSISTENT = 8
    WEIGHT_CAPACITY = 9
    STATE_CAPACITY = 10
    INPUT_CAPACITY = 11
    ACC_CAPACITY = 12
    ADDRESS_RANGE = 13
    MISALIGNED = 14
    PC_RANGE = 15

    @property
    def message(self) -> str:
        return _MESSAGES[int(self)]


class Field(NamedTuple):
    """One descriptor field: bits ``offset … offset+width−1`` of word ``word``."""
    name: str
    word: int
    offset: int
    width: int
    doc: str


SLOTS = ("a", "b", "c", "d", "e")


def _slot_fields(first_word: int) -> list[Field]:
    out = []
    for k, s in enumerate(SLOTS):
        w = first_word + 3 * k
        out += [Field(f"{s}_addr", w, 0, 32, f"slot {s}: word address of the tile's first word"),
                Field(f"{s}_pitch", w + 1, 0, 16, f"slot {s}: words from one row to the next (sample, weight row)"),
                Field(f"{s}_words", w + 1, 16, 16, f"slot {s}: words of each row the op reads or writes"),
                Field(f"{s}_tstride", w + 2, 0, 32, f"slot {s}: words from step t to t+1 (0: no T dimension)")]
    return out


FIELDS: tuple[Field, ...] = tuple([
    Field("op", 0, 0, 4, "Opcode"),
    Field("layer", 0, 4, 2, "LayerType"),
    Field("neuron", 0, 6, 2, "NeuronType (FP, BPN of FC/CONV)"),
    Field("surrogate", 0, 8, 2, "SurrogateType (FP, BPN of FC/CONV)"),
    Field("soft_reset", 0, 10, 1, "1: V = Z − V_th after a spike; 0: V = V_reset"),
    Field("decay_input", 0, 11, 1, "LIF/KLIF charge form (numerics.md §2.5)"),
    Field("analog", 0, 12, 1, "FP/WG: slot b holds binary16 values (MAC mode), not spikes"),
    Field("momentum", 0, 13, 1, "UPDATE: use the momentum buffer (slot c)"),
    Field("guard", 0, 14, 1, "UPDATE: skip if a WG of this program produced a non-finite gradient"),
    Field("pool", 0, 16, 4, "max-pool kernel = stride after the neuron (1: none)"),
    Field("kernel", 0, 20, 4, "conv kernel K (FC, READOUT: 1)"),
    Field("stride", 0, 24, 4, "conv stride (FC, READOUT: 1)"),
    Field("padding", 0, 28, 4, "conv zero padding (FC, READOUT: 0)"),
    Field("steps", 1, 0, 8, "T"),
    Field("batch", 1, 8, 16, "N"),
    Field("out_lo", 2, 0, 16, "first output neuron / channel of the tile"),
    Field("out_cnt", 2, 16, 16, "output neurons / channels in the tile"),
    Field("in_lo", 3, 0, 16, "first input neuron / channel of the tile"),
    Field("in_cnt", 3, 16, 16, "input neurons / channels in the tile"),
    Field("out_total", 4, 0, 16, "output neurons / channels of the layer"),
    Field("in_total", 4, 16, 16, "input neurons / channels of the layer"),
    Field("in_h", 5, 0, 8, "input map height (FC: 1)"),
    Field("in_w", 5, 8, 8, "input map width (FC: 1)"),
    Field("out_h", 5, 16, 8, "output map height before pooling (FC: 1)"),
    Field("out_w", 5, 24, 8, "output map width before pooling (FC: 1)"),
    Field("pool_h", 6, 0, 8, "output map height after pooling (= out_h without pooling)"),
    Field("pool_w", 6, 8, 8, "output map width after pooling"),
    Field("kk", 6, 16, 8, "K² (weights per input channel and output)"),
    Field("in_plane", 7, 0, 16, "in_h·in_w"),
    Field("out_plane", 7, 16, 16, "out_h·out_w"),
    Field("pool_plane", 8, 0, 16, "pool_h·pool_w"),
    Field("tag", 8, 16, 16, "the compiler's layer index (counters, debugging; not checked)"),
    Field("param_addr", 9, 0, 32, "word address of the parameter block"),
    Field("length", 10, 0, 32, "UPDATE: number of words of weights"),
] + _slot_fields(11))

def _make_descriptor():
    cls = dataclasses.make_dataclass("Descriptor", [(f.name, int, 0) for f in FIELDS], eq=True)
    cls.__doc__ = ("One descriptor, one ``int`` per field of :data:`FIELDS` (0 when unused).\n\n"
                   "Members\n-------\n" + "\n".join(f"{f.name} : int\n    {f.doc}" for f in FIELDS))
    cls.__module__ = __name__
    return cls


Descriptor = _make_descriptor()


def pack(desc) -> list[int]:
    """The :data:`DESC_WORDS` words of ``desc``; ``ValueError`` if a value does not fit its field."""
    words = [0] * DESC_WORDS
    for f in FIELDS:
        v = int(getattr(desc, f.name))
        if not 0 <= v < (1 << f.width):
            raise ValueError(f"descriptor field {f.name} = {v} does not fit {f.width} bits")
        words[f.word] |= v << f.offset
    return words


def unpack(words) -> "Descriptor":
    """The inverse of :func:`pack` (bits outside every field are ignored)."""
    words = [int(w) for w in words]
    if len(words) != DESC_WORDS:
        raise ValueError(f"a descriptor has {DESC_WORDS} words, got {len(words)}")
    return Descriptor(**{f.name: (words[f.word] >> f.offset) & ((1 << f.width) - 1) for f in FIELDS})


@dataclass(frozen=True)
class CoreParams:
    """A core's elaboration parameters, as :func:`validate` and the compiler see them.

    Members
    -------
    lanes : int
        ``L``: binary16 values per scratchpad word (neurons computed in parallel).
    weight_depth : int
        Weight scratchpad words (``L`` weights each).
    state_depth : int
        Neurons whose per-tile state (V, δU, BP accumulators) stays on chip.
    acc_depth : int
        WG accumulator words (``L`` exact accumulators each).
    wg_groups : int
        Most groups of ``L`` outputs in one WG tile (``⌈out_cnt/L⌉``): the WG engine keeps
        one row of their deltas while it reads the row's inputs once.
    max_inputs : int
        Longest input row (event list): ``in_total·in_plane`` (FP), ``out_total·out_plane`` (BP),
        ``in_cnt·in_plane`` (WG).
    max_steps, max_batch, max_kernel, max_stride, max_pool : int
        Largest T, N, K, stride and pooling kernel; padding must be < K.
    conv, mac : bool
        Whether the core has convolution and analog (MAC) input support.
    dram_words : int
        Size of the DRAM address space in 32-bit words.
    """

    lanes: int = 4
    weight_depth: int = 1024
    state_depth: int = 1024
    acc_depth: int = 512
    wg_groups: int = 1 << 16
    max_inputs: int = 1024
    max_steps: int = 255
    max_batch: int = 256
    max_kernel: int = 7
    max_stride: int = 4
    max_pool: int = 4
    conv: bool = True
    mac: bool = True
    dram_words: int = 1 << 22


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _row_words(count: int, spikes: bool) -> int:
    return _ceil(count, SPIKES_PER_WORD if spikes else HALVES_PER_WORD)


def _used_slots(d) -> dict:
    """``{slot: (kind, output, element offset of the tile in its row, tile length, row length)}``
    for the slots the opcode uses; kind is ``"spikes"``, ``"half"`` or ``"weights"``."""
    op = d.op
    row_w = d.in_total * d.kk                         # elements of one weight row
    x = "half" if d.analog else "spikes"
    outs = (d.out_lo * d.out_plane, d.out_cnt * d.out_plane, d.out_total * d.out_plane)
    pooled = (d.out_lo * d.pool_plane, d.out_cnt * d.pool_plane, d.out_total * d.pool_plane)
    if op == Opcode.FP:
        used = {"a": ("weights", False, 0, row_w, row_w),
                "b": (x, False, 0, d.in_total * d.in_plane, d.in_total * d.in_plane),
                "c": ("half", True, *outs)}
        if d.layer != LayerType.READOUT:
            used["d"] = ("spikes", True, *pooled)
        return used
    if op in (Opcode.BP, Opcode.BPWG):
        used = {"a": ("weights", False, d.in_lo * d.kk, d.in_cnt * d.kk, row_w),
                "b": ("half", False, 0, d.out_total * d.out_plane, d.out_total * d.out_plane),
                "c": ("half", True, d.in_lo * d.in_plane, d.in_cnt * d.in_plane, d.in_total * d.in_plane)}
        if op == Opcode.BPWG:       # WG's gradient tile and input (its δI is slot b)
            used["d"] = ("weights", True, d.in_lo * d.kk, d.in_cnt * d.kk, row_w)
            used["e"] = (x, False, d.in_lo * d.in_plane, d.in_cnt * d.in_plane, d.in_total * d.in_plane)
        return used
    if op == Opcode.BPN:
        return {"b": ("half", False, *pooled), "c": ("half", False, *outs), "d": ("half", True, *outs)}
    if op == Opcode.WG:
        return {"a": ("weights", True, d.in_lo * d.kk, d.in_cnt * d.kk, row_w),
                "b": (x, False, d.in_lo * d.in_plane, d.in_cnt * d.in_plane, d.in_total * d.in_plane),
                "c": ("half", False, *outs)}
    return {}


def expected_words(desc) -> dict:
    """``{slot: words per row}`` that the opcode touches (what ``<slot>_words`` must hold)."""
    return {s: _row_words(u[3], u[0] == "spikes") for s, u in _used_slots(desc).items()}


def slot_rows(desc, slot: str) -> tuple[int, bool]:
    """``(rows, per_sample)``: a weight-shaped slot spans ``rows`` rows ``pitch`` apart; a data
    slot spans ``N`` rows ``pitch`` apart and, unless ``per_sample``, ``T`` steps ``tstride`` apart.

    Per-sample data slots (no T dimension): an input slot with ``tstride = 0`` (the same row for
    every step: a direct-encoded input, the readout's ``G``) and the readout's outputs (logits of
    FP, δS of BP)."""
    d = desc
    used = _used_slots(d)
    if slot not in used:
        raise ValueError(f"opcode {d.op} does not use slot {slot!r} as a row operand")
    kind, output = used[slot][:2]
    if kind == "weights":
        return (d.out_total if d.op in (Opcode.BP, Opcode.BPWG) else d.out_cnt), True
    if output:
        return d.batch, d.layer == LayerType.READOUT
    return d.batch, getattr(d, f"{slot}_tstride") == 0


def _check_geometry(d) -> bool:
    if d.layer != LayerType.CONV:
        flat = (d.in_h, d.in_w, d.out_h, d.out_w, d.pool_h, d.pool_w, d.kernel, d.stride, d.pool, d.kk,
                d.in_plane, d.out_plane, d.pool_plane)
        return flat == (1,) * len(flat) and d.padding == 0
    span_h, span_w = d.in_h + 2 * d.padding - d.kernel, d.in_w + 2 * d.padding - d.kernel
    if span_h < 0 or span_w < 0:
        return False
    return (d.out_h == span_h // d.stride + 1 and d.out_w == span_w // d.stride + 1
            and d.pool_h == d.out_h // d.pool and d.pool_w == d.out_w // d.pool and d.pool_h > 0
            and d.pool_w > 0 and d.kk == d.kernel * d.kernel and d.in_plane == d.in_h * d.in_w
            and d.out_plane == d.out_h * d.out_w and d.pool_plane == d.pool_h * d.pool_w)


def _check_consistent(d) -> bool:
    if not _check_geometry(d):
        return False
    if d.op in (Opcode.FP, Opcode.BPN) and (d.in_lo != 0 or d.in_cnt != d.in_total):
        return False
    if d.op in (Opcode.BP, Opcode.BPWG) and (d.out_lo != 0 or d.out_cnt != d.out_total):
        return False
    if d.out_lo + d.out_cnt > d.out_total or d.in_lo + d.in_cnt > d.in_total:
        return False
    if d.op in (Opcode.BP, Opcode.BPWG) and d.layer == LayerType.READOUT and d.b_tstride != 0:
        return False                     # the readout's δ is per sample: BP runs once per sample
    if d.op in (Opcode.BP, Opcode.BPWG) and d.layer != LayerType.READOUT and d.steps > 1 and d.b_tstride == 0:
        return False                     # a body layer's δI has a row per step (BPN writes it so)
    for s, (kind, _, _, count, full) in _used_slots(d).items():
        pitch, words, tstride = (getattr(d, f"{s}_{k}") for k in ("pitch", "words", "tstride"))
        spikes = kind == "spikes"
        if words != _row_words(count, spikes):
            return False
        rows, per_sample = slot_rows(d, s)
        if kind == "weights":
            if rows > 1 and pitch < _row_words(full, False):
                return False
            continue
        if pitch < _row_words(full, spikes):
            return False
        if per_sample and tstride != 0:
            return False
        if not per_sample and d.steps > 1 and tstride < d.batch * pitch:
            return False
    return True


def _aligned(d) -> bool:
    for kind, _, lo, count, full in _used_slots(d).values():
        unit = SPIKES_PER_WORD if kind == "spikes" else HALVES_PER_WORD
        end = lo + count
        if lo % unit or (end % unit and end != full):
            return False
    return True


def _in_dram(d, dram: int) -> bool:
    if d.param_addr + PARAM_WORDS > dram:
        return False
    if d.op == Opcode.UPDATE:
        spans = [(d.a_addr, d.length), (d.b_addr, d.length)] + ([(d.c_addr, d.length)] if d.momentum else [])
        return all(a + n <= dram for a, n in spans)
    for s in _used_slots(d):
        rows, per_sample = slot_rows(d, s)
        pitch, words, tstride, addr = (getattr(d, f"{s}_{k}") for k in ("pitch", "words", "tstride", "addr"))
        last = addr + (rows - 1) * pitch + words
        if not per_sample:
            last += (d.steps - 1) * tstride
        if last > dram:
            return False
    return True


def validate(desc, core: CoreParams) -> ErrorCode:
    """The checks a core makes on a fetched descriptor before touching memory (first failure in
    :class:`ErrorCode` order).  ``END`` is always valid."""
    d = desc
    try:
        op = Opcode(d.op)
    except ValueError:
        return ErrorCode.BAD_OPCODE
    if op == Opcode.END:
        return ErrorCode.NONE
    if op == Opcode.UPDATE:
        if d.length == 0:
            return ErrorCode.ZERO_SIZE
        return ErrorCode.NONE if _in_dram(d, core.dram_words) else ErrorCode.ADDRESS_RANGE
    if d.layer not in tuple(LayerType) or (op == Opcode.BPN and d.layer == LayerType.READOUT):
        return ErrorCode.BAD_LAYER
    neuron_op = op in (Opcode.FP, Opcode.BPN) and d.layer != LayerType.READOUT
    if neuron_op and d.neuron not in tuple(NeuronType):
        return ErrorCode.BAD_NEURON
    if neuron_op and d.surrogate not in tuple(SurrogateType):
        return ErrorCode.BAD_SURROGATE
    if (d.layer == LayerType.CONV and not core.conv) or (
            d.analog and op in (Opcode.FP, Opcode.WG, Opcode.BPWG) and not core.mac):
        return ErrorCode.UNSUPPORTED
    sizes = (d.steps, d.batch, d.out_cnt, d.in_cnt, d.out_total, d.in_total, d.kernel, d.stride, d.pool,
             d.in_h, d.in_w, d.out_h, d.out_w, d.kk, d.in_plane, d.out_plane)
    if any(v == 0 for v in sizes):
        return ErrorCode.ZERO_SIZE
    if (d.steps > core.max_steps or d.batch > core.max_batch or d.kernel > core.max_kernel
            or d.stride > core.max_stride or d.pool > core.max_pool or d.padding >= d.kernel):
        return ErrorCode.SIZE_LIMIT
    if not _check_consistent(d):
        return ErrorCode.INCONSISTENT
    lanes = core.lanes
    if op == Opcode.FP:
        weights, state, inputs = _ceil(d.out_cnt, lanes) * d.in_total * d.kk, d.out_cnt * d.out_plane, \
            d.in_total * d.in_plane
    elif op == Opcode.BP:
        weights, state, inputs = _ceil(d.in_cnt, lanes) * d.out_total * d.kk, d.in_cnt * d.in_plane, \
            d.out_total * d.out_plane
    elif op == Opcode.BPWG:     # BP's and WG's state (δS tile, δI row) and event lists (δ row, input tile row)
        weights = _ceil(d.in_cnt, lanes) * d.out_total * d.kk
        state = max(d.in_cnt * d.in_plane, d.out_total * d.out_plane)
        inputs = max(d.out_total * d.out_plane, d.in_cnt * d.in_plane)
    elif op == Opcode.BPN:
        weights, state, inputs = 0, d.out_cnt * d.out_plane, 0
    else:                       # WG keeps a row of its tile's δI on chip (a conv layer's maps)
        weights, state, inputs = 0, d.out_cnt * d.out_plane, d.in_cnt * d.in_plane
    if weights > core.weight_depth:
        return ErrorCode.WEIGHT_CAPACITY
    if state > core.state_depth:
        return ErrorCode.STATE_CAPACITY
    if inputs > core.max_inputs:
        return ErrorCode.INPUT_CAPACITY
    if op in (Opcode.WG, Opcode.BPWG) and (_ceil(d.out_cnt, lanes) * d.in_cnt * d.kk > core.acc_depth
                            or _ceil(d.out_cnt, lanes) > core.wg_groups):
        return ErrorCode.ACC_CAPACITY
    if not _in_dram(d, core.dram_words):
        return ErrorCode.ADDRESS_RANGE
    if not _aligned(d):
        return ErrorCode.MISALIGNED
    return ErrorCode.NONE


def split_bpwg(desc) -> tuple:
    """The ``BP`` (slots a, b, c) and the ``WG`` (gradient tile d as its a, input e as its b,
    ``δI`` b as its c) that the ``BPWG`` descriptor ``desc`` fuses: run one after the other
    they compute the same words."""
    d = desc
    if d.op != Opcode.BPWG:
        raise ValueError(f"split_bpwg: opcode {d.op} is not BPWG ({int(Opcode.BPWG)})")
    keys = ("addr", "pitch", "words", "tstride")
    unused = {f"{s}_{k}": 0 for s in "de" for k in keys}

    def moved(src, dst):
        return {f"{dst}_{k}": getattr(d, f"{src}_{k}") for k in keys}
    bp = dataclasses.replace(d, op=Opcode.BP, analog=0, **unused)
    wg = dataclasses.replace(d, op=Opcode.WG, **unused, **moved("d", "a"), **moved("e", "b"), **moved("b", "c"))
    return bp, wg


# ---- parameter block -------------------------------------------------------------------

def _pair(lo, hi) -> int:
    return (int(lo) & 0xFFFF) | ((int(hi) & 0xFFFF) << 16)


def param_block(neuron, steps: int, lr16: torch.Tensor, momentum16: torch.Tensor | None,
                shift: int) -> list[int]:
    """The :data:`PARAM_WORDS` words of a parameter block (docs/descriptors.md §4).

    Parameters
    ----------
    neuron : NeuronParams or None
        The layer's neuron registers (None for the readout: neuron words are 0).
    steps : int
        T (``inv_T = RNE(1/T)``).
    lr16, momentum16 : 0-dim binary16 tensors (momentum may be None: stored as +0)
    shift : int
        The loss-scale shift ``s`` (0 … 31).
    """
    if not 0 <= shift < 32:
        raise ValueError(f"loss-scale shift {shift} does not fit 5 bits")
    b = lambda t: int(F.bits(t)) if t is not None else 0   # noqa: E731
    regs = neuron.registers() if neuron is not None else {}
    r = lambda k: int(regs.get(k, 0))                        # noqa: E731
    words = [_pair(r("v_th"), r("v_reset")), _pair(r("v_rest"), r("inv_tau")), _pair(r("leak"), r("k")),
             _pair(r("surrogate_alpha"), r("surrogate_half_width")),
             _pair(r("surrogate_neg_alpha_sq"), b(F.const(1.0 / steps))), _pair(b(lr16), b(momentum16)),
             shift, 0]
    slope = regs.get("surrogate_slope") or [0] * SIGMOID_SEGMENTS
    intercept = regs.get("surrogate_intercept") or [0] * SIGMOID_SEGMENTS
    return words + [_pair(a, c) for a, c in zip(slope, intercept)]


def decode_param_block(words) -> dict:
    """The inverse of :func:`param_block`: 16-bit patterns keyed as ``NeuronParams.registers()``
    (``v_th`` … ``k``, ``surrogate_alpha`` … ``surrogate_intercept``) plus ``inv_T``, ``lr``,
    ``momentum`` and the integer ``shift``."""
    w = [int(x) for x in words]
    if len(w) != PARAM_WORDS:
        raise ValueError(f"a parameter block has {PARAM_WORDS} words, got {len(w)}")
    names = ("v_th", "v_reset", "v_rest", "inv_tau", "leak", "k", "surrogate_alpha", "surrogate_half_width",
             "surrogate_neg_alpha_sq", "inv_T", "lr", "momentum")
    out = {n: (w[i // 2] >> (16 * (i % 2))) & 0xFFFF for i, n in enumerate(names)}
    table = w[PARAM_TABLE_OFFSET:]
    out.update(shift=w[6] & 0x1F, surrogate_slope=[x & 0xFFFF for x in table],
               surrogate_intercept=[x >> 16 for x in table])
    return out


# ---- DRAM row layouts ------------------------------------------------------------------

def pack_spikes(rows: np.ndarray, pitch: int) -> np.ndarray:
    """``rows [R, F]`` (bool) → ``uint32 [R, pitch]``: bit ``b`` of word ``w`` is element
    ``32·w + b``; bits past ``F`` are 0."""
    rows = np.asarray(rows, dtype=bool)
    r, f = rows.shape
    padded = np.zeros((r, pitch * SPIKES_PER_WORD), dtype=bool)
    padded[:, :f] = rows
    return np.packbits(padded, axis=1, bitorder="little").view("<u4").astype(np.uint32)


def unpack_spikes(words: np.ndarray, count: int) -> np.ndarray:
    """``uint32 [R, W]`` → ``bool [R, count]`` (the first ``count`` bits of each row)."""
    w = np.ascontiguousarray(np.asarray(words, dtype=np.uint32).astype("<u4"))
    bits = np.unpackbits(w.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :count].astype(bool)


def pack_half(rows: np.ndarray, pitch: int) -> np.ndarray:
    """``rows [R, F]`` (float16, or uint16 patterns) → ``uint32 [R, pitch]``: element ``2w`` in
    bits 0–15 of word ``w``, ``2w+1`` in bits 16–31; padding is +0."""
    rows = np.asarray(rows)
    r, f = rows.shape
    padded = np.zeros((r, pitch * HALVES_PER_WORD), dtype=np.uint16)
    padded[:, :f] = rows.view(np.uint16) if rows.dtype == np.float16 else rows.astype(np.uint16)
    return padded.astype("<u2").view("<u4").astype(np.uint32)


def unpack_half(words: np.ndarray, count: int) -> np.ndarray:
    """``uint32 [R, W]`` → ``float16 [R, count]``."""
    w = np.ascontiguousarray(np.asarray(words, dtype=np.uint32).astype("<u4"))
    return w.view("<u2")[:, :count].view(np.float16)
