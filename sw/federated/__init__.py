"""Federated on-edge training with Flower (placeholder docstring, rewritten below)."""
