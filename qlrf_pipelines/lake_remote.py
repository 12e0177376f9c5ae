"""The lake on an S3-compatible object store: the shared source of truth, mirrored locally.

QLRF_LAKE_URI=s3://bucket/prefix (with QLRF_LAKE_ENDPOINT_URL for MinIO, moto, ...) puts the
lake in a bucket with the same layout as the local one:

    <prefix>/raw/<entity>/site=<site_id>/snapshot=<snapshot_id>.parquet

Writes (lake.write_snapshot) upload every entity file of a snapshot with a conditional create
(PutObject with If-None-Match: *), so a snapshot is never overwritten, and only then publish the
same files in the local lake. If an upload fails, the objects already uploaded for that snapshot
are deleted (best effort) and nothing is published locally.

Reads: dbt keeps reading QLRF_HOME/lake with DuckDB's read_parquet, because the httpfs extension
cannot be downloaded on locked-down machines. `sync_from_remote` copies into that mirror every
snapshot file it lacks before each warehouse build. Files are immutable, so the presence of a
file name is enough; the mirror never deletes anything.

What readers can still see (the window this design leaves open): a snapshot is several objects
and S3 has no multi-object transaction. A sync that lists the bucket while a writer is between
its first and last upload, or between a failed upload and the clean-up of the objects it already
uploaded, copies part of that snapshot, and the mirror keeps it. A writer that dies mid-upload
(killed, power loss) leaves its partial objects until someone removes them. Both are narrow
(seconds), and each partial file is still a complete, valid snapshot of its entity.

Credentials come from boto3's standard chain and never appear in an error, a log line or a
lake file; errors name the S3 call, the object URI and the endpoint only.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from qlrf_pipelines.lake import _SNAPSHOT_ID, LakeError, snapshot_path
from qlrf_pipelines.settings import LakeLocation, lake_location

_ENTITY = re.compile(r"^[a-z][a-z0-9_]*$")
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1024 * 1024
_EXISTS = "already exists: lake snapshots are never overwritten"
log = logging.getLogger(__name__)


class RemoteLakeError(LakeError):
    """An S3 call on the remote lake failed; the message names the call and the object, never a credential."""

    def __init__(self, call: str, target: str, reason: str):
        self.call = call
        self.target = target
        super().__init__(f"S3 {call} {target}: {reason}")


class SnapshotExists(RemoteLakeError):
    pass


@dataclass(frozen=True)
class SyncResult:
    downloaded: int
    already_present: int
    seconds: float
    skipped: int = 0  # keys under raw/ that are not snapshot files (ignored, never downloaded)


class RemoteLake:
    """A boto3 S3 client on one LakeLocation, with adaptive retries and timeouts.

    The client is created on first use, so building a RemoteLake (for example in a resource's
    setup) costs nothing and touches no network.
    """

    def __init__(
        self,
        location: LakeLocation,
        *,
        max_attempts: int = 5,
        connect_timeout: float = 5,
        read_timeout: float = 60,
    ):
        self.location = location
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._client = None
        self._session = None

    @classmethod
    def from_settings(cls, uri: str | None = None, endpoint_url: str | None = None, **options) -> "RemoteLake | None":
        try:
            location = lake_location(uri, endpoint_url)
        except ValueError as exc:
            raise LakeError(str(exc)) from None
        return cls(location, **options) if location else None

    def __repr__(self) -> str:
        return f"RemoteLake({self.location.describe()})"

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._session = boto3.session.Session()
            region = self.location.region or self._session.region_name or "us-east-1"
            self._client = self._session.client(
                "s3",
                region_name=region,
                endpoint_url=self.location.endpoint_url,
                config=Config(
                    retries={"mode": "adaptive", "max_attempts": self.max_attempts},
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    # Path-style works with every S3-compatible server (MinIO, moto, Ceph) and IP endpoints.
                    s3={"addressing_style": "path"} if self.location.endpoint_url else {},
                ),
            )
        return self._client

    # --- naming -------------------------------------------------------------------------------

    def key(self, entity: str, site_id: str, snapshot_id: str) -> str:
        return self.location.key(f"raw/{entity}/site={site_id}/snapshot={snapshot_id}.parquet")

    def object_uri(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    def lake_relative(self, key: str) -> PurePosixPath | None:
        """raw/<entity>/site=<id>/snapshot=<id>.parquet for a snapshot key, None for anything else
        (so a stray or hostile key can never write outside the mirror)."""
        raw = self.location.key("raw/")
        if not key.startswith(raw):
            return None
        parts = key[len(raw):].split("/")
        if len(parts) != 3:
            return None
        entity, site, name = parts
        site_id = site.removeprefix("site=")
        snapshot_id = name.removeprefix("snapshot=").removesuffix(".parquet")
        if (
            not _ENTITY.match(entity)
            or not site.startswith("site=")
            or not _SITE.match(site_id)
            or not name.startswith("snapshot=")
            or not name.endswith(".parquet")
            or not _SNAPSHOT_ID.match(snapshot_id)
        ):
            return None
        return PurePosixPath("raw", entity, site, name)

    # --- calls --------------------------------------------------------------------------------

    def _error(self, call: str, key: str | None, exc: Exception) -> RemoteLakeError:
        target = self.object_uri(key) if key is not None else self.location.uri
        if self.location.endpoint_url:
            target += f" at {self.location.endpoint_url}"
        return RemoteLakeError(call, target, self._redact(_describe(exc)))

    def _redact(self, text: str) -> str:
        """Belt and braces: botocore messages hold no secrets, but never let one through."""
        try:
            credentials = self._session.get_credentials() if self._session else None
            frozen = credentials.get_frozen_credentials() if credentials else None
        except Exception:  # noqa: BLE001 - redaction must never raise
            frozen = None
        for name in ("secret_key", "token", "access_key"):
            secret = getattr(frozen, name, None)
            if secret:
                text = text.replace(secret, "***")
        return text

    def put_new(self, path: Path, key: str) -> None:
        """Create `key` from a local file, only if no object has that key (never overwrite).

        S3 (since 2024), MinIO and moto >= 5 honour If-None-Match: * on PutObject and answer
        412 PreconditionFailed when the key exists. A server that answers 501 NotImplemented to
        the header gets head_object-then-put instead, with a warning: between the two calls a
        concurrent writer of the same key could still be overwritten on such a server.
        """
        try:
            with open(path, "rb") as body:
                self.client.put_object(Bucket=self.location.bucket, Key=key, Body=body, IfNoneMatch="*")
            return
        except Exception as exc:  # noqa: BLE001
            code = _error_code(exc)
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise SnapshotExists("PutObject", self.object_uri(key), _EXISTS) from None
            if code not in ("NotImplemented", "501"):
                raise self._error("PutObject", key, exc) from None
            log.warning(
                "%s does not support conditional PutObject (If-None-Match); falling back to HeadObject then PutObject",
                self.location.describe(),
            )
        # Fallback for servers without conditional writes: check, then put.
        if self.exists(key):
            raise SnapshotExists("PutObject", self.object_uri(key), _EXISTS)
        try:
            with open(path, "rb") as body:
                self.client.put_object(Bucket=self.location.bucket, Key=key, Body=body)
        except Exception as exc:  # noqa: BLE001
            raise self._error("PutObject", key, exc) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.location.bucket, Key=key)
            return True
        except Exception as exc:  # noqa: BLE001
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error("HeadObject", key, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.location.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            raise self._error("DeleteObject", key, exc) from None

    def iter_keys(self, relative_prefix: str = "raw/") -> Iterator[tuple[str, int]]:
        """Every (key, size) under <prefix>/<relative_prefix>, following list_objects_v2 pages."""
        prefix = self.location.key(relative_prefix)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], int(item.get("Size", 0))
        except Exception as exc:  # noqa: BLE001
            raise self._error("ListObjectsV2", prefix, exc) from None

    def download_new(self, key: str, dest: Path) -> bool:
        """Copy one object to `dest` atomically (hidden temp file, then link); False if `dest`
        appeared meanwhile. Never replaces an existing file."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            try:
                response = self.client.get_object(Bucket=self.location.bucket, Key=key)
                expected = int(response.get("ContentLength", -1))
                written = 0
                with open(temp, "wb") as out:
                    for chunk in response["Body"].iter_chunks(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
            except Exception as exc:  # noqa: BLE001
                raise self._error("GetObject", key, exc) from None
            if expected >= 0 and written != expected:
                raise RemoteLakeError("GetObject", self.object_uri(key), f"short read: {written} of {expected} bytes")
            try:
                os.link(temp, dest)
            except FileExistsError:
                return False
            return True
        finally:
            temp.unlink(missing_ok=True)


_remotes: dict[Path, RemoteLake] = {}


def use_remote(lake_dir: Path, remote: RemoteLake | None) -> None:
    """Make `remote` the object store behind `lake_dir` in this process (None forgets it).

    EstateResource calls this when a run initialises it (each run replaces the previous
    registration), so its lake_uri reaches every writer of its lake (discovery, failure records,
    the control export) without threading a client through each of them.
    """
    key = Path(lake_dir).resolve()
    if remote is None:
        _remotes.pop(key, None)
    else:
        _remotes[key] = remote


def remote_for(lake_dir: Path) -> RemoteLake | None:
    """The remote behind `lake_dir`: the one set with use_remote, else QLRF_LAKE_URI's, else None."""
    return _remotes.get(Path(lake_dir).resolve()) or RemoteLake.from_settings()


def upload_snapshot(remote: RemoteLake, site_id: str, snapshot_id: str, files: list[tuple[str, Path]]) -> list[str]:
    """Upload one snapshot's staged files ((entity, local path) pairs): all of them, or none.

    On a failure the objects this call already created are deleted (best effort), and LakeError
    names the site, the entity and the S3 call. Objects that existed before are never touched.
    """
    uploaded: list[str] = []
    for entity, path in files:
        key = remote.key(entity, site_id, snapshot_id)
        try:
            remote.put_new(path, key)
        except RemoteLakeError as exc:
            leftovers = []
            for done in uploaded:
                try:
                    remote.delete(done)
                except RemoteLakeError:
                    leftovers.append(remote.object_uri(done))
            outcome = "nothing published"
            if uploaded and not leftovers:
                outcome += " (the entity files uploaded before it were removed)"
            if leftovers:
                outcome = f"nothing published locally; remove the partial remote upload by hand: {', '.join(leftovers)}"
            raise LakeError(
                f"site {site_id}, entity {entity}, snapshot {snapshot_id}: remote lake upload failed, {outcome}: {exc}"
            ) from None
        uploaded.append(key)
    return uploaded


def sync_from_remote(lake_dir: Path, remote: RemoteLake, workers: int = 8) -> SyncResult:
    """Download every snapshot file of the remote lake that the local mirror lacks."""
    started = time.monotonic()
    missing: list[tuple[str, Path]] = []
    present = skipped = 0
    for key, _size in remote.iter_keys("raw/"):
        relative = remote.lake_relative(key)
        if relative is None:
            skipped += 1
            continue
        _raw, entity, site, name = relative.parts
        dest = snapshot_path(
            lake_dir, entity, site.removeprefix("site="), name.removeprefix("snapshot=").removesuffix(".parquet")
        )
        if dest.exists():
            present += 1
        else:
            missing.append((key, dest))
    downloaded = 0
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(missing)))) as pool:
            for fresh in pool.map(lambda item: remote.download_new(*item), missing):
                if fresh:
                    downloaded += 1
                else:
                    present += 1
    return SyncResult(downloaded, present, round(time.monotonic() - started, 3), skipped)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


def _describe(exc: Exception) -> str:
    """The error's class and message; botocore puts no credentials in either."""
    return f"{type(exc).__name__}: {exc}"
