"""Build configurations: what goes onto the board.

A :class:`Config` makes the *core* that :class:`trident.fpga.harness.BoardTop` places on a
board (an elaboratable with a ``leds`` output in the ``sync`` domain), from named integer
parameters with defaults (``stages`` for the FP16 units). Register more with
:func:`register_config` (the SoC configurations ``1core``/``20core``/``fedworker`` belong
here once the SoC exists).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from amaranth.hdl import Elaboratable

from .harness import Blinky, NullUnit, UnitHarness

__all__ = ["Config", "register_config", "get_config", "config_names", "UnknownConfigError",
           "ConfigUnavailableError", "parse_params", "FP16_UNITS"]


class UnknownConfigError(KeyError):
    def __init__(self, name):
        self.name = name
        super().__init__(name)

    def __str__(self):
        return f"unknown config {self.name!r}; valid configs: {', '.join(config_names())}"


class ConfigUnavailableError(RuntimeError):
    """The configuration exists but its RTL cannot be built (not written yet, wrong API)."""


@dataclass(frozen=True)
class Config:
    name: str
    description: str
    factory: Callable[..., Elaboratable]          # factory(n_leds=..., **params) -> core
    # name -> default value (int), or None for a default only known from the RTL, which
    # ``lazy_defaults()`` supplies (e.g. the unit's own DEFAULT_STAGES)
    params: dict = field(default_factory=dict)
    param_help: dict = field(default_factory=dict)
    lazy_defaults: Callable[[], dict] | None = None
    # submodules of the core measured on their own (yosys keeps their hierarchy in an extra
    # synthesis pass and the report gets their cell counts): "fp16_add" -> top.core.fp16_add
    units: tuple[str, ...] = ()

    def resolve_params(self, overrides: dict | None = None) -> dict:
        params = dict(self.params)
        for key, value in (overrides or {}).items():
            if key not in self.params:
                valid = ", ".join(sorted(self.params)) or "none"
                raise ValueError(f"config {self.name!r} has no parameter {key!r} "
                                 f"(parameters: {valid})")
            params[key] = None if value is None else int(value)
        missing = [k for k, v in params.items() if v is None]
        if missing and self.lazy_defaults:          # else None reaches the factory as is
            lazy = self.lazy_defaults()
            for k in missing:
                params[k] = int(lazy[k])
        return params

    def make_core(self, n_leds: int, params: dict | None = None) -> Elaboratable:
        return self.factory(n_leds=n_leds, **self.resolve_params(params))


_CONFIGS: dict[str, Config] = {}


def register_config(config: Config) -> Config:
    if config.name in _CONFIGS and _CONFIGS[config.name] != config:
        raise ValueError(f"config {config.name!r} is already registered")
    _CONFIGS[config.name] = config
    return config


def config_names() -> list[str]:
    return sorted(_CONFIGS)


def get_config(name: str) -> Config:
    try:
        return _CONFIGS[name]
    except KeyError:
        raise UnknownConfigError(name) from None


def parse_params(items: list[str] | None) -> dict:
    """``["stages=4", "x=1"]`` -> ``{"stages": 4, "x": 1}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"bad parameter {item!r}: expected NAME=VALUE")
        try:
            out[key.strip()] = int(value, 0)
        except ValueError:
            raise ValueError(f"bad parameter {item!r}: value must be an integer") from None
    return out


# ---------------------------------------------------------------------------------------
# Built-in configurations
# ---------------------------------------------------------------------------------------
register_config(Config(
    name="blinky",
    description="26-bit counter + 16-bit LFSR on the LEDs (small; proves the flow)",
    factory=lambda n_leds: Blinky(n_leds),
))

# FP16 units: config name -> (class names in trident.rtl.fp16, description)
FP16_UNITS = {
    "fp16-add": (("FPAdd",), "FP16 adder"),
    "fp16-mul": (("FPMul",), "FP16 multiplier"),
    "fp16-fma": (("FPFMA",), "FP16 fused multiply-add"),
}


def fp16_unit_class(config_name: str):
    """The unit class for an ``fp16-*`` config, from ``trident.rtl.fp16``."""
    candidates, what = FP16_UNITS[config_name]
    try:
        mod = importlib.import_module("trident.rtl.fp16")
    except ImportError as exc:
        raise ConfigUnavailableError(
            f"config {config_name!r} needs the FP16 units (trident.rtl.fp16), which cannot "
            f"be imported: {exc}") from exc
    for name in candidates:
        cls = getattr(mod, name, None)
        if cls is not None:
            return cls
    raise ConfigUnavailableError(
        f"config {config_name!r}: trident.rtl.fp16 has no {what} class "
        f"(looked for {', '.join(candidates)})")


def fp16_default_stages(config_name):
    """``{"stages": n}``: the unit's own default depth."""
    return {"stages": int(getattr(fp16_unit_class(config_name), "DEFAULT_STAGES", 4))}


def make_fp16_unit(config_name: str, stages: int | None):
    """The unit with ``stages`` register ranks (None: its default)."""
    cls = fp16_unit_class(config_name)
    try:
        return cls(stages=stages)
    except ValueError as exc:                        # e.g. stages out of the unit's range
        raise ValueError(f"{config_name}: {cls.__name__}(stages={stages}): {exc}") from exc


def _unit_factory(config_name):
    def factory(n_leds, stages, harness_only=0):
        unit = make_fp16_unit(config_name, stages)
        if harness_only:
            unit = NullUnit(unit)
        return UnitHarness({config_name.replace("-", "_"): unit}, n_leds)
    return factory


for _name, (_cands, _what) in FP16_UNITS.items():
    register_config(Config(
        name=_name,
        description=f"{_what} in the LFSR-in / XOR-reduce-out measurement harness",
        factory=_unit_factory(_name),
        units=(_name.replace("-", "_"),),
        params={"stages": None, "harness_only": 0},
        lazy_defaults=(lambda n=_name: fp16_default_stages(n)),
        param_help={"stages": "pipeline stages (register ranks) of the unit; default: "
                              "the unit's DEFAULT_STAGES",
                    "harness_only": "1: the harness alone, with the unit's input widths "
                                    "(to see the harness's own cost)"},
    ))


def _all_units(n_leds, stages):
    units = {name.replace("-", "_"): make_fp16_unit(name, stages) for name in FP16_UNITS}
    return UnitHarness(units, n_leds)


register_config(Config(
    name="fp16-units",
    description="the FP16 adder, multiplier and FMA together, one harness LED each",
    factory=_all_units,
    units=tuple(name.replace("-", "_") for name in FP16_UNITS),
    params={"stages": None},
    param_help={"stages": "pipeline stages of every unit (default: each unit's own)"},
))


# Configurations defined in their own modules register themselves on import.
from . import configs_core  # noqa: E402,F401
