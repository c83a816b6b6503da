"""Run-time configuration of the neuron, surrogate and BP-recursion units.

One register set (:class:`NeuronRegisters`) describes a layer's neurons; the core's CSR
block holds it and drives the ``regs`` port of all three units with the same value.  The
binary16 constants are the 16-bit patterns that ``NeuronParams.registers()`` (and
``HwExactNetwork.registers()["neuron"]``) return; :func:`encode_registers` packs that
dictionary into the port's bits.  The 64-entry sigmoid table is not part of the struct: it
is a small memory loaded through the :data:`SigmoidTableSignature` write port
(:func:`sigmoid_table_words` gives its contents).
"""

from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import Out

from ..fp16 import Float16

__all__ = ["NeuronKind", "SurrogateKind", "NeuronRegisters", "SigmoidTableSignature",
           "SIGMOID_SEGMENTS", "encode_registers", "decode_registers", "sigmoid_table_words"]

#: Entries of the sigmoid surrogate's slope/intercept table (segment index ``k = ⌊8u⌋``).
SIGMOID_SEGMENTS = 64


class NeuronKind(enum.Enum, shape=2):
    """Neuron model (``regs.kind``).  Encoding 3 is reserved (it behaves as LIF)."""
    IF = 0
    LIF = 1
    KLIF = 2


class SurrogateKind(enum.Enum, shape=2):
    """Surrogate gradient (``regs.surrogate``).  Encoding 3 is reserved (``h = +0``)."""
    RECTANGULAR = 0
    TRIANGLE = 1
    SIGMOID = 2


class NeuronRegisters(data.Struct):
    """The configuration registers of one layer's neurons (150 bits, LSB first).

    Every binary16 field is a register constant of docs/numerics.md §1.5, rounded once by the
    host.  The units read them combinationally: they must not change while items of the
    layer are in flight (the sequencer changes them between layers, with the pipelines
    drained).

    Members
    -------
    kind : NeuronKind
        IF, LIF or KLIF.
    soft_reset : unsigned(1)
        1: ``V = Z − V_th`` after a spike; 0: hard reset ``V = V_reset``.
    decay_input : unsigned(1)
        LIF/KLIF: 1 charges ``H = V + (X − (V − V_rest))·inv_tau``; 0 charges
        ``H = V − (V − V_rest)·inv_tau + X``.  Ignored by IF.
    surrogate : SurrogateKind
        Rectangular, triangle or the 64-segment sigmoid table.
    v_th, v_reset, v_rest : Float16
        Threshold, hard-reset value, resting potential (``V[0] = V_rest``).
    inv_tau : Float16
        ``RNE(1/τ)`` (IF: unused; ``NeuronParams`` sets 1.0).
    leak : Float16
        ``RNE(1 − inv_tau)``, the BP carry factor (IF: unused).
    k : Float16
        KLIF's fixed scale (unused by IF/LIF).
    alpha : Float16
        Surrogate ``α16``: the rectangular height, the triangle peak, the sigmoid's ``u``
        scale.
    half_width : Float16
        Rectangular: ``w = RNE(1/(2α))``.
    neg_alpha_sq : Float16
        Triangle: ``RNE(−α²)``.
    """

    kind: NeuronKind
    soft_reset: 1
    decay_input: 1
    surrogate: SurrogateKind
    v_th: Float16
    v_reset: Float16
    v_rest: Float16
    inv_tau: Float16
    leak: Float16
    k: Float16
    alpha: Float16
    half_width: Float16
    neg_alpha_sq: Float16


#: Host write port of the sigmoid table (the unit's ``table`` member is ``In(...)`` of it):
#: on a rising edge with ``en`` high, entry ``addr`` becomes ``(slope, intercept)`` =
#: ``(A[addr], B[addr])`` of docs/numerics.md §3.  Written between layers only.
SigmoidTableSignature = wiring.Signature({
    "en": Out(1),
    "addr": Out(range(SIGMOID_SEGMENTS)),
    "slope": Out(Float16),
    "intercept": Out(Float16),
})

_KINDS = {"if": NeuronKind.IF, "lif": NeuronKind.LIF, "klif": NeuronKind.KLIF}
_SURROGATES = {"rectangular": SurrogateKind.RECTANGULAR, "triangle": SurrogateKind.TRIANGLE,
               "sigmoid": SurrogateKind.SIGMOID}
# NeuronRegisters field -> key of the NeuronParams.registers() dictionary
_FLOAT_KEYS = {"v_th": "v_th", "v_reset": "v_reset", "v_rest": "v_rest", "inv_tau": "inv_tau",
               "leak": "leak", "k": "k", "alpha": "surrogate_alpha",
               "half_width": "surrogate_half_width", "neg_alpha_sq": "surrogate_neg_alpha_sq"}


def _fields():
    return {name: (field.offset, field.width)
            for name, field in data.Layout.cast(NeuronRegisters)}


def encode_registers(regs):
    """Pack a ``NeuronParams.registers()`` dictionary into the bits of ``NeuronRegisters``.

    Parameters
    ----------
    regs : dict
        ``kind`` (``"if"``/``"lif"``/``"klif"``), ``soft_reset``, ``decay_input``,
        ``surrogate`` (name), the binary16 patterns ``v_th``, ``v_reset``, ``v_rest``,
        ``inv_tau``, ``leak``, ``k``, ``surrogate_alpha`` and, per surrogate,
        ``surrogate_half_width`` / ``surrogate_neg_alpha_sq`` (absent ones are 0).
        ``surrogate_slope``/``surrogate_intercept`` are ignored (see
        :func:`sigmoid_table_words`).

    Returns
    -------
    int
        The 150-bit register value (drive it onto a unit's ``regs`` port).
    """
    fields = _fields()
    values = {
        "kind": _KINDS[regs["kind"]].value,
        "soft_reset": int(bool(regs["soft_reset"])),
        "decay_input": int(bool(regs["decay_input"])),
        "surrogate": _SURROGATES[regs.get("surrogate", "sigmoid")].value,
    }
    for name, key in _FLOAT_KEYS.items():
        values[name] = int(regs.get(key, 0))
    word = 0
    for name, value in values.items():
        offset, width = fields[name]
        if not 0 <= value < (1 << width):
            raise ValueError(f"register {name} = {value} does not fit {width} bits")
        word |= value << offset
    return word


def decode_registers(word):
    """The inverse of :func:`encode_registers`: ``{field: int}`` of a register value."""
    return {name: (int(word) >> offset) & ((1 << width) - 1)
            for name, (offset, width) in _fields().items()}


def sigmoid_table_words(regs):
    """The sigmoid table of a ``NeuronParams.registers()`` dictionary.

    Returns
    -------
    list of (int, int)
        64 ``(slope, intercept)`` binary16 patterns, entry ``k`` for ``addr = k``; all zero
        when the dictionary has no table (rectangular, triangle).
    """
    slope = regs.get("surrogate_slope") or [0] * SIGMOID_SEGMENTS
    intercept = regs.get("surrogate_intercept") or [0] * SIGMOID_SEGMENTS
    if len(slope) != SIGMOID_SEGMENTS or len(intercept) != SIGMOID_SEGMENTS:
        raise ValueError(f"the sigmoid table has {SIGMOID_SEGMENTS} entries")
    return [(int(a) & 0xFFFF, int(b) & 0xFFFF) for a, b in zip(slope, intercept)]
