"""Noise-based single-step training, then multi-step SNN inference (ALGORITHMS.md §6).

An [abstract] reconstruction: the network trains with T = 1 on neurons that fire on a noisy
potential ``s = Θ(u + ε − V_th)``, ``ε ~ N(μ, σ²)``, with a surrogate gradient through Θ; the
same weights then run as a deterministic N-step SNN (IF/LIF, soft reset).  Every choice is
a parameter of :class:`NoiseConfig`; docs/noise-training.md explains the defaults.

Modules
-------
neuron
    NoiseConfig, NoisyNeuron, InitialPotential, firing_probability, rate_curve,
    calibrate_noise.
train
    build_noisy_network, to_multistep, evaluate, NoiseTrainConfig, compare.
cli
    ``add_noise_train_parser(subparsers)`` for the ``trident`` command.
"""
from .neuron import (MATCHED_SIGMA, InitialPotential, NoiseConfig, NoisyNeuron, calibrate_noise,
                     firing_probability, rate_curve, single_step_potential)
from .train import DEFAULT_STEPS, NoiseTrainConfig, Run, build_noisy_network, compare, evaluate, to_multistep

__all__ = ["MATCHED_SIGMA", "InitialPotential", "NoiseConfig", "NoisyNeuron", "calibrate_noise",
           "firing_probability", "rate_curve", "single_step_potential", "DEFAULT_STEPS", "NoiseTrainConfig",
           "Run", "build_noisy_network", "compare", "evaluate", "to_multistep"]
