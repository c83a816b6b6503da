"""End to end: train the ANN, fine-tune, convert, calibrate, evaluate; the JSON report.

:func:`run_conversion` runs, for one :class:`ConversionConfig`:

1. Phase 0: train a :class:`ConvertibleANN` with learnable clipping (or load one), fold its
   BatchNorm;
2. for each ``T`` of ``config.T``: Phase I (noisy-quantization fine-tuning of a copy at this
   ``T``), conversion, Phase II calibration, evaluation of every stage on the test set;
3. the max-norm baseline: a ReLU ANN trained the same way (same seed, epochs, BN folding),
   converted with per-layer thresholds at the 99.9th percentile of its activations.

Everything is seeded from ``config.seed`` (training order, noise masks, the calibration
subset), so a run is reproducible on one machine.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch.nn import functional as F

from .ann import ConvertibleANN
from .calibrate import CalibrationConfig, calibrate, output_gap
from .quantize import FIRE_RULES
from .snn import OFFSETS, SURROGATE_SCALES, convert, max_norm_convert

__all__ = ["ConversionConfig", "run_conversion", "train_ann", "finetune_noisy", "accuracy", "save_ann",
           "load_ann", "ANN_FORMAT"]

ANN_FORMAT = "trident-conversion-ann/1"


@dataclass
class ConversionConfig:
    """Every setting of a conversion run; see docs/conversion.md for the [code]/[abstract]/
    [ours] status of each."""

    dataset: str = "digits"
    model: str = "digits-mlp"
    T: tuple = (1, 2, 4, 8, 16, 32)
    seed: int = 0
    # Phase 0: ANN training
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    theta_init: float = 5.0
    theta_lr: float | None = None
    # Phase I: noisy quantization fine-tuning
    noise_p: float = 0.1
    finetune_epochs: int = 20
    finetune_lr: float = 1e-4
    finetune_theta_lr: float = 1e-2
    finetune_T: int | None = None
    # conversion
    offset: str = "init"
    fire: str = "strict"
    alpha_init: float = 2.5
    detach_reset: bool = True
    surrogate_scale: str = "threshold"
    # Phase II: calibration
    calib_samples: int = 256
    calib_val_samples: int = 128
    calib_steps: str = "aba"
    calib_order: str = "step"
    calib_epochs: int = 30
    calib_batch: int = 32
    calib_lr: float = 1e-3
    calib_alpha_lr: float = 1e-2
    calib_weight_decay: float = 0.0
    calib_patience: int = 5
    calib_temperature: float = 4.0
    calib_granularity: str = "neuron"
    calib_keep_best: bool = True
    # baseline
    baseline: bool = True
    baseline_percentile: float = 99.9
    # files
    ann: str | None = None
    save_ann: str | None = None
    report: str | None = None

    def __post_init__(self):
        self.T = tuple(self.T)
        if not self.T or any(int(t) != t or t < 1 for t in self.T):
            raise ValueError(f"T must be a non-empty list of positive integers, got {self.T}")
        self.T = tuple(int(t) for t in self.T)
        if self.finetune_T is not None and (int(self.finetune_T) != self.finetune_T or self.finetune_T < 1):
            raise ValueError(f"finetune_T must be a positive integer, got {self.finetune_T}")
        if self.offset not in OFFSETS:
            raise ValueError(f"unknown offset {self.offset!r}; valid choices: {', '.join(OFFSETS)}")
        if self.fire not in FIRE_RULES:
            raise ValueError(f"unknown fire rule {self.fire!r}; valid choices: {', '.join(FIRE_RULES)}")
        if self.surrogate_scale not in SURROGATE_SCALES:
            raise ValueError(f"unknown surrogate scale {self.surrogate_scale!r}; valid choices: "
                             f"{', '.join(SURROGATE_SCALES)}")
        if not 0 <= self.noise_p <= 1:
            raise ValueError(f"noise_p must be in [0, 1], got {self.noise_p}")
        for name in ("epochs", "finetune_epochs", "calib_val_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size < 1 or self.calib_samples < 1:
            raise ValueError("batch_size and calib_samples must be >= 1")
        if not 0 < self.baseline_percentile <= 100:
            raise ValueError(f"baseline_percentile must be in (0, 100], got {self.baseline_percentile}")
        if not self.theta_init > 0 or not self.lr > 0 or not self.finetune_lr > 0 or not self.finetune_theta_lr > 0:
            raise ValueError("theta_init, lr, finetune_lr and finetune_theta_lr must be > 0")
        if self.theta_lr is not None and not self.theta_lr > 0:
            raise ValueError(f"theta_lr must be > 0, got {self.theta_lr}")
        self.calibration()  # validates the Phase II fields

    def calibration(self) -> CalibrationConfig:
        return CalibrationConfig(steps=self.calib_steps, order=self.calib_order, epochs=self.calib_epochs,
                                 batch_size=self.calib_batch, lr=self.calib_lr, alpha_lr=self.calib_alpha_lr,
                                 weight_decay=self.calib_weight_decay, patience=self.calib_patience,
                                 temperature=self.calib_temperature, granularity=self.calib_granularity,
                                 keep_best=self.calib_keep_best)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["T"] = list(self.T)
        return d


# -- training and evaluation --------------------------------------------------------------
def train_ann(model: ConvertibleANN, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float = 1e-3,
              batch_size: int = 64, weight_decay: float = 0.0, generator: torch.Generator | None = None,
              theta_lr: float | None = None) -> list[float]:
    """Adam on cross-entropy, shuffled mini-batches; returns the mean loss of each epoch.
    ``weight_decay`` (L2) applies to weights only, not to biases, BN or ``θ``; the clipping
    levels ``θ`` learn at ``theta_lr`` (default ``lr``)."""
    thetas = [a.theta for a in model.activations()]
    named = [(n, p) for n, p in model.named_parameters() if all(p is not t for t in thetas)]
    decay = [p for n, p in named if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in named if not (n.endswith("weight") and p.dim() > 1)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if model.activation_mode != "relu":
        groups.append({"params": thetas, "weight_decay": 0.0, "lr": lr if theta_lr is None else theta_lr})
    optimizer = torch.optim.Adam(groups, lr=lr)
    model.train()
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    model.eval()
    return losses


def finetune_noisy(ann: ConvertibleANN, x: torch.Tensor, y: torch.Tensor, T: int, p: float = 0.1,
                   epochs: int = 20, lr: float = 1e-4, batch_size: int = 64, weight_decay: float = 0.0,
                   fire: str = "strict", generator: torch.Generator | None = None,
                   theta_lr: float | None = 1e-2) -> ConvertibleANN:
    """Phase I on a copy: switch every activation to noisy ``T``-level quantization and train.
    The copy is returned in ``eval()`` mode, i.e. as the exact ``T``-level quantizer."""
    if ann.has_batchnorm():
        raise ValueError("fold BatchNorm before Phase I (ConvertibleANN.fold_batchnorm())")
    tuned = copy.deepcopy(ann).set_activation(mode="quant", T=T, p=p, fire=fire)
    if epochs:
        state = torch.random.get_rng_state()
        if generator is not None:  # the noise masks come from torch's global generator
            torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=generator)))
        train_ann(tuned, x, y, epochs, lr, batch_size, weight_decay, generator, theta_lr)
        torch.random.set_rng_state(state)
    return tuned.eval()


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512, **kwargs) -> float:
    """Top-1 accuracy of a model returning logits (ANN or SNN; ``kwargs`` go to forward)."""
    was_training = model.training
    model.eval()
    correct = sum((model(x[i:i + batch_size], **kwargs).argmax(1) == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    model.train(was_training)
    return correct / len(x)


# -- saving -------------------------------------------------------------------------------
def save_ann(model: ConvertibleANN, path) -> None:
    """Save an ANN (architecture, activation mode, whether BN is folded, weights)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": ANN_FORMAT, "architecture": model.architecture, "input_shape": list(model.input_shape),
                "classes": model.classes, "activation": model.activation_mode,
                "folded": not model.has_batchnorm(),
                "bias": model.head.bias is not None, "state_dict": model.state_dict()}, path)


