"""A small control-and-status-register library: registers declared once as Python objects,
a memory map that can be walked, and the hardware that serves them on a CSR bus.

It follows the shape of amaranth-soc's ``csr`` package (fields with access modes,
registers made of fields, a memory map, a bus multiplexer), which cannot be installed
here; the code is our own.

Declaring
---------
:class:`Field`     a bit field with an :class:`Access` mode (and, for build parameters, a
                   constant value the hardware reads back);
:class:`Register`  32 bits of fields, packed from bit 0 in declaration order;
:class:`Block`     registers at consecutive word offsets, optionally repeated ``count``
                   times every ``stride`` bytes (one block per core);
:class:`MemoryMap` blocks at byte base addresses; :meth:`MemoryMap.walk` yields every
                   register instance with its path and byte address, and
                   :meth:`MemoryMap.locate` finds one by path (``"core[1].status"``).

Hardware
--------
:class:`CSRBusSignature` the bus (word address, read and write strobes, one cycle of read
                   latency); :class:`CSRBank` decodes it for a whole :class:`MemoryMap` and
                   gives the design one :class:`FieldPort` per field instance.
"""

import enum
from dataclasses import dataclass, field as dataclass_field

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["REGISTER_BITS", "Access", "Field", "Register", "Block", "MemoryMap",
           "RegisterInstance", "CSRBusSignature", "FieldPort", "CSRBank"]

#: Width of every register (and of the CSR bus).
REGISTER_BITS = 32


class Access(enum.Enum):
    """How the host may access a field.

    Members
    -------
    R
        Read only: the hardware drives the value (or it is a build constant).
    W
        Write only: a write pulses ``w_stb`` for one cycle with ``w_data``; reads give 0.
    RW
        Read/write storage, initialised to the field's ``reset``.
    W1C
        Sticky status bits: the hardware sets them, writing 1 clears them.
    """
    R = "r"
    W = "w"
    RW = "rw"
    W1C = "w1c"

    @property
    def readable(self):
        return self is not Access.W

    @property
    def svd(self):
        """The CMSIS-SVD ``<access>`` value."""
        return {"r": "read-only", "w": "write-only"}.get(self.value, "read-write")


@dataclass(frozen=True)
class Field:
    """A bit field of a register.

    Attributes
    ----------
    name : str
    width : int
    access : Access
    desc : str
    reset : int
        Initial value of RW storage.
    const : int or None
        For R fields that report a build parameter: the value the hardware reads back.
    """
    name: str
    width: int
    access: Access
    desc: str = ""
    reset: int = 0
    const: int = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"field name {self.name!r} is not an identifier")
        if not 1 <= self.width <= REGISTER_BITS:
            raise ValueError(f"field {self.name!r}: width {self.width} is not in 1..{REGISTER_BITS}")
        if self.const is not None and self.access is not Access.R:
            raise ValueError(f"field {self.name!r}: only read-only fields can be constants")
        for what, value in (("reset", self.reset), ("const", self.const)):
            if value is not None and not 0 <= value < (1 << self.width):
                raise ValueError(f"field {self.name!r}: {what} {value:#x} does not fit in "
                                 f"{self.width} bits")


@dataclass(frozen=True)
class Register:
    """A 32-bit register: fields packed from bit 0 in declaration order.

    Attributes
    ----------
    name : str
    fields : tuple of Field
    desc : str
    """
    name: str
    fields: tuple
    desc: str = ""

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.name.isidentifier():
            raise ValueError(f"register name {self.name!r} is not an identifier")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"register {self.name!r} has duplicate field names: {names}")
        if sum(f.width for f in self.fields) > REGISTER_BITS:
            raise ValueError(f"register {self.name!r}: fields need "
                             f"{sum(f.width for f in self.fields)} bits, more than {REGISTER_BITS}")

    def layout(self):
        """``[(field, bit offset)]``."""
        out, offset = [], 0
        for f in self.fields:
            out.append((f, offset))
            offset += f.width
        return out

    def field(self, name):
        for f, offset in self.layout():
            if f.name == name:
                return f, offset
        raise KeyError(f"register {self.name!r} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self.fields)})")

    def unpack(self, value):
        """``{field name: value}`` of a register value."""
        return {f.name: (value >> off) & ((1 << f.width) - 1) for f, off in self.layout()}

    def pack(self, **values):
        """A register value from field values (missing fields are 0)."""
        word = 0
        for name, value in values.items():
            f, off = self.field(name)
            if not 0 <= value < (1 << f.width):
                raise ValueError(f"{self.name}.{name}: {value} does not fit in {f.width} bits")
            word |= value << off
        return word

    @property
    def reset_value(self):
        return sum(((f.const if f.const is not None else f.reset) << off)
                   for f, off in self.layout())

    @property
    def access(self):
        """The register's overall access (for exports): R, W or RW."""
        modes = {f.access for f in self.fields}
        if modes == {Access.R}:
            return Access.R
        if modes == {Access.W}:
            return Access.W
        return Access.RW


