"""AWS live discovery: the EC2 reads of one site through the AWS SDK (boto3's botocore clients
and paginators), assembled into the payload `connectors/aws.normalize` reads (see its docstring
for the shape).

What it calls, and why
----------------------
For every region of the site (`site.location` then `site.regions`), with one EC2 client each:

* `ec2:DescribeInstances` (paginated): every instance, the assets. Pages are merged into one
  `{"Reservations": [...]}` per region.
* `ec2:DescribeImages` with `Owners=["self"]` (paginated): the account's own AMIs, where the golden
  images live (tags `qlrf:family` / `qlrf:version` / `qlrf:status`).
* `ec2:DescribeImages` again, filtered on `image-id` (chunks of 200 ids, IncludeDeprecated), for
  the AMIs instances run that the account does not own (marketplace, vendor, shared), so every
  `image_ref` can be resolved. A filter rather than `ImageIds`: an id that no longer exists is
  simply absent instead of failing the whole request with InvalidAMIID.NotFound.
* `ec2:DescribeVolumes` (paginated): every EBS volume, whose attachments and encryption give each
  instance its disk_encryption.
* `kms:ListAliases` (paginated): the region's KMS aliases; the targets of `alias/aws/*` are the
  AWS managed keys, which tells a volume under `aws/ebs` (platform_managed) from one under a
  customer managed key. Optional: a credential without kms:ListAliases (AccessDenied) leaves it
  out of the payload, and encrypted volumes then count as platform_managed at most.
* `ec2:DescribeVpcs`, `ec2:DescribeSubnets` (paginated): stored beside the others under their
  operation names for configuration drift; `normalize` ignores them.

Regions are fetched concurrently (one thread per region, at most `max_concurrency`); the calls
within a region run in order. Timestamps are kept as the ISO 8601 text EC2 sends (the botocore
session's timestamp parser is the identity), so the payload is plain JSON. Sessions are botocore
sessions (what a boto3.Session wraps), one per site, sharing one data loader so the EC2 service
model is read once per process rather than once per site.

`check` makes one `sts:GetCallerIdentity` call (falling back to `ec2:DescribeRegions` when the
STS endpoint cannot be reached) and reports the account and the regions the site covers.

Credentials (per site, never shared between sites)
--------------------------------------------------
1. access keys from the environment variables named by `credentials.access_key_id_env` and
   `credentials.secret_access_key_env`; else
2. the named profile `credentials.profile`; else
3. boto3's default chain (environment, shared files, SSO, container / instance role).
Then, when `credentials.role_arn` is set, `sts:AssumeRole` (session name "qlrf-discovery"; one
hour of temporary credentials, not refreshed: a discovery is expected to finish well within it).

Site settings (all optional)
----------------------------
timeout_seconds   connect and read timeout of every HTTP request (FetchContext, default 30)
max_attempts      botocore adaptive retries: total attempts per request (default 8); throttling
                  (RequestLimitExceeded), 5xx and connection errors / timeouts are retried
page_size         MaxResults of each paginated call (5..1000; default the API maximum)
max_concurrency   regions fetched at once (default 8)

API-call accounting
-------------------
`ctx.count("<service>:<Operation>")` runs from botocore's `before-send` event, which fires once
per HTTP request *attempt*: every page is counted, and so is every retry of a page (a throttled
request that succeeds on its third attempt counts 3). That is the cost against the account's
EC2 request-rate budget, which is what the benchmark reports.

Errors
------
Every failure (but the optional kms:ListAliases being denied) raises
ConnectorError(site, "<region> ec2:<Operation>" | "<region> kms:ListAliases" | "sts:<Operation>" |
"credentials" | "settings", message) with the AWS error code and message, or "timed out after
Ns", or the endpoint that could not be reached. Credential values (key id, secret, session
token) are scrubbed from every message and no exception is chained.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ConnectionError as SDKConnectionError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext

READ_PERMISSIONS: dict[str, list[str]] = {
    "iam_actions": [
        "ec2:DescribeInstances",
        "ec2:DescribeImages",
        "ec2:DescribeVolumes",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        # optional: tells AWS managed keys from customer managed ones (disk_encryption)
        "kms:ListAliases",
        "sts:GetCallerIdentity",
        # only by `qlrf sites check`, when the STS endpoint cannot be reached
        "ec2:DescribeRegions",
    ],
    # Only when the site names credentials.role_arn: the *source* credentials need this on the
    # role, and the role needs the actions above (AmazonEC2ReadOnlyAccess covers the ec2 ones).
    "iam_actions_for_role_arn": ["sts:AssumeRole"],
}

ROLE_SESSION_NAME = "qlrf-discovery"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_MAX_CONCURRENCY = 8
MIN_PAGE_SIZE = 5
MAX_PAGE_SIZE = {  # the MaxResults ceiling of each operation
    "DescribeInstances": 1000,
    "DescribeImages": 1000,
    "DescribeVolumes": 500,
    "DescribeVpcs": 1000,
    "DescribeSubnets": 1000,
    "ListAliases": 100,
}
IMAGE_ID_CHUNK = 200  # EC2 accepts at most 200 values in one filter
ACCESS_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
THROTTLING_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}


# -- settings ---------------------------------------------------------------------------------


def _int_setting(ctx: FetchContext, name: str, default: int | None, low: int, high: int) -> int | None:
    value = ctx.site.settings.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ctx.fail("settings", f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _regions(ctx: FetchContext) -> list[str]:
    return list(dict.fromkeys([ctx.site.location, *ctx.site.regions]))


def _config(ctx: FetchContext) -> Config:
    return Config(
        retries={"mode": "adaptive", "total_max_attempts": _max_attempts(ctx)},  # max_attempts here would count retries
        connect_timeout=ctx.timeout_s,
        read_timeout=ctx.timeout_s,
        user_agent_extra="qlrf-discovery",
    )


def _max_attempts(ctx: FetchContext) -> int:
    return _int_setting(ctx, "max_attempts", DEFAULT_MAX_ATTEMPTS, 1, 50)


# -- session ----------------------------------------------------------------------------------


class _Session:
    """The botocore session of one site (after AssumeRole when the site names a role), the credential values to scrub from messages, and the
    clients it made (each counting its requests into the context)."""

    def __init__(self, ctx: FetchContext):
        self.ctx = ctx
        self.secrets: list[str] = []
        self.config = _config(ctx)
        self._count_lock = threading.Lock()
        self.botocore = self._source_session()
        if ctx.site.credentials.role_arn:
            self.botocore = self._assume_role(ctx.site.credentials.role_arn)

    def _source_session(self) -> botocore.session.Session:
        ctx, creds = self.ctx, self.ctx.site.credentials
        if creds.access_key_id_env or creds.secret_access_key_env:
            values = {}
            for field in ("access_key_id_env", "secret_access_key_env"):
                name = getattr(creds, field)
                value = ctx.secret(field)
                if not name:
                    raise ctx.fail("credentials", f"credentials.{field} is required with the other access key field")
                if not value:
                    raise ctx.fail("credentials", f"environment variable {name} (credentials.{field}) is not set")
                values[field] = value
            self.secrets += values.values()
            session = _botocore_session()
            session.set_credentials(values["access_key_id_env"], values["secret_access_key_env"])
            return session
        # The named profile, else the default chain. Both are looked up lazily by botocore:
        # resolving the credentials here names the problem before any region is tried.
        session = self._guard("credentials", lambda: _botocore_session(profile=creds.profile or None))
        resolved = self._guard("credentials", session.get_credentials)
        if resolved is None:
            raise ctx.fail("credentials", _NO_CREDENTIALS)
        frozen = self._guard("credentials", resolved.get_frozen_credentials)
        self.secrets += [v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v]
        return session

    def _assume_role(self, role_arn: str) -> botocore.session.Session:
        sts = self.client("sts", self.ctx.site.location)
        answer = self._guard(
            "sts:AssumeRole", lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)
        )
        temporary = answer["Credentials"]
        self.secrets += [temporary["AccessKeyId"], temporary["SecretAccessKey"], temporary["SessionToken"]]
        session = _botocore_session()
        session.set_credentials(temporary["AccessKeyId"], temporary["SecretAccessKey"], temporary["SessionToken"])
        return session

    def client(self, service: str, region: str) -> Any:
        """A client of the current session that counts every HTTP request attempt (see the
        module docstring)."""
        site = self.ctx.site
        client = self._guard(
            f"{region} {service} client",
            lambda: self.botocore.create_client(
                service,
                region_name=region,
                endpoint_url=site.endpoint_url or None,
                verify=site.verify_ssl,
                config=self.config,
            ),
            also=(ValueError,),  # botocore: "Invalid endpoint: ..." (a malformed endpoint_url)
        )
        prefix = client.meta.service_model.signing_name  # the IAM action prefix: ec2, sts
        event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"
        count, lock = self.ctx.count, self._count_lock

        def on_send(event_name: str, **_: Any) -> None:
            with lock:
                count(f"{prefix}:{event_name.rsplit('.', 1)[-1]}")
            # returning None lets botocore send the request

        client.meta.events.register(event, on_send)
        return client

    # -- errors -------------------------------------------------------------------------------

    def _guard(self, call: str, action: Callable[[], Any], also: tuple[type[Exception], ...] = ()) -> Any:
        try:
            return action()
        except (ClientError, BotoCoreError, *also) as exc:
            raise self.fail(call, exc) from None

    def fail(self, call: str, exc: Exception) -> ConnectorError:
        return self.ctx.fail(call, self.scrub(self.describe(exc)))

    def scrub(self, message: str) -> str:
        for secret in sorted(set(self.secrets), key=len, reverse=True):
            if secret:
                message = message.replace(secret, "***")
        return message

    def describe(self, exc: Exception) -> str:
        """The user-facing text of an SDK error: the AWS error code and message, or what went
        wrong on the wire. No credential, request or signature detail."""
        attempts = _max_attempts(self.ctx)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            text = f"{code}: {error.get('Message') or 'no message'}"
            tried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
            if code in THROTTLING_CODES:
                return f"{text} (still throttled after {tried} attempts; raise the site setting max_attempts)"
            return f"{text} (after {tried} attempts)" if tried > 1 else text
        if isinstance(exc, ReadTimeoutError):
            return (
                f"timed out after {self.ctx.timeout_s:g}s waiting for an answer from {_endpoint(exc)} "
                f"({attempts} attempt{'s' if attempts > 1 else ''}; site setting timeout_seconds)"
            )
        if isinstance(exc, ConnectTimeoutError):
            return (
                f"timed out after {self.ctx.timeout_s:g}s connecting to {_endpoint(exc)} "
                f"({attempts} attempt{'s' if attempts > 1 else ''}; site setting timeout_seconds)"
            )
        if isinstance(exc, EndpointConnectionError):
            return f"could not connect to {_endpoint(exc)} ({attempts} attempt{'s' if attempts > 1 else ''})"
        if isinstance(exc, HTTPClientError):
            return f"connection to {_endpoint(exc)} failed: {exc.kwargs.get('error') or exc}"
        if isinstance(exc, NoCredentialsError):
            return _NO_CREDENTIALS
        if isinstance(exc, PartialCredentialsError):
            return f"incomplete AWS credentials: {exc}"
        if isinstance(exc, ProfileNotFound):
            return f"AWS profile {exc.kwargs.get('profile')!r} (credentials.profile) is not configured"
        return f"{type(exc).__name__}: {exc}"


_loader_lock = threading.Lock()
_shared_loader: Any = None


def _botocore_session(profile: str | None = None) -> botocore.session.Session:
    """A fresh botocore session (credentials are never shared between sites) that shares one
    data loader with the others: a new loader re-reads the EC2 model, ~0.3 s of each site.
    Its timestamp parser is the identity, so the payload keeps EC2's ISO 8601 text."""
    global _shared_loader
    session = botocore.session.Session(profile=profile)
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _shared_loader)
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_keep_text)
    return session


