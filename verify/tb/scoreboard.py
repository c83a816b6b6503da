"""In-order scoreboard with a pluggable compare function (simulator-independent)."""

from collections import deque
from dataclasses import dataclass, field

__all__ = ["Mismatch", "Scoreboard", "exact", "masked"]


def exact(got, expected):
    """Default compare: bit-exact equality of raw payloads."""
    return got == expected


def masked(mask):
    """Compare only the bits set in ``mask`` (an int, or a per-item int via ``meta``)."""
    def compare(got, expected):
        return (got & mask) == (expected & mask)
    return compare


@dataclass
class Mismatch:
    """One failed comparison."""
    index: int
    got: int
    expected: int
    meta: object = None


@dataclass
class Scoreboard:
    """Checks the DUT's outputs against expectations, in order.

    The model (or a vector file) calls :meth:`expect` once per transaction; the monitor
    calls :meth:`observe` once per output.  Each observation is compared with the oldest
    outstanding expectation by ``compare(got, expected) -> bool``.

    Parameters
    ----------
    compare : callable
        Pluggable comparison (default: :func:`exact`).
    name : str
        Used in reports.
    keep : int
        Number of mismatches kept for the report (all are counted).
    formatter : callable, optional
        ``formatter(mismatch) -> str`` for the report (default: hex payloads).

    Attributes
    ----------
    checked, errors : int
        Comparisons made, and how many failed.
    unexpected : int
        Outputs that arrived with no expectation outstanding.
    """
    compare: object = exact
    name: str = "scoreboard"
    keep: int = 20
    formatter: object = None
    checked: int = 0
    errors: int = 0
    unexpected: int = 0
    mismatches: list = field(default_factory=list)
    _pending: deque = field(default_factory=deque)

    def expect(self, expected, meta=None):
        """Queue the expected output of the next transaction (``meta``: e.g. its inputs)."""
        self._pending.append((expected, meta))

    def observe(self, got, meta=None):
        """Compare one DUT output with the oldest expectation."""
        if not self._pending:
            self.unexpected += 1
            if len(self.mismatches) < self.keep:
                self.mismatches.append(Mismatch(self.checked + self.unexpected - 1, got, None,
                                                ("unexpected output", meta)))
            return False
        expected, exp_meta = self._pending.popleft()
        index = self.checked
        self.checked += 1
        if self.compare(got, expected):
            return True
        self.errors += 1
        if len(self.mismatches) < self.keep:
            self.mismatches.append(Mismatch(index, got, expected, exp_meta))
        return False

    @property
    def outstanding(self):
        """Expectations not yet matched by an output."""
        return len(self._pending)

    @property
    def passed(self):
        return self.errors == 0 and self.unexpected == 0 and not self._pending

    def report(self):
        """A human-readable summary, with the first kept mismatches."""
        lines = [f"{self.name}: {self.checked} checked, {self.errors} mismatches, "
                 f"{self.unexpected} unexpected, {self.outstanding} missing"]
        for m in self.mismatches:
            if self.formatter is not None:
                lines.append("  " + self.formatter(m))
            elif m.expected is None:
                lines.append(f"  #{m.index}: unexpected output 0x{m.got:x}")
            else:
                lines.append(f"  #{m.index}: got 0x{m.got:x} expected 0x{m.expected:x}"
                             + (f" ({m.meta})" if m.meta is not None else ""))
        return "\n".join(lines)
