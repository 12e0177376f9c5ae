"""moto's ThreadedMotoServer on a free 127.0.0.1 port, once per pytest session.

Use it from a test module by importing the fixtures (pytest finds fixtures in the module's
namespace):

    from tests.emulators.aws.moto_server import aws_emulator, aws_estate  # noqa: F401

`aws_emulator` is the running server (`.url` is the endpoint for `Site.endpoint_url` and boto3);
`aws_estate` is the same server seeded once with `tests.emulators.aws.seed.seed_estate`.
moto keeps its state in this process, so the estate is shared by every test of the session:
tests must not change it (an account reached through AssumeRole is a separate, empty estate).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.aws.seed import PUBLIC_AMIS, Estate, seed_estate


class MotoEmulator:
    """moto's server in a daemon thread. The public AMI catalogue is cut down to PUBLIC_AMIS
    (moto's own catalogue costs ~2.5 s per region on first use)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._server = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_log_level: int | None = None
        self.url = ""

    def start(self) -> "MotoEmulator":
        amis = self.workdir / "public-amis.json"
        amis.write_text(json.dumps(PUBLIC_AMIS))
        # Read by moto when an EC2 region backend is first created (lazily, by the first request).
        self._setenv("MOTO_AMIS_PATH", str(amis))
        werkzeug = logging.getLogger("werkzeug")  # one access-log line per request otherwise
        self._saved_log_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)

        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._saved_log_level is not None:
            logging.getLogger("werkzeug").setLevel(self._saved_log_level)

    def _setenv(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value


@pytest.fixture(scope="session")
def aws_emulator(tmp_path_factory) -> Iterator[MotoEmulator]:
    emulator = MotoEmulator(tmp_path_factory.mktemp("moto")).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def aws_estate(aws_emulator) -> Estate:
    return seed_estate(aws_emulator.url)
