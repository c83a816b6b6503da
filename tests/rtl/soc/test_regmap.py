"""The register map, declared once: declaration checks, walking, the CSR bank's access
modes, and the JSON / C / SVD / Markdown exports agreeing with the objects."""

import argparse
import dataclasses
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from amaranth.sim import Simulator

from trident.rtl.soc.cli import add_regmap_parser
from trident.rtl.soc.csr import Access, Block, CSRBank, Field, MemoryMap, Register
from trident.rtl.soc.export import to_c_header, to_json, to_markdown, to_svd, update_doc
from trident.rtl.soc.regmap import (CORE_BASE, CORE_COUNTERS, CORE_STRIDE, MAGIC, SoCParams, build_regmap,
                                    regmap_from_global)

PARAMS = SoCParams(cores=4, addr_width=20, dram_words=1 << 18)


def test_declaration_errors_are_clear():
    with pytest.raises(ValueError, match="width 0"):
        Field("x", 0, Access.R)
    with pytest.raises(ValueError, match="does not fit in 4 bits"):
        Field("x", 4, Access.RW, reset=16)
    with pytest.raises(ValueError, match="only read-only fields can be constants"):
        Field("x", 4, Access.RW, const=1)
    with pytest.raises(ValueError, match="more than 32"):
        Register("r", [Field("a", 20, Access.R), Field("b", 20, Access.R)])
    with pytest.raises(ValueError, match="duplicate field"):
        Register("r", [Field("a", 1, Access.R), Field("a", 1, Access.R)])
    reg = Register("r", [Field("a", 1, Access.R)])
    with pytest.raises(ValueError, match="stride 0x2 is smaller"):
        Block("b", [reg, Register("s", [Field("a", 1, Access.R)])], count=2, stride=2)
    mm = MemoryMap("m").add(0, Block("a", [reg]))
    with pytest.raises(ValueError, match="overlaps 'a'"):
        mm.add(0, Block("b", [reg]))
    with pytest.raises(ValueError, match="not word aligned"):
        mm.add(6, Block("c", [reg]))
    with pytest.raises(ValueError, match="cores = 0"):
        SoCParams(cores=0)
    with pytest.raises(KeyError, match="no register 'core\\[9\\].status'"):
        build_regmap(PARAMS).locate("core[9].status")


def test_walk_is_ordered_unique_and_strided():
    mm = build_regmap(PARAMS)
    insts = list(mm.walk())
    addrs = [i.address for i in insts]
    assert addrs == sorted(addrs) and len(set(addrs)) == len(addrs)
    assert all(a % 4 == 0 for a in addrs)
    for k in range(PARAMS.cores):
        assert mm.locate(f"core[{k}].control").address == CORE_BASE + k * CORE_STRIDE
        assert mm.locate(f"core[{k}].error_pc").address == \
            mm.locate("core[0].error_pc").address + k * CORE_STRIDE
    assert mm.locate("core[0].program").register.field("address")[0].width == PARAMS.addr_width
    reg = mm.locate("core[0].status").register
    assert reg.unpack(reg.pack(busy=1, done=1)) == {"busy": 1, "done": 1, "overflow": 0}
    assert mm.at(mm.locate("global.scratch").address).path == "global.scratch"


def test_regmap_from_global_rebuilds_the_map():
    mm = build_regmap(PARAMS)
    values = {inst.address: inst.register.reset_value for inst in mm.walk()}
    params, rebuilt = regmap_from_global(values.__getitem__)
    assert params == PARAMS
    axi = dataclasses.replace(PARAMS, axi_dram=True)
    axi_values = {inst.address: inst.register.reset_value for inst in build_regmap(axi).walk()}
    assert regmap_from_global(axi_values.__getitem__)[0] == axi
    assert [(i.path, i.address) for i in rebuilt.walk()] == [(i.path, i.address) for i in mm.walk()]
    with pytest.raises(ConnectionError, match="no Trident SoC"):
        regmap_from_global(lambda a: 0xFFFFFFFF)
    version = mm.locate("global.version").address
    older = values | {version: mm.locate("global.version").register.pack(major=1, minor=0)}
    with pytest.raises(ConnectionError, match="1.0 on the device has no program queue"):
        regmap_from_global(older.__getitem__)
    newer = values | {version: mm.locate("global.version").register.pack(major=2, minor=0)}
    with pytest.raises(ConnectionError, match="version 2.0 on the device"):
        regmap_from_global(newer.__getitem__)


