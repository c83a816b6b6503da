"""The Trident register map, declared once.

The SoC's CSR bank (:mod:`trident.rtl.soc.soc`), the exports (JSON, C header, CMSIS-SVD:
:mod:`trident.rtl.soc.export`), docs/soc.md and the host driver (:mod:`trident.sw.driver`)
all take their addresses from :func:`build_regmap`; nothing else writes an offset down.

Host address space (byte addresses, 32-bit words)
-------------------------------------------------
``0x0000_0000 …``  CSRs (this map)
``0x8000_0000 …``  DRAM (:data:`HOST_DRAM_BASE`), ``dram_words`` words

The global block sits at fixed addresses whatever the build, so a host can read
``global.build`` and ``global.dram_words`` first and rebuild the rest of the map from them
(:func:`regmap_from_global`).
"""

from dataclasses import dataclass

from .csr import Access, Block, Field, MemoryMap, Register

__all__ = ["MAGIC", "VERSION", "HOST_DRAM_BASE", "CORE_BASE", "CORE_STRIDE", "MAX_CORES",
           "QUEUE_BASE", "CORE_COUNTERS", "SOC_COUNTERS", "SoCParams", "build_regmap",
           "regmap_from_global"]

#: ``global.id``: "TRID" in ASCII.
MAGIC = 0x54524944
#: ``global.version``: (major, minor) of the register map.  1.1 added the program queue
#: (the ``queue`` block and ``core[i].enqueue``) without moving any 1.0 register; 1.2 the
#: AXI port's burst counters and ``dram.status.busy``; 1.3 ``global.build.axi_dram``.
VERSION = (1, 3)
#: Byte address of DRAM word 0 in the host address space.
HOST_DRAM_BASE = 0x8000_0000
#: Byte address of core 0's block, and the bytes between cores.
CORE_BASE = 0x1000
CORE_STRIDE = 0x100
#: Byte address of the program queue's block.
QUEUE_BASE = 0x0080
#: Cores ``global.build.cores`` can report (the core blocks would fit far more below
#: :data:`HOST_DRAM_BASE`).
MAX_CORES = 0xFFFF

#: Performance counters a core reports itself: fields of its ``counters`` output (a
#: ``data.StructLayout`` of 32-bit counters cleared by ``start``; trident.rtl.core.core
#: ``counter_layout``).  A core without one of them reads 0 there.
CORE_COUNTERS = {
    "fp_busy": "cycles the FP engine was busy",
    "bp_busy": "cycles the BP engine was busy",
    "wg_busy": "cycles the WG engine was busy",
    "neuron_busy": "cycles the neuron units held items",
    "update_busy": "cycles the update unit was busy",
    "dma_busy": "cycles the DMA was busy",
    "fp_ops": "FP lane operations executed",
    "fp_skipped": "FP lane operations skipped (zero inputs)",
    "bp_ops": "BP lane operations executed",
    "bp_skipped": "BP lane operations skipped (zero gradients)",
    "wg_ops": "WG lane operations executed",
    "wg_skipped": "WG rows skipped",
    "words_read": "DRAM words the core read (its own count)",
    "words_written": "DRAM words the core wrote (its own count)",
    "descriptors": "descriptors executed",
}
#: Per-core counters the SoC keeps itself, also cleared by the core's ``start``.
SOC_COUNTERS = {
    "busy_cycles": "cycles the core was busy (control port)",
    "dram_bytes_read": "DRAM bytes the core read (counted at its memory port)",
    "dram_bytes_written": "DRAM bytes the core wrote (counted at its memory port)",
}

