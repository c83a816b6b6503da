"""Packing named fields into the raw integers of an Amaranth payload, and back.

Stream payloads are ``data.StructLayout`` values; simulators see them as one flat
vector (``i__payload`` in the generated Verilog).  Test vectors are kept as NumPy
arrays of field values on the Python side and packed here, bit-exactly, with the
offsets Amaranth itself uses.
"""

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["payload_layout", "fields_of", "pack", "unpack", "words_needed"]


def payload_layout(component, port):
    """The payload layout of stream member ``port`` (e.g. ``"i"``) of a component.

    Marks the component as used: asking for its layout is a legitimate use, so Amaranth
    does not warn that it was never elaborated.
    """
    component._MustUse__silence = True
    member = component.signature.members[port]
    return member.signature.members["payload"].shape


def fields_of(layout):
    """Flat ``{name: (offset, width, signed)}`` of a layout (nested structs joined by '.')."""
    out = {}

    def walk(layout, prefix, base):
        if isinstance(layout, data.Layout):
            for name, field in layout:
                walk(field.shape, f"{prefix}{name}.", base + field.offset)
        else:
            shape = Shape.cast(layout)
            out[prefix[:-1]] = (base, shape.width, shape.signed)

    if isinstance(layout, data.Layout):
        walk(layout, "", 0)
    else:
        shape = Shape.cast(layout)
        out[""] = (0, shape.width, shape.signed)
    return out


def _top_fields(layout):
    """``{name: (offset, width, signed)}`` of the top-level fields (a struct field counts as raw bits)."""
    out = {}
    for name, field in layout:
        shape = Shape.cast(field.shape)
        out[name] = (field.offset, shape.width, shape.signed)
    return out


def words_needed(layout):
    """Number of 64-bit words a packed payload of this layout needs."""
    return max(1, (Shape.cast(layout).width + 63) // 64)


def pack(layout, **fields):
    """Pack top-level fields (arrays of raw bits, broadcast together) into payload integers.

    Returns a ``uint64`` array when the payload fits in 64 bits, else an object array of
    Python ints.  Missing fields are 0; signed fields may be given as negative numbers.
    """
    top = _top_fields(layout)
    unknown = set(fields) - set(top)
    if unknown:
        raise KeyError(f"no such payload fields: {sorted(unknown)}; have {sorted(top)}")
    width = Shape.cast(layout).width
    arrays = {k: _as_array(v) for k, v in fields.items()}
    n = max((a.size for a in arrays.values()), default=0)
    if width <= 64:
        out = np.zeros(n, dtype=np.uint64)
        for name, value in arrays.items():
            off, w, _ = top[name]
            v = np.broadcast_to(value, (n,))
            if v.dtype.kind == "i":         # two's complement, as the signed field holds it
                v = v.astype(np.int64).astype(np.uint64)
            elif v.dtype.kind in "ub":
                v = v.astype(np.uint64)
            else:                           # Python ints of any size (an object array)
                v = np.array([int(x) & 0xFFFF_FFFF_FFFF_FFFF for x in v], dtype=np.uint64)
            out |= (v & np.uint64((1 << w) - 1)) << np.uint64(off)
        return out
    out = np.zeros(n, dtype=object)
    for name, value in arrays.items():
        off, w, _ = top[name]
        v = np.broadcast_to(value, (n,))
        out = out + np.array([(int(x) & ((1 << w) - 1)) << off for x in v], dtype=object)
    return out


def _as_array(value):
    """Field values as an array without going through float: a list of Python ints stays
    exact whatever their size (NumPy would turn ``[2**63 + 5, 3]`` into float64)."""
    if isinstance(value, (list, tuple)):
        return np.array(value, dtype=object)
    return np.asarray(value)


def unpack(layout, packed):
    """Split payload integers into ``{field: array}`` (signed fields sign-extended)."""
    top = _top_fields(layout)
    packed = np.asarray(packed)
    out = {}
    if packed.dtype != object and Shape.cast(layout).width <= 64:
        p = packed.astype(np.uint64)
        for name, (off, w, is_signed) in top.items():
            v = (p >> np.uint64(off)) & np.uint64((1 << w) - 1)
            if is_signed:
                v = v.astype(np.int64)
                v = np.where(v >= (1 << (w - 1)), v - (1 << w), v)
            out[name] = v
        return out
    for name, (off, w, is_signed) in top.items():
        vals = []
        for x in packed.tolist():
            v = (int(x) >> off) & ((1 << w) - 1)
            if is_signed and v >> (w - 1):
                v -= 1 << w
            vals.append(v)
        out[name] = np.array(vals, dtype=object)
    return out