def load_ann(path) -> ConvertibleANN:
    """Load an ANN written by :func:`save_ann`; ``ValueError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ANN file {str(path)!r} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise ValueError(f"cannot read ANN file {str(path)!r}: {exc}") from None
    if not isinstance(blob, dict) or blob.get("format") != ANN_FORMAT:
        raise ValueError(f"{str(path)!r} is not a Trident conversion ANN (format {ANN_FORMAT})")
    mode = blob["activation"]
    model = ConvertibleANN(blob["architecture"], blob["input_shape"], blob["classes"],
                           activation="relu" if mode == "relu" else "clip", bias=blob["bias"])
    if blob["folded"]:
        model.eval().fold_batchnorm()
        for index, layer in enumerate(model.body):  # biases exactly where the file has them
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)) and layer.bias is None \
                    and f"body.{index}.bias" in blob["state_dict"]:
                layer.bias = torch.nn.Parameter(torch.zeros(layer.weight.shape[0]))
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"ANN file {str(path)!r} does not match its architecture: {exc}") from None
    if mode == "quant":
        model.set_activation(mode="clip")
    return model.eval()


# -- the whole run ------------------------------------------------------------------------
#: Datasets conversion can use: static images (the temporal ones hold spike frames already).
STATIC_DATASETS = ("digits",)


def _load_data(config: ConversionConfig):
    from ..data import load_dataset

    if config.dataset not in STATIC_DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r} for conversion; valid choices: "
                         f"{', '.join(STATIC_DATASETS)} (conversion needs static images)")
    ds = load_dataset(config.dataset, T=1)
    if ds.temporal:
        raise ValueError(f"dataset {config.dataset!r} is temporal; conversion needs static images")
    return ds


def _pct(v: float) -> float:
    return round(100.0 * v, 2)


def run_conversion(config: ConversionConfig, progress: bool = False, log=print) -> dict:
    """Run the whole pipeline for ``config`` and return the report (also written to
    ``config.report`` when set).  ``progress`` prints one line per stage through ``log``.

    Raises ``ValueError`` for bad input (unknown dataset or model, an ANN file that does not
    fit, ...)."""
    say = log if progress else (lambda *_: None)
    start = time.perf_counter()
    ds = _load_data(config)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    n_cal, n_val = config.calib_samples, config.calib_val_samples
    if n_cal + n_val > len(x_train):
        raise ValueError(f"calibration needs {n_cal} + {n_val} samples, the training set has {len(x_train)}")
    perm = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(config.seed))
    x_cal = x_train[perm[:n_cal]]
    x_val = x_train[perm[n_cal:n_cal + n_val]] if n_val else None

    timings = {}
    t0 = time.perf_counter()
    if config.ann:
        ann = load_ann(config.ann)
        if ann.activation_mode == "relu":
            raise ValueError("dual-phase conversion needs an ANN with clip activations (this one is ReLU)")
        if x_train[0].numel() != math.prod(ann.input_shape):
            raise ValueError(f"ANN input {ann.input_shape} does not fit {config.dataset!r} samples "
                             f"{tuple(ds.input_shape)}")
        if ann.classes != ds.n_classes:
            raise ValueError(f"ANN has {ann.classes} classes, dataset {config.dataset!r} has {ds.n_classes}")
        ann_source = str(config.ann)
    else:
        torch.manual_seed(config.seed)
        ann = ConvertibleANN(config.model, ds.input_shape, ds.n_classes, "clip", config.theta_init)
        train_ann(ann, x_train, y_train, config.epochs, config.lr, config.batch_size, config.weight_decay,
                  torch.Generator().manual_seed(config.seed + 1), config.theta_lr)
        ann_source = "trained"
    ann.eval()
    ann_acc_bn = accuracy(ann, x_test, y_test)
    bn_check = None
    if ann.has_batchnorm():
        before = ann(x_test)
        ann.fold_batchnorm()
        bn_check = (ann(x_test) - before).abs().max().item()
    if config.save_ann:
        save_ann(ann, config.save_ann)
    timings["phase0_s"] = time.perf_counter() - t0
    ann_acc = accuracy(ann, x_test, y_test)
    say(f"ANN {ann.architecture} (clip): {_pct(ann_acc)} % test, θ = {', '.join(f'{t:.3g}' for t in ann.thetas())}")

    baseline_ann, baseline_acc = None, None
    if config.baseline:
        t0 = time.perf_counter()
        torch.manual_seed(config.seed)
        baseline_ann = ConvertibleANN(ann.architecture, ann.input_shape, ann.classes, "relu")
        train_ann(baseline_ann, x_train, y_train, config.epochs, config.lr, config.batch_size,
                  config.weight_decay, torch.Generator().manual_seed(config.seed + 1))
        baseline_ann.eval().fold_batchnorm()
        timings["baseline_train_s"] = time.perf_counter() - t0
        baseline_acc = accuracy(baseline_ann, x_test, y_test)
        say(f"ANN {ann.architecture} (ReLU, for max-norm): {_pct(baseline_acc)} % test")

    calib_cfg = config.calibration()
    results, tuned_cache = [], {}
    for T in config.T:
        t0 = time.perf_counter()
        ft_T = config.finetune_T or T
        if ft_T not in tuned_cache:
            tuned_cache[ft_T] = finetune_noisy(
                ann, x_train, y_train, ft_T, config.noise_p, config.finetune_epochs, config.finetune_lr,
                config.batch_size, config.weight_decay, config.fire,
                torch.Generator().manual_seed(config.seed + 2 + ft_T), config.finetune_theta_lr)
        tuned = copy.deepcopy(tuned_cache[ft_T]).set_activation(T=T)
        row = {"T": T, "finetune_T": ft_T, "quantized_ann": accuracy(tuned, x_test, y_test)}
        snn = convert(tuned, T, offset=config.offset, fire=config.fire, alpha_init=config.alpha_init,
                      detach_reset=config.detach_reset, surrogate_scale=config.surrogate_scale)
        row["converted"] = accuracy(snn, x_test, y_test)
        row["gap_before"] = output_gap(snn, tuned, x_test, T)
        row["calibration"] = calibrate(snn, tuned, x_cal, T, calib_cfg, x_val,
                                       torch.Generator().manual_seed(config.seed + 100 + T))
        row["dual_phase"] = accuracy(snn, x_test, y_test)
        row["gap_after"] = output_gap(snn, tuned, x_test, T)
        row["thetas"] = tuned.thetas()
        if baseline_ann is not None:
            base = max_norm_convert(baseline_ann, x_train, T, config.baseline_percentile, config.fire)
            row["max_norm"] = accuracy(base, x_test, y_test)
            row["max_norm_thresholds"] = base.thresholds()
        row["time_s"] = time.perf_counter() - t0
        results.append(row)
        say(f"T={T:>3}: quantized ANN {_pct(row['quantized_ann'])} %, converted {_pct(row['converted'])} %, "
            f"dual-phase {_pct(row['dual_phase'])} %"
            + (f", max-norm {_pct(row['max_norm'])} %" if "max_norm" in row else "")
            + f"  ({row['time_s']:.1f} s)")

    report = {
        "method": "dual-phase ANN-to-SNN conversion (ALGORITHMS.md section 4)",
        "config": config.as_dict(),
        "dataset": {"name": config.dataset, "train": len(x_train), "test": len(x_test), "calibration": n_cal,
                    "calibration_validation": n_val, "input_shape": list(ds.input_shape)},
        "architecture": ann.architecture,
        "ann_source": ann_source,
        "ann_accuracy": ann_acc,
        "ann_accuracy_before_bn_fold": ann_acc_bn,
        "bn_fold_max_abs_diff": bn_check,
        "ann_thetas": ann.thetas(),
        "baseline_ann_accuracy": baseline_acc,
        "baseline_normalisation": (f"{config.baseline_percentile:g}th percentile of the positive activations "
                                   "on the training set") if baseline_ann is not None else None,
        "results": results,
        "timings": {**timings, "total_s": time.perf_counter() - start},
        "torch": torch.__version__,
    }
    if config.report:
        path = Path(config.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def config_fields() -> list[str]:
    return [f.name for f in fields(ConversionConfig)]
