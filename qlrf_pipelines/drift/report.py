"""What the Dagster UI shows on `drift_items`: open counts, this run's opened / closed, a trend chart.

No Dagster here: `read_drift_summary` reads the built warehouse (read-only, after dbt released
it), `trend_chart_png` draws the daily drift rate and open items with matplotlib's Agg canvas
(no pyplot, no global backend switch, no display), and `summary_metadata` turns both into plain
values the asset wrapper hands to Dagster. Metadata is decoration: callers catch failures and
never fail a build on it.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Sequence

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
TREND_DAYS = 90  # the chart shows at most this many recent days


@dataclass(frozen=True)
class TrendPoint:
    day: date
    drift_rate: float
    open_items: int


@dataclass(frozen=True)
class DriftSummary:
    open_by_severity: dict[str, int] = field(default_factory=dict)
    open_image: int = 0
    open_config: int = 0
    opened: int = 0  # episodes opened by the snapshots this run reported
    closed: int = 0
    trend: tuple[TrendPoint, ...] = ()

    @property
    def open_items(self) -> int:
        return self.open_image + self.open_config


def _connect_read_only(warehouse_path: Path, attempts: int = 5, wait_s: float = 0.5):
    """DuckDB refuses a second process while dbt's subprocess still holds the file: retry briefly."""
    import duckdb

    for attempt in range(attempts):
        try:
            return duckdb.connect(str(warehouse_path), read_only=True)
        except duckdb.IOException:
            if attempt == attempts - 1:
                raise
            time.sleep(wait_s * (attempt + 1))
    raise AssertionError("unreachable")


def read_drift_summary(warehouse_path: Path, since: datetime | None = None) -> DriftSummary:
    """The numbers for the UI from a built warehouse. `since`: when the run started, so opened /
    closed count the drift_reports rows this run wrote (all rows when None)."""
    with _connect_read_only(Path(warehouse_path)) as connection:
        by_severity = dict(
            connection.execute(
                "SELECT severity, count(*) FROM drift_items WHERE status = 'open' GROUP BY severity"
            ).fetchall()
        )
        image, config = connection.execute(
            "SELECT count(*) FILTER (WHERE drift_type <> 'config'), count(*) FILTER (WHERE drift_type = 'config') "
            "FROM drift_items WHERE status = 'open'"
        ).fetchone()
        opened, closed = connection.execute(
            "SELECT coalesce(sum(opened), 0), coalesce(sum(closed), 0) FROM drift_reports "
            "WHERE ? IS NULL OR reported_at >= ?",
            [since, since],
        ).fetchone()
        trend = connection.execute(
            "SELECT day, drift_rate, open_items FROM drift_trends WHERE severity = 'all' "
            "ORDER BY day DESC LIMIT ?",
            [TREND_DAYS],
        ).fetchall()
    return DriftSummary(
        open_by_severity={s: int(by_severity.get(s, 0)) for s in SEVERITIES},
        open_image=int(image),
        open_config=int(config),
        opened=int(opened),
        closed=int(closed),
        trend=tuple(TrendPoint(day, float(rate), int(items)) for day, rate, items in reversed(trend)),
    )


def trend_chart_png(trend: Sequence[TrendPoint], width_in: float = 6.0, height_in: float = 2.4, dpi: int = 80) -> bytes:
    """Daily drift rate (line, left axis, %) and open drift items (bars, right axis) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(figure)
    rate_axis = figure.add_subplot(1, 1, 1)
    days = [point.day for point in trend]
    items_axis = rate_axis.twinx()
    items_axis.bar(days, [point.open_items for point in trend], color="#c9d6e8", width=0.8, label="open items")
    items_axis.set_ylabel("open items", fontsize=8)
    rate_axis.set_zorder(items_axis.get_zorder() + 1)
    rate_axis.patch.set_visible(False)
    rate_axis.plot(days, [100 * point.drift_rate for point in trend], color="#c0392b", marker="o", markersize=2.5,
                   linewidth=1.5, label="drift rate")
    rate_axis.set_ylabel("drift rate %", fontsize=8)
    rate_axis.set_ylim(0, max([100 * point.drift_rate for point in trend] + [1.0]) * 1.15)
    if not trend:
        rate_axis.text(0.5, 0.5, "no snapshots yet", ha="center", va="center", transform=rate_axis.transAxes)
    for axis in (rate_axis, items_axis):
        axis.tick_params(labelsize=7)
    figure.autofmt_xdate(rotation=30)
    rate_axis.set_title("Drift: daily rate and open items", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def chart_markdown(png: bytes) -> str:
    return f"![drift trend](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def summary_markdown(summary: DriftSummary, png: bytes) -> str:
    """The chart plus the counts, for one Markdown metadata entry."""
    severities = " | ".join(f"{s} {summary.open_by_severity.get(s, 0)}" for s in SEVERITIES)
    return "\n".join(
        [
            chart_markdown(png),
            "",
            f"**Open drift items: {summary.open_items}** (image {summary.open_image}, config {summary.open_config})",
            "",
            f"By severity: {severities}",
            "",
            f"This run: {summary.opened} opened, {summary.closed} closed.",
        ]
    )


def summary_metadata(summary: DriftSummary) -> dict[str, Any]:
    """Plain values keyed by metadata name; `drift_trend` is Markdown, the rest are numbers."""
    latest_rate = summary.trend[-1].drift_rate if summary.trend else 0.0
    return {
        "open_items": summary.open_items,
        **{f"open_{severity}": summary.open_by_severity.get(severity, 0) for severity in SEVERITIES},
        "open_image_drift": summary.open_image,
        "open_config_drift": summary.open_config,
        "opened_this_run": summary.opened,
        "closed_this_run": summary.closed,
        "drift_rate": round(latest_rate, 4),
        "drift_trend": summary_markdown(summary, trend_chart_png(summary.trend)),
    }
