"""The README's first command, run as a newcomer would: in a fresh copy of the repository.

To stay fast and offline-friendly it reuses the already-installed dependencies (a fresh virtual
environment that sees this environment's site-packages), but it still installs the project,
prepares the dbt manifest from scratch and runs the main job.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def fresh_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_readme_has_exactly_two_setup_commands():
    assert readme_commands() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_first_command_runs_the_main_job_in_a_fresh_directory(tmp_path):
    checkout = fresh_copy(tmp_path / "checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site_packages = next((venv / "lib").glob("python*/site-packages"))
    (site_packages / "reuse_installed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Console scripts of the reused dependencies (a real install puts them in the venv's bin/).
    for script in ("dbt", "dagster", "duckdb"):
        (venv / "bin" / script).symlink_to(Path(sys.executable).parent / script)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_HOME", "VIRTUAL_ENV"))}
    env["QLRF_VENV"] = str(venv)
    done = subprocess.run(
        readme_commands()[0].split(), cwd=checkout, env=env, capture_output=True, text=True, timeout=900
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Sites (7)" in output and "Assets per provider" in output and "Drift items" in output
    assert f"duckdb {checkout / '.qlrf' / 'warehouse.duckdb'}" in output
    assert "drift_sensor: plan_remediation_job run" in output and "succeeded" in output
    assert (checkout / ".qlrf" / "warehouse.duckdb").exists()
    assert (checkout / ".qlrf" / "control.sqlite").exists()
    assert (checkout / ".qlrf" / "dagster" / "dagster.yaml").exists()
    assert (checkout / "dbt" / "target" / "manifest.json").exists()