def _keep_text(text: str) -> str:
    return text


_NO_CREDENTIALS = (
    "no AWS credentials found: name access key environment variables (credentials.access_key_id_env / "
    "secret_access_key_env) or a profile (credentials.profile), or configure boto3's default chain"
)


def _endpoint(exc: BotoCoreError) -> str:
    return str(exc.kwargs.get("endpoint_url") or "the endpoint")


# -- fetch ------------------------------------------------------------------------------------


def _pages(client: Any, operation: str, method: str, key: str, page_size: int | None, **params: Any) -> list:
    size = min(page_size or MAX_PAGE_SIZE[operation], MAX_PAGE_SIZE[operation])
    items: list = []
    for page in client.get_paginator(method).paginate(**params, PaginationConfig={"PageSize": size}):
        items.extend(page.get(key) or ())
    return items


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _fetch_region(session: _Session, region: str, client: Any, kms: Any, page_size: int | None) -> dict:
    operation = "DescribeInstances"
    try:
        reservations = _pages(client, operation, "describe_instances", "Reservations", page_size)

        operation = "DescribeImages"
        images = _pages(client, operation, "describe_images", "Images", page_size, Owners=["self"])
        known = {image.get("ImageId") for image in images}
        missing = sorted(
            {
                instance["ImageId"]
                for reservation in reservations
                for instance in reservation.get("Instances") or ()
                if instance.get("ImageId") and instance["ImageId"] not in known
            }
        )
        for chunk in _chunks(missing, IMAGE_ID_CHUNK):
            images += _pages(
                client,
                operation,
                "describe_images",
                "Images",
                page_size,
                Filters=[{"Name": "image-id", "Values": chunk}],
                IncludeDeprecated=True,
            )

        operation = "DescribeVolumes"
        volumes = _pages(client, operation, "describe_volumes", "Volumes", page_size)
        operation = "DescribeVpcs"
        vpcs = _pages(client, operation, "describe_vpcs", "Vpcs", page_size)
        operation = "DescribeSubnets"
        subnets = _pages(client, operation, "describe_subnets", "Subnets", page_size)
    except (ClientError, BotoCoreError) as exc:
        raise session.fail(f"{region} ec2:{operation}", exc) from None
    calls = {
        "DescribeInstances": {"Reservations": reservations},
        "DescribeImages": {"Images": images},
        "DescribeVolumes": {"Volumes": volumes},
        "DescribeVpcs": {"Vpcs": vpcs},
        "DescribeSubnets": {"Subnets": subnets},
    }
    try:
        calls["ListAliases"] = {"Aliases": _pages(kms, "ListAliases", "list_aliases", "Aliases", page_size)}
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ACCESS_DENIED_CODES:
            raise session.fail(f"{region} kms:ListAliases", exc) from None
    except BotoCoreError as exc:
        raise session.fail(f"{region} kms:ListAliases", exc) from None
    return calls


