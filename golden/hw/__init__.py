"""Hardware-exact binary16 kernels: the numeric contract of the FP, BP and WG engines.

See docs/numerics.md for the specification these modules implement bit for bit.

Modules: :mod:`.fp16` (primitives), :mod:`.surrogate` (surrogate unit), :mod:`.neuron`
(neuron unit), :mod:`.forward` (FP engine), :mod:`.backward` (BP engine), :mod:`.gradient`
(WG engine), :mod:`.update` (SGD unit), :mod:`.network` (:class:`HwExactNetwork`),
:mod:`.reference` (float64 reference with rounding-error bounds, for tests);
:mod:`.descriptors` (the core's layer-descriptor format), :mod:`.program` (the golden device:
executes descriptor programs on a DRAM image), :mod:`.compiler` (network → programs + image).
"""
from .network import HwExactNetwork, LayerTrace, StepTrace, host_loss_grad

__all__ = ["HwExactNetwork", "LayerTrace", "StepTrace", "host_loss_grad"]
