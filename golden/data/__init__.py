"""Data layer of the golden model: datasets, input encoders, event files and frames.

The trainer needs one call, :func:`load_dataset`; the pieces behind it are public too:

- :mod:`.digits` -- scikit-learn's 8x8 digits in [0, 1] with a fixed 1437/360 split;
- :mod:`.encoders` -- ``direct``, ``rate`` and ``latency`` encoders, ``[N, ...] -> [T, N, ...]``;
- :mod:`.events` -- N-MNIST ``.bin``, AEDAT 2.0 (CIFAR10-DVS) and AEDAT 3.1 + labels
  (DVS128 Gesture) readers and writers, byte for byte as the real datasets;
- :mod:`.frames` -- events to ``[T, 2, H, W]`` frames, SpikingJelly or tonic slicing;
- :mod:`.synthetic` -- an N-MNIST-like event dataset generated from the digits.
"""
from .datasets import DATASETS, DEFAULT_ROOT, Dataset, load_dataset
from .digits import DigitsSplit, digits_split_indices, load_digits_split
from .encoders import ENCODERS, direct, encode, get_encoder, latency, rate
from .events import (EVENT_DTYPE, LABEL_DTYPE, EventFileError, make_events, read_aedat2,
                     read_aedat3, read_gesture_labels, read_nmnist, split_by_labels,
                     write_aedat2, write_aedat3, write_gesture_labels, write_nmnist)
from .frames import events_to_frames
from .synthetic import SynthParams, generate_nmnist_synth, simulate_events

__all__ = [
    "load_dataset", "Dataset", "DATASETS", "DEFAULT_ROOT",
    "load_digits_split", "digits_split_indices", "DigitsSplit",
    "direct", "rate", "latency", "ENCODERS", "get_encoder", "encode",
    "EVENT_DTYPE", "LABEL_DTYPE", "EventFileError", "make_events",
    "read_nmnist", "write_nmnist", "read_aedat2", "write_aedat2",
    "read_aedat3", "write_aedat3", "read_gesture_labels", "write_gesture_labels",
    "split_by_labels",
    "events_to_frames",
    "SynthParams", "generate_nmnist_synth", "simulate_events",
]
