"""A Trident core: FP, BP and WG engines, neuron units, scratchpads and the descriptor
sequencer (docs/core.md)."""
