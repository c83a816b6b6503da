"""FP16-specific verification: SoftFloat/NumPy oracles, vector generators, unit specs."""