def fetch(ctx: FetchContext) -> dict:
    """Every region of the site: instances, images (own and used), volumes, VPCs, subnets, KMS aliases."""
    page_size = _int_setting(ctx, "page_size", None, MIN_PAGE_SIZE, 1000)
    workers = _int_setting(ctx, "max_concurrency", DEFAULT_MAX_CONCURRENCY, 1, 64)
    session = _Session(ctx)
    regions = _regions(ctx)
    # Clients are made here, in one thread (a session is not thread-safe; its clients are).
    clients = {region: (session.client("ec2", region), session.client("kms", region)) for region in regions}
    with ThreadPoolExecutor(max_workers=min(workers, len(regions)), thread_name_prefix="qlrf-aws") as pool:
        futures = {
            region: pool.submit(_fetch_region, session, region, *clients[region], page_size) for region in regions
        }
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
    if errors:
        raise errors[0]  # the first region (in site order) that failed
    return {"regions": {region: futures[region].result() for region in regions}}


# -- check ------------------------------------------------------------------------------------


def check(ctx: FetchContext) -> str:
    """One cheap authenticated read: who the credentials are, and the regions discovery covers."""
    session = _Session(ctx)
    regions = _regions(ctx)
    sts = session.client("sts", ctx.site.location)
    try:
        identity = sts.get_caller_identity()
    except (SDKConnectionError, HTTPClientError) as unreachable:
        # STS not reachable (refused, dropped, timed out; e.g. a network with only an EC2 VPC
        # endpoint): prove EC2 access instead.
        reason = session.scrub(session.describe(unreachable))
        ec2 = session.client("ec2", ctx.site.location)
        enabled = session._guard(
            f"{ctx.site.location} ec2:DescribeRegions",
            lambda: [r["RegionName"] for r in ec2.describe_regions()["Regions"]],
        )
        absent = [region for region in regions if region not in enabled]
        if absent:
            raise ctx.fail(
                f"{ctx.site.location} ec2:DescribeRegions", f"region(s) not enabled for these credentials: {', '.join(absent)}"
            ) from None
        return f"account unknown (sts:GetCallerIdentity: {reason}), {len(regions)} regions: {', '.join(regions)}"
    except (ClientError, BotoCoreError) as exc:
        raise session.fail("sts:GetCallerIdentity", exc) from None
    account = identity.get("Account")
    if ctx.site.account and account != ctx.site.account:
        raise ctx.fail(
            "sts:GetCallerIdentity",
            f"the credentials are for account {account}, but the site is account {ctx.site.account}",
        )
    return f"account {account} ({identity.get('Arn')}), {len(regions)} regions: {', '.join(regions)}"