@dataclass(frozen=True)
class SoCParams:
    """The build parameters the map depends on.

    Attributes
    ----------
    cores : int
    addr_width : int
        Width of a core's DRAM word address.
    dram_words : int
        Words of DRAM behind the SoC.
    queue_depth : int
        Entries of the program queue (programs and barriers waiting to run).
    axi_dram : bool
        DRAM is behind the SoC's AXI4 port (its burst counters count); otherwise block RAM.
    """
    cores: int = 1
    addr_width: int = 24
    dram_words: int = 1 << 16
    queue_depth: int = 32
    axi_dram: bool = False

    def __post_init__(self):
        if not 1 <= self.cores <= MAX_CORES:
            raise ValueError(f"cores = {self.cores}: the map holds 1 … {MAX_CORES} cores")
        if not 2 <= self.addr_width <= 29:
            raise ValueError(f"addr_width = {self.addr_width}: must be 2 … 29 (DRAM is a "
                             f"2 GiB window of the host address space)")
        if not 1 <= self.dram_words <= (1 << self.addr_width):
            raise ValueError(f"dram_words = {self.dram_words}: must be 1 … 2**addr_width "
                             f"= {1 << self.addr_width}")
        if not 2 <= self.queue_depth <= 0xFFFF:
            raise ValueError(f"queue_depth = {self.queue_depth}: must be 2 … 65535")


def _counter(name, desc):
    return Register(name, [Field("count", 32, Access.R, desc + " (wraps at 2**32)")], desc)


def build_regmap(params: SoCParams = SoCParams()) -> MemoryMap:
    """The register map of a SoC built with ``params``."""
    aw = params.addr_width
    glob = Block("global", [
        Register("id", [Field("magic", 32, Access.R, '"TRID"', const=MAGIC)], "identifies a Trident SoC"),
        Register("version", [Field("minor", 8, Access.R, "register map minor version", const=VERSION[1]),
                             Field("major", 8, Access.R, "register map major version", const=VERSION[0])],
                 "register map version"),
        Register("build", [Field("cores", 16, Access.R, "number of cores", const=params.cores),
                           Field("addr_width", 8, Access.R, "bits of a DRAM word address",
                                 const=params.addr_width),
                           Field("axi_dram", 1, Access.R, "1: DRAM is behind the AXI4 port "
                                 "(0: block RAM)", const=int(params.axi_dram))],
                 "build parameters"),
        Register("dram_words", [Field("words", 32, Access.R, "32-bit words of DRAM",
                                      const=params.dram_words)], "DRAM size"),
        Register("scratch", [Field("value", 32, Access.RW, "free for the host")],
                 "scratch register (link test)"),
        Register("control", [Field("clear_counters", 1, Access.W,
                                   "write 1: zero global.cycles and the dram counters")],
                 "SoC-wide control"),
        Register("irq", [Field("pending", 1, Access.R, "some core has an enabled IRQ pending")],
                 "interrupt summary (the SoC's irq output)"),
        Register("cycles", [Field("count", 32, Access.R, "clock cycles since reset or the last "
                                  "clear (wraps at 2**32)")], "free-running cycle counter"),
    ], "identification, build parameters, SoC-wide control")
    dram = Block("dram", [
        _counter("bytes_read", "DRAM bytes read (all initiators, host included)"),
        _counter("bytes_written", "DRAM bytes written (all initiators, host included)"),
        Register("status", [Field("error", 1, Access.R, "sticky: an AXI response was SLVERR "
                                  "or DECERR (always 0 with block-RAM DRAM)"),
                            Field("busy", 1, Access.R, "AXI: accepted writes not yet "
                                  "acknowledged, or reads in flight; wait for 0 before "
                                  "reaching the memory another way (always 0 with block-RAM "
                                  "DRAM)")],
                 "DRAM port health"),
        _counter("read_bursts", "AXI read transactions (AR) issued (0 with block-RAM DRAM)"),
        _counter("write_bursts", "AXI write transactions (AW) issued (0 with block-RAM DRAM)"),
    ], "traffic at the DRAM port")
    level_bits = params.queue_depth.bit_length()
    queue = Block("queue", [
        Register("config", [Field("depth", 16, Access.R, "entries the queue holds",
                                  const=params.queue_depth)], "queue build parameters"),
        Register("control", [Field("barrier", 1, Access.W, "write 1: enqueue a barrier (the "
                                   "entries behind it wait until every core is idle)"),
                             Field("flush", 1, Access.W, "write 1: begin a new queued run: "
                                   "drop every waiting entry, clear halted, overflow and "
                                   "dropped; each core's next queued program starts its "
                                   "counters from 0 (running cores finish their programs)")],
                 "barriers and flush"),
        Register("status", [Field("idle", 1, Access.R, "nothing waiting and no queued "
                                  "program running"),
                            Field("halted", 1, Access.R, "sticky: a queued program stopped "
                                  "with an error; nothing more starts until flush"),
                            Field("overflow", 1, Access.R, "sticky: a queued program reported "
                                  "overflow (until flush)"),
                            Field("dropped", 1, Access.R, "sticky: an entry was written while "
                                  "the queue was full and is lost (until flush)"),
                            Field("level", level_bits, Access.R, "entries waiting")],
                 "queue state"),
        Register("irq", [Field("pending", 1, Access.W1C, "set when the queue becomes idle or "
                               "halts; write 1 to clear"),
                         Field("enable", 1, Access.RW, "drive the SoC's irq while pending")],
                 "queue interrupt"),
    ], "the program queue: runs programs on cores in order, with barriers, without the host")
    core = Block("core", [
        Register("control", [Field("start", 1, Access.W, "write 1: run the program at "
                                   "core[i].program (ignored while busy)")], "start a core"),
        Register("program", [Field("address", aw, Access.RW, "word address of the first "
                                   "descriptor")], "descriptor program address"),
        Register("status", [Field("busy", 1, Access.R, "running"),
                            Field("done", 1, Access.R, "the program ended (END or error); "
                                  "cleared by start"),
                            Field("overflow", 1, Access.R, "a WG of this run wrote a "
                                  "non-finite gradient (0 if the core does not report it)")],
                 "run state"),
        Register("error", [Field("code", 8, Access.R, "0: none; otherwise the core's error code")],
                 "why the program stopped"),
        Register("error_pc", [Field("address", aw, Access.R, "word address of the failing "
                                    "descriptor")], "where the program stopped"),
        Register("irq", [Field("pending", 1, Access.W1C, "set when the core finishes; write 1 to clear"),
                         Field("enable", 1, Access.RW, "drive the SoC's irq while pending")],
                 "completion interrupt"),
        *(_counter(name, desc) for name, desc in {**SOC_COUNTERS, **CORE_COUNTERS}.items()),
        Register("enqueue", [Field("address", aw, Access.W, "write: enqueue the program at this "
                                   "word address for this core")], "queue a program"),
    ], "one per core: control, status, performance counters of the last run (cleared by "
        "start; in a queued run they add up every program the queue ran on the core since "
        "queue.control.flush)", count=params.cores,
        stride=CORE_STRIDE)
    return (MemoryMap("trident")
            .add(0x0000, glob)
            .add(0x0040, dram)
            .add(QUEUE_BASE, queue)
            .add(CORE_BASE, core))


