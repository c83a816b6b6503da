"""The PyTorch golden model: neurons, surrogates, layers, networks and training.

Members
-------
neurons
    IF, LIF and KLIF multi-step neurons with SpikingJelly semantics (fused and per-step).
surrogate
    Surrogate gradients behind a registry.
layers, network
    Multi-step layers and networks built from a short description or preset.
training
    The float32 BPTT backend.
hw
    The hardware-exact FP16 kernels: the numeric contract the RTL implements.
data
    Datasets, encoders and event-camera formats.
"""
