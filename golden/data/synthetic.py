"""A synthetic N-MNIST made from scikit-learn's digits: an event camera watching a moving digit.

N-MNIST was recorded by an ATIS sensor making three saccades in front of a static MNIST
digit. This module imitates that from the 8x8 digits, so that the whole event pipeline --
writer, reader, frame integration -- is exercised on data whose labels are known:

1. **Scene.** Each digit is upscaled bilinearly to ``digit_size`` pixels (28 by default, as
   MNIST) and placed on a ``sensor_size`` (34) square sensor. Upscaling and sub-pixel
   placement are one bilinear interpolation of the zero-padded 8x8 image, so the digit fades
   to the black background at its border and moves smoothly by fractions of a pixel.
2. **Motion.** The digit's top-left corner follows a triangle through :attr:`SynthParams.path`
   (three saccades of ``saccade_us`` each, 300 ms in all like N-MNIST), with a cosine ease
   ``s = (1 - cos(pi u)) / 2`` along each side, so the position and its velocity are
   continuous and the motion stops at the corners.
3. **Events.** Every pixel behaves like a DVS pixel: it remembers the log intensity
   ``log(I + background)`` at its last event and emits an ON event each time the current log
   intensity rises ``threshold`` above it, an OFF event each time it falls ``threshold``
   below, moving its memory by ``threshold`` per event. The scene is sampled every
   ``step_us``; a crossing between two samples is timed by linear interpolation of the
   intensity. The pixels start adapted to the first image, so the static digit alone gives
   no events.
4. **Timestamps.** Gaussian jitter of ``jitter_us`` (standard deviation) from
   ``numpy.random.default_rng([seed, sample_id])`` is added, times are rounded to whole µs
   (clipped at 0), and each sample's events are stably sorted by time.

The comparison ``log(v) >= log(ref) + threshold`` is evaluated as ``v >= ref * exp(threshold)``
with elementwise float64 arithmetic only (no BLAS, no vectorised ``log``), so results are
bit-identical from run to run and do not depend on which samples are generated together.
With the defaults a sample has about 3,800 events (N-MNIST: about 4,000); generating and
writing all 1797 samples takes about 10 s on one core, reading them back about 0.5 s.

Files are written with the real N-MNIST writer in the real layout,
``<root>/nmnist-synth-<key>/{Train,Test}/<digit>/<id>.bin``, where ``id`` is the sample's
index in ``sklearn.datasets.load_digits()`` (5 digits) and the train/test split is the one of
:mod:`trident.golden.data.digits`. ``<key>`` is a hash of the generation parameters, so
every parameter set has its own cache; since files are written atomically, an existing
file is a complete one, and a second call only reads.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .digits import digits_arrays, digits_split_indices
from .events import EVENT_DTYPE, atomic_write_bytes, write_nmnist

__all__ = ["SynthParams", "simulate_events", "synth_samples", "generate_nmnist_synth",
           "synth_dir", "GENERATOR_VERSION", "DEFAULT_ROOT"]

#: Where generated data go when no root is given (relative to the current directory).
DEFAULT_ROOT = Path("runs") / "data"
#: Bump when the generator's output changes for the same parameters: it is part of the cache
#: key, so stale caches are not reused.
GENERATOR_VERSION = 1
_BATCH = 256


@dataclass(frozen=True)
class SynthParams:
    """Parameters of the synthetic event digits; all of them key the on-disk cache.

    Attributes
    ----------
    seed : int
        Seeds the timestamp jitter (with the sample id).
    digit_size : float
        Side of the upscaled digit on the sensor, in pixels.
    sensor_size : int
        Side of the square sensor (34, as N-MNIST); at most 240 for the ``.bin`` format.
    saccade_us : int
        Duration of each of the three saccades, µs.
    path : tuple of (float, float)
        The three corners (x, y) of the triangle followed by the digit's top-left corner, in
        pixels; the path starts and ends at the first one.
    step_us : int
        Time between two samples of the scene, µs.
    threshold : float
        Contrast threshold, in natural-log units of intensity.
    background : float
        Added to the intensity (0..1) before the log: the black background's luminance, and
        what keeps the log finite.
    jitter_us : float
        Standard deviation of the Gaussian timestamp jitter, µs.
    """

    seed: int = 0
    digit_size: float = 28.0
    sensor_size: int = 34
    saccade_us: int = 100_000
    path: tuple = ((1.0, 5.0), (3.0, 1.0), (5.0, 5.0))
    step_us: int = 1000
    threshold: float = 0.25
    background: float = 0.2
    jitter_us: float = 50.0

    def __post_init__(self):
        # Normalised so that equal parameters hash equally whatever sequence types were used.
        object.__setattr__(self, "path", tuple((float(x), float(y)) for x, y in self.path))
        if len(self.path) != 3:
            raise ValueError("path needs the three corners of the triangle")
        if not 0 < self.sensor_size <= 240:
            raise ValueError("sensor_size must be in 1..240 (N-MNIST stores coordinates in "
                             "a byte and reserves y == 240)")
        if self.step_us <= 0 or self.saccade_us % self.step_us:
            raise ValueError("step_us must be positive and divide saccade_us")
        if 3 * self.saccade_us >= 1 << 23:
            raise ValueError("a recording must stay below 2**23 µs (N-MNIST timestamps)")
        if self.threshold <= 0 or self.background <= 0 or self.jitter_us < 0:
            raise ValueError("threshold and background must be > 0, jitter_us >= 0")

    def key(self) -> str:
        """Short hash of the parameters and :data:`GENERATOR_VERSION` (the cache key)."""
        blob = json.dumps({"version": GENERATOR_VERSION, **dataclasses.asdict(self)},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def duration_us(self) -> int:
        """Length of a recording, µs."""
        return 3 * self.saccade_us


def _offset(params: SynthParams, t: float) -> tuple[float, float]:
    """Top-left corner of the digit at time t (µs) on the eased triangle path."""
    corners = params.path + params.path[:1]
    side = min(int(t // params.saccade_us), 2)
    u = (t - side * params.saccade_us) / params.saccade_us
    s = (1.0 - math.cos(math.pi * u)) / 2.0
    (x0, y0), (x1, y1) = corners[side], corners[side + 1]
    return x0 + (x1 - x0) * s, y0 + (y1 - y0) * s


def _axis_weights(params: SynthParams, offset: float):
    """Bilinear taps along one axis: padded-image indices and weights for each sensor line."""
    centres = np.arange(params.sensor_size) + 0.5
    # Sensor pixel centre -> continuous coordinate in the 8x8 image (pixel centres at
    # 0..7), +1 for the zero padding. Taps outside the padded image read a zero border.
    u = (centres - offset) * (8.0 / params.digit_size) - 0.5 + 1.0
    f = np.floor(u)
    w1 = u - f
    i0 = np.clip(f, 0, 9).astype(np.intp)
    i1 = np.clip(f + 1, 0, 9).astype(np.intp)
    return i0, i1, 1.0 - w1, w1


def _render(params: SynthParams, padded: np.ndarray, t: float) -> np.ndarray:
    """Intensity of every sensor pixel at time t, flattened to [B * S * S]."""
    ox, oy = _offset(params, t)
    x0, x1, a0, a1 = _axis_weights(params, ox)
    y0, y1, b0, b1 = _axis_weights(params, oy)
    rows = padded[:, :, x0] * a0 + padded[:, :, x1] * a1
    image = rows[:, y0, :] * b0[:, None] + rows[:, y1, :] * b1[:, None]
    return image.reshape(-1)


def simulate_events(images: np.ndarray, sample_ids, params: SynthParams = SynthParams()
                    ) -> list[np.ndarray]:
    """Generate the events of a batch of digits (in memory, no files).

    Parameters
    ----------
    images : numpy.ndarray
        ``[B, 8, 8]`` intensities in [0, 1].
    sample_ids : sequence of int
        One id per image; with ``params.seed`` it seeds that sample's jitter, so a sample's
        events do not depend on which others are generated with it.
    params : SynthParams

    Returns
    -------
    list of numpy.ndarray
        Per image, events of :data:`~trident.golden.data.events.EVENT_DTYPE` sorted by time.
    """
    images = np.asarray(images, dtype=np.float64)
    sample_ids = [int(i) for i in sample_ids]
    if images.ndim != 3 or images.shape[1:] != (8, 8) or len(sample_ids) != len(images):
        raise ValueError("images must be [B, 8, 8] with one sample id each")
    batch, side = len(images), params.sensor_size
    padded = np.zeros((batch, 10, 10))
    padded[:, 1:9, 1:9] = images
    ratio = math.exp(params.threshold)
    step = float(params.step_us)

    v = _render(params, padded, 0.0) + params.background
    hi = v * ratio  # the pixel's memory times exp(+-threshold): the next ON / OFF levels
    lo = v / ratio
    where, when, polarity = [], [], []
    for k in range(1, params.duration_us // params.step_us + 1):
        v_prev, v = v, _render(params, padded, k * step) + params.background
        idx = np.flatnonzero((v >= hi) | (v <= lo))
        # Each pass emits at most one event per pixel; pixels that crossed several levels
        # within one step stay in idx for the next pass.
        while idx.size:
            vi, vp = v[idx], v_prev[idx]
            on = vi >= hi[idx]
            level = np.where(on, hi[idx], lo[idx])
            where.append(idx)
            when.append((k - 1 + (level - vp) / (vi - vp)) * step)
            polarity.append(on)
            hi[idx] = level * ratio
            lo[idx] = level / ratio
            idx = idx[(vi >= hi[idx]) | (vi <= lo[idx])]

    if where:
        where, when = np.concatenate(where), np.concatenate(when)
        polarity = np.concatenate(polarity)
    else:
        where, when = np.empty(0, np.intp), np.empty(0)
        polarity = np.empty(0, bool)
    sample, pixel = np.divmod(where, side * side)
    order = np.argsort(sample, kind="stable")  # group by sample, keep emission order
    bounds = np.searchsorted(sample[order], np.arange(batch + 1))
    out = []
    for b in range(batch):
        sel = order[bounds[b]:bounds[b + 1]]
        rng = np.random.default_rng([params.seed, sample_ids[b]])
        t = when[sel] + rng.normal(0.0, params.jitter_us, sel.size)
        t = np.maximum(np.rint(t), 0).astype(np.int64)
        ev = np.empty(sel.size, dtype=EVENT_DTYPE)
        ev["t"] = t
        ev["y"], ev["x"] = np.divmod(pixel[sel], side)
        ev["p"] = polarity[sel]
        out.append(ev[np.argsort(t, kind="stable")])
    return out


def synth_dir(root, params: SynthParams = SynthParams()) -> Path:
    """Folder of the cached dataset for ``params`` under ``root``."""
    return Path(root) / f"nmnist-synth-{params.key()}"


def synth_samples(root, params: SynthParams = SynthParams(), *, subset: int | None = None
                  ) -> dict[str, list[tuple[Path, int, int]]]:
    """List the files of the synthetic dataset (they need not exist yet).

    Parameters
    ----------
    root : str or os.PathLike
        Parent folder of the cache.
    params : SynthParams
    subset : int, optional
        Keep only the first ``subset`` samples of each split (in the digits split order).

    Returns
    -------
    dict
        ``{"Train": [(path, label, sample_id), ...], "Test": [...]}`` in the order of
        :func:`trident.golden.data.digits.digits_split_indices`.
    """
    _, labels = digits_arrays()
    base = synth_dir(root, params)
    out = {}
    for split, index in zip(("Train", "Test"), digits_split_indices()):
        if subset is not None:
            index = index[:subset]
        out[split] = [(base / split / str(labels[i]) / f"{i:05d}.bin", int(labels[i]), int(i))
                      for i in index]
    return out


def generate_nmnist_synth(root=None, params: SynthParams = SynthParams(), *,
                          subset: int | None = None) -> dict:
    """Make sure the synthetic N-MNIST files exist on disk, generating the missing ones.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Parent folder of the cache; ``runs/data`` under the current directory by default.
    params : SynthParams
        Generation parameters; they select the cache folder.
    subset : int, optional
        Only the first ``subset`` samples of each split (tests use it to stay fast).

    Returns
    -------
    dict
        ``dir`` (the dataset folder, holding ``Train/`` and ``Test/``), ``samples`` (as
        :func:`synth_samples`) and ``generated`` (how many files this call wrote; 0 when
        everything was cached).
    """
    root = DEFAULT_ROOT if root is None else Path(root)
    samples = synth_samples(root, params, subset=subset)
    base = synth_dir(root, params)
    missing = [(path, sid) for split in samples.values() for path, _, sid in split
               if not path.is_file()]
    if missing:
        base.mkdir(parents=True, exist_ok=True)
        info = {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(params)}
        atomic_write_bytes(base / "params.json",
                           (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        images, _ = digits_arrays()
        for start in range(0, len(missing), _BATCH):
            chunk = missing[start:start + _BATCH]
            ids = [sid for _, sid in chunk]
            for (path, _), ev in zip(chunk, simulate_events(images[ids], ids, params)):
                write_nmnist(path, ev)
    return {"dir": base, "samples": samples, "generated": len(missing)}
