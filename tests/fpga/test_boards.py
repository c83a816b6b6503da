"""Board registry and the constraint files generated from it."""
import pytest

from trident.fpga.boards import UnknownBoardError, board_names, get_board


def test_registry_lists_boards():
    names = board_names()
    assert {"ulx3s-85f", "orangecrab-85f", "kcu105"} <= set(names)
    assert get_board("ULX3S-85F").name == "ulx3s-85f"          # case-insensitive


def test_unknown_board_lists_choices():
    with pytest.raises(UnknownBoardError) as exc:
        get_board("de10-nano")
    msg = str(exc.value)
    assert "de10-nano" in msg and "ulx3s-85f" in msg and "orangecrab-85f" in msg


def test_ulx3s_facts():
    b = get_board("ulx3s-85f")
    assert b.part == "LFE5U-85F-6BG381C"
    assert b.clock.sites == ("G2",) and b.clock_hz == 25e6
    assert len(b.leds) == 8
    assert b.nextpnr_args() == ["--85k", "--package", "CABGA381", "--speed", "6"]


def test_lpf_clock_period_from_target():
    lpf = get_board("ulx3s-85f").lpf(123.5)
    assert 'LOCATE COMP "clk" SITE "G2";' in lpf
    assert 'FREQUENCY PORT "clk" 123.500 MHZ;' in lpf
    assert 'LOCATE COMP "led[7]" SITE "H3";' in lpf
    assert 'IOBUF PORT "led[0]" IO_TYPE=LVCMOS33 DRIVE=4;' in lpf


def test_orangecrab_speed8_and_inverted_leds():
    b = get_board("orangecrab-85f")
    assert b.nextpnr_args() == ["--85k", "--package", "CSFBGA285", "--speed", "8"]
    assert all(pin.invert for pin in b.leds)


def test_xdc_for_vivado_board():
    b = get_board("kcu105")
    assert not b.can_run_here
    xdc = b.xdc(200)
    assert "create_clock -name clk -period 5.000 [get_ports {clk_p}]" in xdc
    assert "set_property PACKAGE_PIN F10 [get_ports {clk_n}]" in xdc
    with pytest.raises(ValueError):
        b.nextpnr_args()


def _amaranth_pins(platform_cls, name, number):
    res = next(r for r in platform_cls.resources if r.name == name and r.number == number)
    io = res.ios[0]
    sites = tuple(io.p.names + io.n.names) if hasattr(io, "p") else tuple(io.names)
    return sites, dict(res.attrs), getattr(io, "invert", False)


@pytest.mark.parametrize("board,module,cls,clk", [
    ("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform", "clk25"),
    ("orangecrab-85f", "amaranth_boards.orangecrab_r0_2", "OrangeCrabR0_2_85FPlatform", "clk"),
    ("kcu105", "amaranth_boards.kcu105", "KCU105Platform", "clk125"),
])
def test_facts_agree_with_amaranth_boards(board, module, cls, clk):
    """Our pin facts are the ones amaranth-boards holds (read from the class, no build)."""
    platform = getattr(pytest.importorskip(module), cls)
    b = get_board(board)
    assert platform.device.upper() == b.device.upper()
    assert str(platform.speed) == b.speed
    sites, attrs, _ = _amaranth_pins(platform, clk, 0)
    assert sites == b.clock.sites
    assert attrs == dict(b.clock.attrs)
    res = next(r for r in platform.resources if r.name == clk)
    assert res.clock.frequency == b.clock_hz
    if board == "orangecrab-85f":       # one RGB LED resource with r/g/b subsignals
        rgb = next(r for r in platform.resources if r.name == "rgb_led")
        sites = [sub.ios[0].names[0] for sub in rgb.ios if hasattr(sub, "ios")]
        assert tuple(sites) == tuple(p.sites[0] for p in b.leds)
    else:
        for i, pin in enumerate(b.leds):
            sites, attrs, invert = _amaranth_pins(platform, "led", i)
            assert sites == pin.sites and attrs == dict(pin.attrs) and invert == pin.invert
