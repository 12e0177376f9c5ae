"""The refresh schedule: discover every site and rebuild the warehouse on a cron."""

from __future__ import annotations

import os

from dagster import DefaultScheduleStatus, ScheduleDefinition

from qlrf_pipelines.jobs.refresh import refresh_estate_job

DEFAULT_CRON = "0 */6 * * *"


def refresh_estate_schedule() -> ScheduleDefinition:
    return ScheduleDefinition(
        name="refresh_estate_schedule",
        job=refresh_estate_job,
        cron_schedule=os.environ.get("QLRF_REFRESH_CRON", DEFAULT_CRON),
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description="Discover all sites and rebuild the warehouse (QLRF_REFRESH_CRON, default every 6 hours).",
    )