@dataclass(frozen=True)
class Block:
    """Registers at consecutive word offsets, optionally an array of ``count`` copies.

    Attributes
    ----------
    name : str
    registers : tuple of Register
    desc : str
    count : int or None
        None: a single block; otherwise the number of copies (addressed ``name[i]``).
    stride : int
        Bytes between copies.
    """
    name: str
    registers: tuple
    desc: str = ""
    count: int = None
    stride: int = 0

    def __post_init__(self):
        object.__setattr__(self, "registers", tuple(self.registers))
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise ValueError(f"block {self.name!r} has duplicate register names: {names}")
        if self.count is not None and self.stride < self.size:
            raise ValueError(f"block {self.name!r}: stride {self.stride:#x} is smaller than "
                             f"its {self.size:#x} bytes of registers")

    @property
    def size(self):
        """Bytes of one copy."""
        return 4 * len(self.registers)

    @property
    def span(self):
        """Bytes of all copies."""
        return self.size if self.count is None else self.stride * self.count

    def offset(self, register_name):
        for i, r in enumerate(self.registers):
            if r.name == register_name:
                return 4 * i
        raise KeyError(f"block {self.name!r} has no register {register_name!r} "
                       f"(registers: {', '.join(r.name for r in self.registers)})")


@dataclass(frozen=True)
class RegisterInstance:
    """One register at one address, as yielded by :meth:`MemoryMap.walk`.

    Attributes
    ----------
    path : str
        ``"block.register"`` or ``"block[i].register"``.
    address : int
        Byte address.
    register : Register
    block : Block
    index : int or None
        Copy number in an array block.
    """
    path: str
    address: int
    register: Register
    block: Block
    index: int = None


@dataclass
class MemoryMap:
    """Blocks of registers at byte base addresses.

    Attributes
    ----------
    name : str
    blocks : list of (int, Block)
        ``(base address, block)``.
    """
    name: str
    blocks: list = dataclass_field(default_factory=list)

    def add(self, base, block):
        """Place ``block`` at byte address ``base`` (word aligned, not overlapping)."""
        if base % 4:
            raise ValueError(f"block {block.name!r}: base {base:#x} is not word aligned")
        for other_base, other in self.blocks:
            if other.name == block.name:
                raise ValueError(f"memory map {self.name!r} already has a block {block.name!r}")
            if base < other_base + other.span and other_base < base + block.span:
                raise ValueError(f"block {block.name!r} at {base:#x}..{base + block.span:#x} "
                                 f"overlaps {other.name!r} at {other_base:#x}..{other_base + other.span:#x}")
        self.blocks.append((base, block))
        self.blocks.sort(key=lambda item: item[0])
        return self

    @property
    def size(self):
        """Bytes from 0 to the end of the last block."""
        return max((base + block.span for base, block in self.blocks), default=0)

    def walk(self):
        """Every register instance, in address order."""
        for base, block in self.blocks:
            copies = [None] if block.count is None else range(block.count)
            for index in copies:
                block_base = base + (0 if index is None else index * block.stride)
                prefix = block.name if index is None else f"{block.name}[{index}]"
                for i, reg in enumerate(block.registers):
                    yield RegisterInstance(f"{prefix}.{reg.name}", block_base + 4 * i, reg,
                                           block, index)

    def locate(self, path):
        """The :class:`RegisterInstance` at ``path`` (``"global.id"``, ``"core[2].status"``)."""
        table = self._table()
        if path not in table:
            raise KeyError(f"no register {path!r} in memory map {self.name!r}; registers look "
                           f"like {', '.join(list(table)[:4])}, …")
        return table[path]

    def at(self, address):
        """The :class:`RegisterInstance` at a byte address, or None."""
        return self._by_address().get(address)

    def _table(self):
        if getattr(self, "_cached_table", None) is None:
            self._cached_table = {inst.path: inst for inst in self.walk()}
        return self._cached_table

    def _by_address(self):
        if getattr(self, "_cached_addresses", None) is None:
            self._cached_addresses = {inst.address: inst for inst in self.walk()}
        return self._cached_addresses