def regmap_from_global(read_word) -> tuple:
    """Rebuild the map of a running SoC from its global block.

    Parameters
    ----------
    read_word : callable
        ``read_word(byte_address) -> int``, a CSR read.

    Returns
    -------
    (SoCParams, MemoryMap)
    """
    probe = build_regmap()
    magic = read_word(probe.locate("global.id").address)
    if magic != MAGIC:
        raise ConnectionError(f"global.id reads {magic:#010x}, not {MAGIC:#010x} ('TRID'): "
                              f"no Trident SoC on this transport (wrong port, baud rate or "
                              f"bitstream?)")
    version = probe.locate("global.version").register.unpack(
        read_word(probe.locate("global.version").address))
    if version["major"] != VERSION[0]:
        raise ConnectionError(f"register map version {version['major']}.{version['minor']} "
                              f"on the device, {VERSION[0]}.{VERSION[1]} in this driver: "
                              f"rebuild the bitstream or update the driver")
    build = probe.locate("global.build").register.unpack(
        read_word(probe.locate("global.build").address))
    words = read_word(probe.locate("global.dram_words").address)
    depth = probe.locate("queue.config").register.unpack(
        read_word(probe.locate("queue.config").address))["depth"]
    if version["minor"] < 1 or not depth:
        raise ConnectionError(f"register map version {version['major']}.{version['minor']} "
                              f"on the device has no program queue (this driver needs "
                              f"{VERSION[0]}.{VERSION[1]}): rebuild the bitstream")
    params = SoCParams(cores=build["cores"], addr_width=build["addr_width"], dram_words=words,
                       queue_depth=depth, axi_dram=bool(build["axi_dram"]))
    return params, build_regmap(params)
