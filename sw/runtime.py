"""The training runtime: one loop over any backend, with exact resume and a JSON report.

``train(config)`` loads the data, builds the network, and drives a backend (float32
autograd, or the hardware-exact FP16 kernels) through epochs of mini-batches.  Everything
that decides the outcome of a run — weights, optimiser state, the shuffling and encoding
random generators, the position inside the epoch — is saved in the checkpoint, so a run that
is interrupted and resumed ends with exactly the weights of an uninterrupted one.

Members
-------
TrainConfig
    Every setting of a run (the CLI's arguments).
TrainingError
    A run that cannot go on (NaN loss, incompatible checkpoint); says what to do.
train(config, progress=True, on_step=None) -> dict
    Runs training and returns the report (also written to ``config.report`` if set).
SequenceInputs
    Stored samples → the ``[T, N, ...]`` sequences a network takes (encoding included).
evaluate(backend, inputs, x, y, batch_size, seed) -> float
    Test accuracy of a backend, with a fixed encoding of the test set.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from trident.golden.data import get_encoder, load_dataset
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.training import Fp32Backend, HwBackend, weights_sha256

from trident.atomic import atomic_write_text

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "TrainingError", "train", "evaluate", "SequenceInputs", "PRECISIONS", "DEVICES"]

PRECISIONS = ("fp32", "fp16-hw")
#: ``golden``: the golden model in this process (fp32 or fp16-hw kernels); ``golden-soc``: the
#: driver on the SoC's register/memory model running the golden kernels; ``sim``: the SoC RTL in
#: a simulator, through the driver.
DEVICES = ("golden", "golden-soc", "sim")
CHECKPOINT_NAME = "checkpoint.pt"


class TrainingError(RuntimeError):
    pass


@dataclass
class TrainConfig:
    """Settings of one training run; ``asdict`` of it is stored in the report."""

    dataset: str = "digits"
    model: str = "mlp"
    neuron: str = "lif"
    surrogate: str = "sigmoid"
    surrogate_alpha: float | None = None
    tau: float = 2.0
    v_threshold: float = 1.0
    reset: str = "hard"
    decay_input: bool = True
    detach_reset: bool = False
    T: int = 8
    encoding: str | None = None
    epochs: int = 40
    batch_size: int = 32
    lr: float = 0.2
    optimizer: str = "sgd"
    momentum: float = 0.9
    k_lr_scale: float = 0.05
    loss_scale: float = 1024.0
    seed: int = 0
    precision: str = "fp32"
    device: str = "golden"
    simulator: str = "verilator"
    cores: int = 1
    dram: str = "bram"
    data_root: str | None = None
    train_limit: int | None = None
    threads: int | None = None
    checkpoint: str | None = None
    checkpoint_every: int = 0
    resume: bool = False
    report: str | None = None
    plot: str | None = None

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid choices: {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; valid choices: {', '.join(DEVICES)}")
        if self.device != "golden" and self.precision != "fp16-hw":
            raise ValueError(f"--device {self.device} computes with the FP16 contract: add --precision fp16-hw "
                             f"(and --detach-reset)")
        if self.cores < 1 or (self.cores > 1 and self.device == "golden"):
            raise ValueError(f"--cores {self.cores}: cores are a device's (--device golden-soc or sim), at least 1")
        if self.simulator not in ("verilator", "icarus"):
            raise ValueError(f"unknown simulator {self.simulator!r}; valid choices: verilator, icarus")
        if self.dram not in ("bram", "axi"):
            raise ValueError(f"unknown DRAM {self.dram!r}; valid choices: bram, axi")
        if self.dram != "bram" and self.device != "sim":
            raise ValueError(f"--dram {self.dram} is the simulated SoC's DRAM port: use it with --device sim")
        if self.reset not in ("hard", "soft"):
            raise ValueError(f"unknown reset {self.reset!r}; valid choices: hard, soft")
        for name in ("T", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.T > 1024:
            raise ValueError(f"T={self.T} time steps is more than this runtime supports (1024)")
        if self.resume and not self.checkpoint:
            raise ValueError("--resume needs --checkpoint DIR (the run directory to resume from)")
        if self.checkpoint_every < 0:
            raise ValueError("checkpoint_every must be >= 0")

    def neuron_config(self) -> NeuronConfig:
        return NeuronConfig(kind=self.neuron, tau=self.tau, decay_input=self.decay_input,
                            v_threshold=self.v_threshold,
                            v_reset=0.0 if self.reset == "hard" else None,
                            detach_reset=self.detach_reset, surrogate=self.surrogate,
                            surrogate_alpha=self.surrogate_alpha)

    def outcome_fields(self) -> dict:
        """The settings that decide the result (a resumed run must agree on all of them)."""
        ignored = {"checkpoint", "checkpoint_every", "resume", "report", "plot", "epochs", "threads", "simulator",
                   "cores", "dram"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ignored}


def _make_backend(config: TrainConfig, model: SpikingNetwork, direct_input: bool, spike_input: bool):
    if config.precision == "fp32":
        return Fp32Backend(model, config.optimizer, config.lr, config.momentum, config.k_lr_scale)
    if config.optimizer != "sgd":
        raise ValueError("--precision fp16-hw trains with the device's SGD; use --optimizer sgd")
    if not config.detach_reset:
        raise ValueError("--precision fp16-hw implements the detached reset path (docs/numerics.md §4.1); "
                         "add --detach-reset (and use it in the fp32 run you compare with)")
    if config.device == "golden":
        return HwBackend(model, lr=config.lr, momentum=config.momentum, loss_scale=config.loss_scale,
                         spike_input=spike_input)
    from .device_backend import DeviceBackend, core_kwargs_for, open_device
    return DeviceBackend(model, lambda words: open_device(config.device, words, cores=config.cores,
                                                          simulator=config.simulator,
                                                          core_kwargs=core_kwargs_for(model),
                                                          dram=config.dram),
                         lr=config.lr, momentum=config.momentum, loss_scale=config.loss_scale,
                         batch_size=config.batch_size, steps=config.T, direct_input=direct_input,
                         spike_input=spike_input, cores=config.cores)


class SequenceInputs:
    """Turns stored samples into the ``[T, N, ...]`` sequences the network takes."""

    def __init__(self, dataset, config: TrainConfig):
        self.temporal = dataset.temporal
        self.T = config.T
        self.encode = None if dataset.temporal else get_encoder(dataset.encoding)

    def __call__(self, x, generator):
        if self.temporal:
            return x.transpose(0, 1).contiguous()  # [N, T, ...] → [T, N, ...]
        return self.encode(x, self.T, generator=generator)


def evaluate(backend, inputs: SequenceInputs, x, y, batch_size: int, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed)  # the same encoding of the test set every time
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = backend.predict(inputs(x[start:start + batch_size], generator))
        correct += int((logits.argmax(1) == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)


def train(config: TrainConfig, progress: bool = True,
          on_step: Callable[[int], None] | None = None) -> dict:
    """Train as ``config`` says; returns the report dictionary.

    ``on_step(global_step)`` is called after every optimisation step (and after any periodic
    checkpoint of that step); it may raise to interrupt the run.
    """
    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    wall_start = time.perf_counter()
    data = load_dataset(config.dataset, config.T, root=config.data_root, encoding=config.encoding,
                        seed=config.seed)
    x_train, y_train = data.x_train, data.y_train
    if config.train_limit:
        x_train, y_train = x_train[:config.train_limit], y_train[:config.train_limit]
    inputs = SequenceInputs(data, config)

    torch.manual_seed(config.seed)
    model = SpikingNetwork(config.model, data.input_shape, data.n_classes, config.neuron_config())
    backend = _make_backend(config, model, direct_input=not data.temporal and data.encoding == "direct",
                            spike_input=data.spikes)
    shuffle_gen = torch.Generator().manual_seed(config.seed + 1)
    encode_gen = torch.Generator().manual_seed(config.seed + 2)

    n = len(x_train)
    batches = math.ceil(n / config.batch_size)
    epoch, batch_index, perm, history, train_time, global_step = 0, 0, None, [], 0.0, 0
    correct, seen, loss_sum = 0, 0, 0.0
    run_dir = Path(config.checkpoint) if config.checkpoint else None
    ckpt_path = run_dir / CHECKPOINT_NAME if run_dir else None

    if config.resume:
        state = load_checkpoint(ckpt_path)
        saved = state["config"]
        mismatched = {k: (saved.get(k), v) for k, v in config.outcome_fields().items() if saved.get(k) != v}
        if mismatched:
            detail = ", ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in mismatched.items())
            raise CheckpointError(f"cannot resume {ckpt_path}: the run was started with other settings "
                                  f"({detail}); use the original settings or a new --checkpoint directory")
        backend.load_state_dict(state["backend"])
        shuffle_gen.set_state(state["shuffle_gen"])
        encode_gen.set_state(state["encode_gen"])
        epoch, batch_index, perm = state["epoch"], state["batch_index"], state["perm"]
        history, train_time, global_step = state["history"], state["train_time"], state["global_step"]
        correct, seen, loss_sum = state["correct"], state["seen"], state["loss_sum"]

    def checkpoint():
        if ckpt_path is None:
            return
        save_checkpoint(ckpt_path, {
            "config": config.outcome_fields(), "backend": backend.state_dict(),
            "shuffle_gen": shuffle_gen.get_state(), "encode_gen": encode_gen.get_state(),
            "epoch": epoch, "batch_index": batch_index, "perm": perm, "history": history,
            "train_time": train_time, "global_step": global_step,
            "correct": correct, "seen": seen, "loss_sum": loss_sum})

    while epoch < config.epochs:
        if perm is None:
            perm = torch.randperm(n, generator=shuffle_gen)
            correct, seen, loss_sum = 0, 0, 0.0
        bar = tqdm(total=batches, initial=batch_index, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="batch", leave=False, disable=not progress or None, dynamic_ncols=True)
        while batch_index < batches:
            idx = perm[batch_index * config.batch_size:(batch_index + 1) * config.batch_size]
            labels = y_train[idx]
            step_start = time.perf_counter()
            x_seq = inputs(x_train[idx], encode_gen)
            loss, logits = backend.train_step(x_seq, labels)
            train_time += time.perf_counter() - step_start
            if not math.isfinite(loss):
                bar.close()
                where = f"epoch {epoch + 1}, batch {batch_index + 1}"
                saved = f"the last checkpoint in {run_dir} is intact" if run_dir else "nothing was saved"
                raise TrainingError(f"the loss became {loss} at {where}; the weights were not updated "
                                    f"with it and {saved}. Lower --lr (now {config.lr}) or change the model.")
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(idx)
            loss_sum += loss * len(idx)
            batch_index += 1
            global_step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            if config.checkpoint_every and global_step % config.checkpoint_every == 0:
                checkpoint()
            if on_step:
                on_step(global_step)
        bar.close()
        test_acc = evaluate(backend, inputs, data.x_test, data.y_test, 256, config.seed + 3)
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
                        "test_accuracy": test_acc, "train_time_s": train_time})
        if progress:
            tqdm.write(f"epoch {epoch + 1:3d}/{config.epochs}  loss {loss_sum / seen:.4f}  "
                       f"train {correct / seen:.4f}  test {test_acc:.4f}  [{train_time:.1f} s]")
        epoch, batch_index, perm = epoch + 1, 0, None
        checkpoint()

    weights = backend.weights()
    device_figures = backend.device_report() if hasattr(backend, "device_report") else None
    if hasattr(backend, "close"):
        backend.close()
    report = {
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "train_accuracy": history[-1]["train_accuracy"] if history else None,
        "train_time_s": train_time,
        "samples_per_s": n * config.epochs / train_time if train_time else 0.0,
        "wall_time_s": time.perf_counter() - wall_start,
        "device": config.device,
        "precision": config.precision,
        "weights_sha256": weights_sha256(weights),
        "parameters": int(sum(w.numel() for w in weights.values())),
        "klif_k": [float(w) for name, w in sorted(weights.items()) if name.endswith(".k")],
        "history": history,
        "train_samples": n,
        "test_samples": len(data.x_test),
        "config": asdict(config),
    }
    if device_figures is not None:
        report["device_figures"] = device_figures
    if config.report:
        atomic_write_text(config.report, json.dumps(report, indent=2) + "\n")
    if config.plot:
        from .plots import plot_training_curve
        plot_training_curve(history, config.plot, title=f"{config.dataset} · {config.model} · {config.neuron} · "
                                                         f"{config.precision}")
    return report