class CSRBusSignature(wiring.Signature):
    """The CSR bus, seen from its initiator. Read data is valid the cycle after ``r_stb``.

    Members
    -------
    addr : Out(addr_width)
        Word address.
    r_stb : Out(1)
    r_data : In(32)
    w_stb : Out(1)
    w_data : Out(32)
    """

    def __init__(self, addr_width):
        self.addr_width = addr_width
        super().__init__({
            "addr": Out(addr_width),
            "r_stb": Out(1),
            "r_data": In(REGISTER_BITS),
            "w_stb": Out(1),
            "w_data": Out(REGISTER_BITS),
        })


class FieldPort:
    """The design-side signals of one field instance of a :class:`CSRBank`.

    Members (depending on the field's access)
    -------
    r_data : Signal(width)
        R: the value the host reads; drive it (constants are tied inside the bank).
    data : Signal(width)
        RW and W1C: the stored value.
    set : Signal(width)
        W1C: bits to set this cycle.
    w_stb : Signal(1)
        W: one-cycle pulse on a host write of the register.
    w_data : Signal(width)
        W: the written value (valid with ``w_stb``).
    """

    def __init__(self, name, f):
        self.field = f
        if f.access is Access.R:
            self.r_data = Signal(f.width, name=f"{name}__r_data")
        if f.access in (Access.RW, Access.W1C):
            self.data = Signal(f.width, name=f"{name}__data", init=f.reset)
        if f.access is Access.W1C:
            self.set = Signal(f.width, name=f"{name}__set")
        if f.access is Access.W:
            self.w_stb = Signal(name=f"{name}__w_stb")
            self.w_data = Signal(f.width, name=f"{name}__w_data")


class CSRBank(wiring.Component):
    """Serves every register of a :class:`MemoryMap` on one CSR bus.

    The design reaches each field instance through :meth:`field` (a :class:`FieldPort`).
    Reads of unmapped addresses return 0; writes to them are ignored.

    Parameters
    ----------
    memory_map : MemoryMap

    Members
    -------
    bus : In(CSRBusSignature(addr_width))
        Word-addressed; ``addr_width`` covers the map.
    """

    def __init__(self, memory_map):
        self.memory_map = memory_map
        self.addr_width = max(1, (max(memory_map.size, 4) - 1).bit_length() - 2)
        self._ports = {}
        for inst in memory_map.walk():
            for f in inst.register.fields:
                name = f"{inst.path}.{f.name}".replace("[", "_").replace("]", "").replace(".", "__")
                self._ports[f"{inst.path}.{f.name}"] = FieldPort(name, f)
        super().__init__({"bus": In(CSRBusSignature(self.addr_width))})

    def field(self, path):
        """The :class:`FieldPort` of ``"block[i].register.field"``."""
        if path not in self._ports:
            raise KeyError(f"no field {path!r} in memory map {self.memory_map.name!r}")
        return self._ports[path]

    def elaborate(self, platform):
        m = Module()
        r_data = Signal(REGISTER_BITS)
        m.d.comb += self.bus.r_data.eq(r_data)
        # Defaults first: the bus decode below overrides them for the addressed register.
        for port in self._ports.values():
            f = port.field
            if f.access is Access.R and f.const is not None:
                m.d.comb += port.r_data.eq(Const(f.const, f.width))
            if f.access is Access.W1C:
                m.d.sync += port.data.eq(port.data | port.set)
        with m.If(self.bus.r_stb):
            m.d.sync += r_data.eq(0)
        with m.Switch(self.bus.addr):
            for inst in self.memory_map.walk():
                with m.Case(inst.address // 4):
                    self._serve(m, inst, r_data)
        return m

    def _serve(self, m, inst, r_data):
        parts = []          # the read value, field by field from bit 0
        for f, off in inst.register.layout():
            port = self._ports[f"{inst.path}.{f.name}"]
            bits = self.bus.w_data[off:off + f.width]
            if f.access is Access.R:
                parts.append(port.r_data)
            elif f.access is Access.RW:
                parts.append(port.data)
                with m.If(self.bus.w_stb):
                    m.d.sync += port.data.eq(bits)
            elif f.access is Access.W1C:
                parts.append(port.data)
                with m.If(self.bus.w_stb):
                    # A set in the same cycle wins over the clear: no event is lost.
                    m.d.sync += port.data.eq((port.data & ~bits) | port.set)
            else:
                parts.append(Const(0, f.width))
                m.d.comb += [port.w_stb.eq(self.bus.w_stb), port.w_data.eq(bits)]
        with m.If(self.bus.r_stb):
            m.d.sync += r_data.eq(Cat(*parts))