def test_json_matches_the_objects():
    mm = build_regmap(PARAMS)
    doc = json.loads(to_json(mm, PARAMS))
    assert doc["magic"] == MAGIC and doc["params"]["cores"] == PARAMS.cores
    flat = {}
    for b in doc["blocks"]:
        for k in range(b["count"] or 1):
            prefix = b["name"] if b["count"] is None else f"{b['name']}[{k}]"
            for r in b["registers"]:
                flat[f"{prefix}.{r['name']}"] = (b["base"] + k * (b["stride"] or 0) + r["offset"],
                                                  [(f["name"], f["offset"], f["width"], f["access"])
                                                   for f in r["fields"]])
    assert flat == {i.path: (i.address, [(f.name, off, f.width, f.access.value)
                                         for f, off in i.register.layout()]) for i in mm.walk()}


def test_svd_parses_and_matches():
    mm = build_regmap(PARAMS)
    root = ET.fromstring(to_svd(mm, PARAMS))
    assert root.tag == "device" and root.findtext("addressUnitBits") == "8"
    flat = {}
    for p in root.iter("peripheral"):
        dim = int(p.findtext("dim") or 1)
        inc = int(p.findtext("dimIncrement") or "0", 16)
        name = p.findtext("name")
        for k in range(dim):
            pname = name.replace("[%s]", f"[{k}]").lower()
            for r in p.iter("register"):
                addr = int(p.findtext("baseAddress"), 16) + k * inc + int(r.findtext("addressOffset"), 16)
                fields = [(f.findtext("name").lower(), int(f.findtext("bitOffset")),
                           int(f.findtext("bitWidth"))) for f in r.iter("field")]
                flat[f"{pname}.{r.findtext('name').lower()}"] = (addr, fields)
    assert flat == {i.path: (i.address, [(f.name, off, f.width) for f, off in i.register.layout()])
                    for i in mm.walk()}
    w1c = [f for f in root.iter("field") if f.findtext("modifiedWriteValues") == "oneToClear"]
    assert [f.findtext("name") for f in w1c] == ["PENDING", "PENDING"]     # queue, core


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")
def test_c_header_compiles_and_matches(tmp_path):
    mm = build_regmap(PARAMS)
    (tmp_path / "trident_regmap.h").write_text(to_c_header(mm, PARAMS))
    lines = ['#include <stdio.h>', '#include "trident_regmap.h"', "int main(void) {"]
    expected = []
    for inst in mm.walk():
        block, reg = inst.block.name.upper(), inst.register.name.upper()
        if inst.index is None:
            lines.append(f'printf("%u\\n", TRIDENT_{block}_{reg});')
        else:
            lines.append(f'printf("%u\\n", TRIDENT_{block}_ADDR({inst.index}, {reg}));')
        expected.append(inst.address)
        f, off = inst.register.layout()[-1]
        lines.append(f'printf("%u\\n", TRIDENT_{block}_{reg}_{f.name.upper()}_MASK);')
        expected.append(((1 << f.width) - 1) << off)
    lines += ["return 0;", "}"]
    (tmp_path / "t.c").write_text("\n".join(lines))
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(tmp_path / "t"), str(tmp_path / "t.c")],
                   check=True)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout
    assert [int(x) for x in out.split()] == expected


