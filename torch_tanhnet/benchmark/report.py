"""What a benchmark run found: one :class:`Result` per case and size, and the :class:`Report`'s table.

A case's figure is the median of its interleaved repeats. Its spread says how far to trust
it: the second slowest over the second fastest repeat (with five repeats or more; slowest over
fastest with fewer), so that one stray sample either side does not count. On the quiet 2-core
development machine (nothing else running, 2026-11-30) it reached 1.5-2.0x for some cases over
four runs of ``scripts/bench.py``, and the plain slowest/fastest ratio 1.9x; with another process
on a core the repeats spread 5-10x. Above :data:`UNRELIABLE` the table marks the figure, and every
ratio taken with it, with ``?`` and a note, rather than print it plainly. A run contended from its
first repeat to its last has no spread to show it: compare the ``floor`` row with earlier runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

UNRELIABLE = 2.5  # spread (see spread) of a case's repeats beyond which its median is not to be trusted


@dataclass
class Result:
    n: int
    case: str
    median_ms: float | None  # None: the case did not run (see note)
    ratio: float | None  # eager's median / this median: > 1 is faster than eager autograd
    saved_bytes: int | None = None  # bytes saved for backward by one step (saved_tensors_hooks)
    peak_extra_bytes: int | None = None  # peak memory of one step above what was held before it
    note: str = ""
    samples_ms: list[float] = field(default_factory=list)  # each repeat's ms per step, in the order taken

    @property
    def spread(self) -> float | None:
        """Second slowest / second fastest repeat (slowest / fastest below five repeats); above
        :data:`UNRELIABLE` the median is unreliable."""
        if not self.samples_ms:
            return None
        ordered = sorted(self.samples_ms)
        trim = 1 if len(ordered) >= 5 else 0
        return ordered[-1 - trim] / ordered[trim]

    def shaky(self) -> bool:
        return self.spread is not None and self.spread > UNRELIABLE


@dataclass
class Report:
    device: str
    machine: dict
    results: list[Result] = field(default_factory=list)

    def table(self) -> str:
        """One row per case; a figure from widely spread repeats (or a ratio to one) ends in ? and says why."""
        head = (f"{'N':>10}  {'case':<9} {'median ms':>10} {'vs eager':>9} {'spread':>7} {'saved kB':>10} "
                f"{'peak kB':>9}  note")
        lines = [head, "-" * len(head)]
        kb = lambda v: "" if v is None else f"{v / 1e3:.2f}"
        eager = {r.n: r for r in self.results if r.case == "eager"}
        for r in self.results:
            base = eager.get(r.n)
            ratio_shaky = r.case != "eager" and (r.shaky() or (base is not None and base.shaky()))
            t = "" if r.median_ms is None else f"{r.median_ms:.4f}" + ("?" if r.shaky() else " ")
            q = "" if r.ratio is None else f"{r.ratio:.2f}x" + ("?" if ratio_shaky else " ")
            spread = "" if r.spread is None else f"{r.spread:.2f}x"
            note = r.note
            if r.shaky() or ratio_shaky:
                why = f"repeats spread {r.spread:.1f}x" if r.shaky() else f"eager's repeats spread {base.spread:.1f}x"
                note = f"UNRELIABLE: {why} (> {UNRELIABLE}x); rerun on a quiet machine" + (f"; {note}" if note else "")
            lines.append(f"{r.n:>10}  {r.case:<9} {t:>10} {q:>9} {spread:>7} {kb(r.saved_bytes):>10} "
                         f"{kb(r.peak_extra_bytes):>9}  {note}".rstrip())
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"device": self.device, "machine": self.machine,
                           "results": [{**asdict(r), "spread": r.spread} for r in self.results]}, indent=2)
