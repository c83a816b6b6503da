"""Amaranth -> Verilog generation, cached per configuration.

The cache key hashes the component class (module and name), its constructor
parameters, the Amaranth version, the Yosys that Amaranth uses, and the source of every
Python file in the class's package directory and under ``rtl/`` (so an edit of any RTL
the component may instantiate invalidates it).
Files go to ``$TRIDENT_VERILOG_CACHE`` or ``<repo>/build/verilog/`` and are written
atomically, so parallel test workers may generate the same configuration at once.
"""

import hashlib
import inspect
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import amaranth

__all__ = ["repo_root", "build_root", "verilog_cache_dir", "config_key", "VerilogModule",
           "generate_verilog", "toplevel_name", "rtlil_to_verilog"]


def repo_root():
    """The repository root (this file lives in ``<repo>/verify/``)."""
    return Path(__file__).resolve().parents[1]


def build_root():
    """``$TRIDENT_BUILD_DIR`` or ``<repo>/build``."""
    env = os.environ.get("TRIDENT_BUILD_DIR")
    return Path(env).resolve() if env else repo_root() / "build"


def verilog_cache_dir():
    """``$TRIDENT_VERILOG_CACHE`` or ``<build>/verilog``."""
    env = os.environ.get("TRIDENT_VERILOG_CACHE")
    return Path(env).resolve() if env else build_root() / "verilog"


_SOURCE_HASHES = {}


def _source_hash(cls):
    """Hash of the class's package and of the whole ``rtl/`` tree: a component depends on
    the units it instantiates from other packages (an engine on ``rtl/fp16``)."""
    dirs = sorted({Path(inspect.getfile(cls)).resolve().parent, repo_root() / "rtl"})
    key = tuple(map(str, dirs))
    if key not in _SOURCE_HASHES:
        h = hashlib.sha256()
        files = sorted({f for d in dirs for f in d.rglob("*.py")})
        root = repo_root()
        for f in files:
            h.update(str(f.relative_to(root) if f.is_relative_to(root) else f).encode())
            h.update(f.read_bytes())
        _SOURCE_HASHES[key] = h.hexdigest()
    return _SOURCE_HASHES[key]


def _yosys_version():
    try:
        from amaranth._toolchain.yosys import find_yosys
        return ".".join(map(str, find_yosys(lambda ver: True).version()))
    except Exception:   # pragma: no cover - only informational
        return "unknown"


def config_key(cls, params, optimize=True):
    """Hex digest identifying one generated configuration."""
    h = hashlib.sha256()
    h.update(b"opt" if optimize else b"plain")
    h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    h.update(repr(sorted(params.items())).encode())
    h.update(amaranth.__version__.encode())
    h.update(os.environ.get("AMARANTH_USE_YOSYS", "builtin").encode())
    h.update(_yosys_version().encode())
    h.update(_source_hash(cls).encode())
    h.update(Path(__file__).read_bytes())          # how the Verilog is generated
    return h.hexdigest()[:16]


def toplevel_name(cls):
    """Verilog module name of a generated class: its name in lower case."""
    return cls.__name__.lower()


@dataclass(frozen=True)
class VerilogModule:
    """A generated Verilog file.

    Attributes
    ----------
    path : Path
        The ``.v`` file.
    toplevel : str
        Its top-level module name.
    key : str
        Configuration hash (also used to name simulator build directories).
    cls : type
        The Amaranth component class.
    params : dict
        The constructor parameters.
    """
    path: Path
    toplevel: str
    key: str
    cls: type
    params: dict

    def component(self):
        """A fresh instance of the component (for its signature and payload layouts)."""
        dut = self.cls(**self.params)
        dut._MustUse__silence = True
        return dut


#: A ``$meminit_v2`` cell of RTLIL whose data are all zeros.
_ZERO_MEMINIT = re.compile(r"^  cell \$meminit_v2 \S+\n(?:    .*\n)*?    connect \\DATA \d+'0+\n"
                           r"(?:    .*\n)*?  end\n", re.MULTILINE)
#: A memory's declaration in Yosys' Verilog: width, name (escaped names end in a space), depth.
_MEMORY = re.compile(r"^  reg (?:\[(\d+):0\] )?(\S+ ?) \[(\d+):0\];\n", re.MULTILINE)


def rtlil_to_verilog(rtlil_text, passes, *, yosys, write_options="-norename"):
    """Amaranth's RTLIL → Verilog through a full Yosys (``yosys``: YoWASP's; Amaranth's
    built-in one lacks passes such as ``chformal`` and ``pmuxtree``): ``read_rtlil``, then
    ``passes`` (a Yosys script), then ``write_verilog write_options``.

    Raises
    ------
    RuntimeError
        Yosys failed; the message carries its output.
    """
    with tempfile.TemporaryDirectory(prefix="trident-verilog-") as tmp:
        work = Path(tmp)
        (work / "design.il").write_text(rtlil_text)
        script = f"read_rtlil design.il; {passes}; write_verilog {write_options} design.v"
        done = subprocess.run([yosys, "-q", "-p", script], cwd=work, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"Yosys could not write the design's Verilog "
                               f"({passes}):\n{done.stderr}{done.stdout}")
        return (work / "design.v").read_text()


