"""A small Prometheus text-format registry (counters and gauges, with labels).

Enough for ``/metrics`` without another dependency: the center exports request counts by
route and status, websocket clients, bus events and per-subsystem figures that each
package registers as gauges computed on scrape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

LabelKey = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass(slots=True)
class _Metric:
    name: str
    help: str
    kind: str
    values: dict[LabelKey, float] = field(default_factory=dict)
    fn: Callable[[], dict[LabelKey, float] | float] | None = None


class Metrics:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _get(self, name: str, help_: str, kind: str) -> _Metric:
        m = self._metrics.get(name)
        if m is None:
            m = self._metrics[name] = _Metric(name, help_, kind)
        return m

    def inc(self, name: str, help_: str, amount: float = 1.0, **labels: str) -> None:
        m = self._get(name, help_, "counter")
        key = tuple(sorted(labels.items()))
        m.values[key] = m.values.get(key, 0.0) + amount

    def set(self, name: str, help_: str, value: float, **labels: str) -> None:
        m = self._get(name, help_, "gauge")
        m.values[tuple(sorted(labels.items()))] = value

    def gauge_fn(
        self,
        name: str,
        help_: str,
        fn: Callable[[], dict[LabelKey, float] | float],
        kind: str = "gauge",
    ) -> None:
        """Register a value computed at scrape time (e.g. a bus's own counters)."""
        m = self._get(name, help_, kind)
        m.fn = fn

    def value(self, name: str, **labels: str) -> float:
        m = self._metrics.get(name)
        if m is None:
            return 0.0
        return m.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        for m in self._metrics.values():
            values = dict(m.values)
            if m.fn is not None:
                got = m.fn()
                values.update(got if isinstance(got, dict) else {(): float(got)})
            lines.append(f"# HELP {m.name} {m.help}")
            lines.append(f"# TYPE {m.name} {m.kind}")
            for key, v in sorted(values.items()):
                label = ",".join(f'{k}="{_escape(val)}"' for k, val in key)
                lines.append(f"{m.name}{{{label}}} {v:g}" if label else f"{m.name} {v:g}")
        return "\n".join(lines) + "\n"