def test_markdown_lists_every_field():
    mm = build_regmap(PARAMS)
    text = to_markdown(mm, PARAMS)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    per_copy = sum(len(i.register.fields) for i in mm.walk() if i.index in (None, 0))
    assert len(rows) == per_copy


def test_cli_writes_each_format(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_regmap_parser(parser.add_subparsers(dest="command"))
    for fmt in ("json", "c", "svd", "md"):
        out = tmp_path / f"map.{fmt}"
        args = parser.parse_args(["regmap", "--format", fmt, "--cores", "2", "-o", str(out)])
        assert args.handler(args) == 0 and out.stat().st_size > 500
    assert json.loads((tmp_path / "map.json").read_text())["params"]["cores"] == 2
    args = parser.parse_args(["regmap", "--cores", "0"])
    assert args.handler(args) == 2
    assert "cores = 0" in capsys.readouterr().err


def test_bank_access_modes():
    """RW storage, W pulses, W1C with a set winning over a simultaneous clear, R inputs."""
    reg_a = Register("a", [Field("rw", 8, Access.RW, reset=0x5A), Field("go", 1, Access.W),
                           Field("sticky", 2, Access.W1C), Field("hw", 4, Access.R),
                           Field("k", 4, Access.R, const=9)])
    mm = MemoryMap("t").add(0, Block("blk", [Register("pad", [Field("x", 1, Access.RW)]), reg_a]))
    bank = CSRBank(mm)
    rw, go, sticky, hw = (bank.field(f"blk.a.{n}") for n in ("rw", "go", "sticky", "hw"))
    _, go_off = reg_a.field("go")
    pulses = []

    async def bench(ctx):
        bus = bank.bus

        async def read(addr):
            ctx.set(bus.addr, addr)
            ctx.set(bus.r_stb, 1)
            await ctx.tick()
            ctx.set(bus.r_stb, 0)
            return reg_a.unpack(ctx.get(bus.r_data))

        async def write(addr, value, **also):
            ctx.set(bus.addr, addr)
            ctx.set(bus.w_data, value)
            ctx.set(bus.w_stb, 1)
            for sig, v in also.items():
                ctx.set(getattr(sticky, sig), v)
            await ctx.tick()
            ctx.set(bus.w_stb, 0)
            ctx.set(sticky.set, 0)

        ctx.set(hw.r_data, 7)
        assert await read(1) == {"rw": 0x5A, "go": 0, "sticky": 0, "hw": 7, "k": 9}
        ctx.set(sticky.set, 0b11)
        await ctx.tick()
        ctx.set(sticky.set, 0)
        await write(1, reg_a.pack(rw=0x33, go=1, sticky=0b01))
        assert await read(1) == {"rw": 0x33, "go": 0, "sticky": 0b10, "hw": 7, "k": 9}
        await write(1, reg_a.pack(rw=0x33, sticky=0b10), set=0b10)    # set wins
        assert (await read(1))["sticky"] == 0b10
        await write(0, 1)                                            # another register
        assert (await read(1))["rw"] == 0x33

    async def watch(ctx):
        async for _, _, stb, data in ctx.tick().sample(go.w_stb, go.w_data):
            if stb:
                pulses.append(data)

    sim = Simulator(bank)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run()
    assert pulses == [1, 0]      # one pulse per write of the register, with its value


def test_core_counters_match_the_core():
    """The map's per-core counters are the real core's ``counters`` fields, by name."""
    core = pytest.importorskip("trident.rtl.core.core")
    assert [name for name, _ in core.counter_layout(32)] == list(CORE_COUNTERS)


def test_docs_table_is_current(tmp_path):
    doc = Path(__file__).resolve().parents[3] / "docs" / "soc.md"
    copy = tmp_path / "soc.md"
    copy.write_text(doc.read_text())
    assert not update_doc(copy), "docs/soc.md is stale: python -m trident.rtl.soc.export docs/soc.md"
    copy.write_text("no markers")
    with pytest.raises(ValueError, match="no .* block to fill in"):
        update_doc(copy)
