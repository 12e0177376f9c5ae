"""The drift numbers and trend chart the Dagster UI shows on drift_items, and the event wrapper
that attaches them once dbt has released the warehouse."""

from __future__ import annotations

import base64
import struct
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest
from dagster import AssetKey, AssetMaterialization, MetadataValue, Output

from qlrf_pipelines.assets.warehouse import with_drift_summary
from qlrf_pipelines.drift.report import (
    DriftSummary,
    TrendPoint,
    read_drift_summary,
    summary_markdown,
    summary_metadata,
    trend_chart_png,
)

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def small_warehouse(path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE drift_items (drift_id VARCHAR, drift_type VARCHAR, severity VARCHAR, status VARCHAR)")
        con.execute(
            "INSERT INTO drift_items VALUES "
            "('1', 'image_outdated', 'high', 'open'), ('2', 'config', 'high', 'open'), "
            "('3', 'config', 'critical', 'open'), ('4', 'config', 'low', 'closed'), ('5', 'image_unknown', 'medium', 'closed')"
        )
        con.execute("CREATE TABLE drift_reports (site_id VARCHAR, opened BIGINT, closed BIGINT, reported_at TIMESTAMPTZ)")
        con.execute(
            "INSERT INTO drift_reports VALUES ('a', 4, 0, ?), ('a', 1, 2, ?), ('b', 2, 1, ?), ('c', NULL, NULL, ?)",
            [T0, T0 + timedelta(days=1), T0 + timedelta(days=1), T0 - timedelta(days=30)],
        )
        con.execute("CREATE TABLE drift_trends (day DATE, severity VARCHAR, drift_rate DOUBLE, open_items BIGINT)")
        for offset in range(100):
            day = date(2026, 8, 1) + timedelta(days=offset)
            con.execute("INSERT INTO drift_trends VALUES (?, 'all', ?, ?)", [day, offset / 200, offset])
            con.execute("INSERT INTO drift_trends VALUES (?, 'high', 0.5, 1)", [day])


def test_read_drift_summary(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    small_warehouse(path)

    summary = read_drift_summary(path, since=T0 + timedelta(hours=1))

    assert summary.open_by_severity == {"critical": 1, "high": 2, "medium": 0, "low": 0}
    assert (summary.open_image, summary.open_config, summary.open_items) == (1, 2, 3)
    assert (summary.opened, summary.closed) == (3, 3)  # only the rows this run reported
    assert len(summary.trend) == 90 and summary.trend[0].day < summary.trend[-1].day
    assert summary.trend[-1] == TrendPoint(date(2026, 11, 8), 0.495, 99)
    everything = read_drift_summary(path)
    assert (everything.opened, everything.closed) == (7, 3)


def test_trend_chart_is_a_small_png():
    trend = [TrendPoint(date(2026, 11, 1) + timedelta(days=i), 0.1 * (i % 5), 10 + i) for i in range(30)]
    png = trend_chart_png(trend)
    assert png_size(png) == (480, 192)
    assert len(png) < 60_000
    assert png_size(trend_chart_png([])) == (480, 192)  # no data yet still draws


def test_summary_metadata_and_markdown():
    summary = DriftSummary(
        open_by_severity={"critical": 1, "high": 2, "medium": 0, "low": 4},
        open_image=3, open_config=4, opened=5, closed=6,
        trend=(TrendPoint(date(2026, 11, 1), 0.25, 7), TrendPoint(date(2026, 11, 2), 0.125, 7)),
    )
    values = summary_metadata(summary)
    assert {k: v for k, v in values.items() if k != "drift_trend"} == {
        "open_items": 7, "open_critical": 1, "open_high": 2, "open_medium": 0, "open_low": 4,
        "open_image_drift": 3, "open_config_drift": 4, "opened_this_run": 5, "closed_this_run": 6,
        "drift_rate": 0.125,
    }
    markdown = values["drift_trend"]
    assert markdown.startswith("![drift trend](data:image/png;base64,")
    encoded = markdown.split("base64,", 1)[1].split(")", 1)[0]
    assert png_size(base64.b64decode(encoded)) == (480, 192)
    assert "**Open drift items: 7** (image 3, config 4)" in markdown
    assert "critical 1 | high 2 | medium 0 | low 4" in markdown and "5 opened, 6 closed" in markdown
    assert summary_markdown(DriftSummary(), b"x").startswith("![drift trend](data:image/png;base64,eA==)")


class Log:
    def __init__(self):
        self.warnings = []

    def warning(self, message):
        self.warnings.append(message)


def test_wrapper_yields_drift_items_last_with_the_summary(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    small_warehouse(path)
    events = [
        Output(None, output_name="assets"),
        Output(None, output_name="drift_items", metadata={"rows": 5}),
        AssetMaterialization(asset_key=AssetKey(["drift_items"]), metadata={"rows": 5}),
        Output(None, output_name="drift_trends"),
    ]
    stream = with_drift_summary(iter(events), path, Log())

    # events before drift_items pass straight through; from drift_items on they wait for the end
    # of the build and keep their order (a multi-asset yields its assets in topological order)
    assert next(stream).output_name == "assets"
    out = list(stream)

    assert [getattr(e, "output_name", None) for e in out] == ["drift_items", None, "drift_trends"]
    assert "open_items" not in out[2].metadata
    for event in out[:2]:
        assert event.metadata["rows"] == MetadataValue.int(5)  # dbt's own metadata is kept
        assert event.metadata["open_items"] == MetadataValue.int(3)
        assert event.metadata["opened_this_run"] == MetadataValue.int(0)  # every fake row predates this run
        assert event.metadata["drift_trend"].value.startswith("![drift trend](data:image/png;base64,")


def test_wrapper_never_fails_the_build_on_metadata(tmp_path):
    log = Log()
    events = [Output(None, output_name="drift_items"), Output(None, output_name="assets")]
    out = list(with_drift_summary(iter(events), tmp_path / "missing" / "warehouse.duckdb", log))
    assert [e.output_name for e in out] == ["drift_items", "assets"]
    assert "open_items" not in out[0].metadata and "drift summary metadata skipped" in log.warnings[0]


def test_wrapper_passes_held_events_on_when_the_build_fails(tmp_path):
    def failing():
        yield Output(None, output_name="drift_items")
        yield Output(None, output_name="drift_reports")
        raise RuntimeError("dbt build failed")

    out = []
    with pytest.raises(RuntimeError, match="dbt build failed"):
        for event in with_drift_summary(failing(), tmp_path / "warehouse.duckdb", Log()):
            out.append(event)
    assert [e.output_name for e in out] == ["drift_items", "drift_reports"]
