"""Great Expectations 1.x, called directly: one ephemeral context per evaluation run, one pandas
data asset per check, the population dataframe as a whole-dataframe batch.

Results are asked for in COMPLETE format with `unexpected_index_column_names=["asset_id"]`, so
every unexpected row names its asset (not a sample of 20). GX is imported only here, and only
when a gx check runs: it takes seconds to import and nothing at definition load needs it. The
context is in-memory (no files, no GX Cloud, analytics off) and progress bars are off.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from qlrf_pipelines.compliance.catalog import Expectation

ID_COLUMN = "asset_id"


@dataclass
class SuiteOutcome:
    """What one suite found: failing asset id -> details, and expectations that raised."""

    failing: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


class GxValidator:
    """One ephemeral GX context for a whole evaluation run (creating one costs more than a check)."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.source = self.context.data_sources.add_pandas("qlrf_warehouse")

    def suite(self, name: str, expectations: Sequence[Expectation]):
        """The GX suite of a check (raises on an unknown expectation type or bad kwargs)."""
        return self._gx.ExpectationSuite(
            name=name, expectations=[{"type": e.type, "kwargs": dict(e.kwargs)} for e in expectations]
        )

    def validate(self, name: str, frame, expectations: Sequence[Expectation]) -> SuiteOutcome:
        suite = self.suite(name, expectations)
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ID_COLUMN]}
        )
        outcome = SuiteOutcome()
        for item in result.results:
            kind = item.expectation_config.type
            info = item.exception_info or {}
            raised = [v for v in ([info] if "raised_exception" in info else info.values()) if isinstance(v, dict)]
            problems = [v.get("exception_message") or "raised" for v in raised if v.get("raised_exception")]
            if problems:
                outcome.errors.append(f"{kind}: {'; '.join(str(p) for p in problems)}")
                continue
            if item.success:
                continue
            column = item.expectation_config.kwargs.get("column")
            indexed = (item.result or {}).get("unexpected_index_list")
            if indexed:
                for row in indexed:
                    asset_id = str(row.get(ID_COLUMN))
                    value = f"{column} = {_shown(row.get(column))}" if column in row else "unexpected"
                    outcome.failing.setdefault(asset_id, []).append(f"{kind}: {value}")
            else:
                # A table-level expectation (row count, columns, ...): the failing thing is the table.
                observed = (item.result or {}).get("observed_value")
                outcome.failing.setdefault("", []).append(f"{kind}: observed {_shown(observed)}")
        return outcome