def _zero_memories_by_loop(text):
    """``text`` (RTLIL) without its all-zero memory initialisers, and a function that gives
    the Verilog of it a zero-initialising loop for every memory left without an initialiser.

    Amaranth writes every memory's initial value word by word; for a large memory (the
    simulated SoC's block-RAM DRAM: 2^21 words) Yosys and the simulators' compilers take
    minutes over those words.  A loop says the same in two lines."""
    stripped = _ZERO_MEMINIT.sub("", text)

    def restore(verilog):
        out, pos = [], 0
        for k, decl in enumerate(_MEMORY.finditer(verilog)):
            out.append(verilog[pos:decl.end()])
            pos = decl.end()
            width, name, last = int(decl[1] or 0) + 1, decl[2], decl[3]
            if f"    {name}[0] = " not in verilog:          # else it keeps a non-zero initialiser
                var = f"\\trident_zero${k} "
                out.append(f"  integer {var};\n  initial for ({var}= 0; {var}<= {last}; {var}= {var}+ 1) "
                           f"{name}[{var}] = {width}'d0;\n")
        out.append(verilog[pos:])
        return "".join(out)
    return stripped, restore


def _optimized_verilog(component, name, ports=None):
    """Verilog after Yosys ``opt``: same logic, ~10x fewer nets (Icarus runs ~2x faster);
    memories that start at zero are zeroed by a loop (:func:`_zero_memories_by_loop`)."""
    from amaranth._toolchain.yosys import find_yosys
    from amaranth.back import rtlil

    text, restore = _zero_memories_by_loop(rtlil.convert(component, name=name, emit_src=False,
                                                         ports=ports))
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = "\n".join([f"read_rtlil <<rtlil\n{text}\nrtlil", "proc", "flatten", "opt",
                         "opt_clean -purge", "write_verilog -noattr -norename"])
    return restore(yosys.run(["-q", "-"], script, ignore_warnings=True))


def _with_clock(component):
    """A purely combinational component plus a ``sync`` domain, and its port map with
    ``clk``/``rst`` added (testbenches start a clock and a reset on them; they drive
    nothing inside).  Returns ``(elaboratable, ports)`` for ``convert(..., ports=)``."""
    from amaranth.hdl import ClockDomain, Module, Value
    from amaranth.hdl._ir import PortDirection
    from amaranth.lib import wiring

    m = Module()
    m.submodules.dut = component
    cd = ClockDomain("sync")
    m.domains += cd
    ports = {}
    for path, member, value in component.signature.flatten(component):
        value = value.as_value() if hasattr(value, "as_value") else Value.cast(value)
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports["__".join(map(str, path))] = (value, direction)
    ports["clk"] = (cd.clk, PortDirection.Input)
    ports["rst"] = (cd.rst, PortDirection.Input)
    return m, ports


def _has_clock(text):
    return any(line.strip().startswith("input clk") for line in text.splitlines())


def optimize_requested():
    """``$TRIDENT_VERILOG_OPT`` (default 1): simplify the netlist with Yosys ``opt``."""
    return os.environ.get("TRIDENT_VERILOG_OPT", "1").lower() not in ("0", "false", "no")


def generate_verilog(cls, params=None, *, cache_dir=None, force=False, optimize=None):
    """Generate (or reuse) the Verilog of ``cls(**params)``.

    Parameters
    ----------
    cls : type
        A ``wiring.Component`` subclass whose signature describes all its ports.
    params : dict, optional
        Constructor keyword arguments (must have a stable ``repr``).
    cache_dir : path, optional
        Override of :func:`verilog_cache_dir`.
    force : bool
        Regenerate even if cached.
    optimize : bool, optional
        Run Yosys ``proc; opt; opt_clean`` on Amaranth's netlist before writing Verilog
        (default: ``$TRIDENT_VERILOG_OPT``, on).  Off gives exactly what
        ``amaranth.back.verilog.convert`` writes.

    Returns
    -------
    VerilogModule
    """
    from amaranth.back import verilog

    params = dict(params or {})
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    optimize = optimize_requested() if optimize is None else bool(optimize)
    key = config_key(cls, params, optimize)
    top = toplevel_name(cls)
    directory = Path(cache_dir) if cache_dir else verilog_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cls.__name__}-{key}.v"
    if force or not path.exists():
        def convert(component, ports=None):
            if optimize:
                return _optimized_verilog(component, top, ports)
            return verilog.convert(component, name=top, emit_src=False, ports=ports)
        text = convert(cls(**params))
        if not _has_clock(text):
            text = convert(*_with_clock(cls(**params)))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        meta = {"class": f"{cls.__module__}.{cls.__qualname__}", "params": repr(params),
                "amaranth": amaranth.__version__, "toplevel": top, "key": key,
                "optimized": optimize}
        meta_tmp = path.with_name(f".{path.stem}.{os.getpid()}.json.tmp")
        meta_tmp.write_text(json.dumps(meta, indent=1))
        os.replace(meta_tmp, path.with_suffix(".json"))
    return VerilogModule(path=path, toplevel=top, key=key, cls=cls, params=params)
