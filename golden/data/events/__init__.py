"""Event-camera file formats: readers and writers with the byte layouts of the real datasets.

Every reader returns a numpy structured array of :data:`EVENT_DTYPE` (``t`` int64 µs,
``x``/``y`` uint16, ``p`` uint8 with 1 = ON), whatever the format; corrupt or truncated files
raise :class:`EventFileError` naming the file and the byte offset. Writers go through a
temporary file and :func:`os.replace`, so a file is either complete or absent.

==================  ==================================  ==================================
Dataset             Format                              Functions
==================  ==================================  ==================================
N-MNIST             ATIS ``.bin``, 5-byte events        :func:`read_nmnist`,
                                                        :func:`write_nmnist`
CIFAR10-DVS         AEDAT 2.0, 8-byte big-endian        :func:`read_aedat2`,
                                                        :func:`write_aedat2`
DVS128 Gesture      AEDAT 3.1 packets + labels CSV      :func:`read_aedat3`,
                                                        :func:`write_aedat3`,
                                                        :func:`read_gesture_labels`,
                                                        :func:`write_gesture_labels`,
                                                        :func:`split_by_labels`
==================  ==================================  ==================================
"""
from .aedat2 import AEDAT2_SENSOR, ORIENTATIONS, read_aedat2, write_aedat2
from .aedat3 import (GESTURE_SENSOR, LABEL_DTYPE, read_aedat3, read_gesture_labels,
                     split_by_labels, write_aedat3, write_gesture_labels)
from .core import EVENT_DTYPE, EventFileError, atomic_write_bytes, make_events
from .nmnist import NMNIST_SENSOR, read_nmnist, write_nmnist

__all__ = [
    "EVENT_DTYPE", "EventFileError", "make_events", "atomic_write_bytes",
    "read_nmnist", "write_nmnist", "NMNIST_SENSOR",
    "read_aedat2", "write_aedat2", "AEDAT2_SENSOR", "ORIENTATIONS",
    "read_aedat3", "write_aedat3", "read_gesture_labels", "write_gesture_labels",
    "split_by_labels", "LABEL_DTYPE", "GESTURE_SENSOR",
]
