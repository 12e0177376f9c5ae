"""SLSA provenance v1 in an in-toto Statement v1 (``https://slsa.dev/provenance/v1``)."""

from __future__ import annotations

from typing import Any

from qlrf_pipelines.supply_chain._common import ImageIdentity, arr, dedupe, obj, text
from qlrf_pipelines.supply_chain.detect import SLSA_PROVENANCE_V1
from qlrf_pipelines.supply_chain.records import BuildRecord, ImportRejected, normalize_digest

_COMMIT_KEYS = ("gitCommit", "sha1")


def _subjects(doc: dict) -> list[tuple[str | None, str | None]]:
    out = []
    for i, s in enumerate(arr(doc.get("subject"), "subject")):
        s = obj(s, f"subject[{i}]")
        digest = obj(s.get("digest"), f"subject[{i}].digest")
        out.append((text(s.get("name")), normalize_digest(digest.get("sha256"))))
    return out


def find_image(doc: dict) -> ImageIdentity:
    subjects = _subjects(doc)
    digests = [d for _, d in subjects if d]
    names = [n for n, _ in subjects if n]
    return ImageIdentity(digests[0] if digests else None, dedupe([*digests[1:], *names]))


def _strip_git(uri: str) -> tuple[str, str | None]:
    """``git+https://host/repo@refs/heads/main`` -> (``https://host/repo``, ``refs/heads/main``)."""
    u = uri.removeprefix("git+")
    ref = None
    scheme, sep, rest = u.partition("://")
    if sep and "@" in rest:
        rest, ref = rest.rsplit("@", 1)
        u = f"{scheme}://{rest}"
    return u, ref


def _source(external: dict, materials: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    repo = ref = commit = None
    workflow = external.get("workflow")
    if isinstance(workflow, dict):  # GitHub Actions buildType
        repo, ref = text(workflow.get("repository")), text(workflow.get("ref"))
    source = external.get("source")
    if repo is None and isinstance(source, str):
        repo, ref = _strip_git(source)
    elif repo is None and isinstance(source, dict):
        if text(source.get("uri")):
            repo, ref = _strip_git(source["uri"])
        commit = next((text(obj(source.get("digest"), "source.digest").get(k)) for k in _COMMIT_KEYS
                       if text(obj(source.get("digest"), "source.digest").get(k))), None)
    if repo is None:
        repo = text(external.get("repository"))
        ref = ref or text(external.get("ref"))
    # the commit: the git material matching the source repo, else the first git material
    git = [m for m in materials if any(k in m["digest"] for k in _COMMIT_KEYS)]
    match = [m for m in git if repo and _strip_git(m["uri"])[0].rstrip("/").removesuffix(".git")
             == repo.rstrip("/").removesuffix(".git")]
    chosen = (match or git or [None])[0]
    if chosen is not None:
        commit = commit or next(chosen["digest"][k] for k in _COMMIT_KEYS if k in chosen["digest"])
        if repo is None:
            repo, ref = _strip_git(chosen["uri"])
        elif ref is None:
            ref = _strip_git(chosen["uri"])[1]
    return repo, ref, commit


def parse(doc: dict, image_ref: str | None) -> list[BuildRecord]:
    predicate = obj(doc.get("predicate"), "predicate")
    build_def = obj(predicate.get("buildDefinition"), "predicate.buildDefinition")
    run = obj(predicate.get("runDetails"), "predicate.runDetails")
    builder_id = text(obj(run.get("builder"), "predicate.runDetails.builder").get("id"))
    build_type = text(build_def.get("buildType"))
    if not build_type:
        raise ImportRejected("SLSA provenance has no predicate.buildDefinition.buildType")
    if not builder_id:
        raise ImportRejected("SLSA provenance has no predicate.runDetails.builder.id")
    materials: list[dict[str, Any]] = []
    for i, dep in enumerate(arr(build_def.get("resolvedDependencies"), "predicate.buildDefinition.resolvedDependencies")):
        dep = obj(dep, f"resolvedDependencies[{i}]")
        digest = {str(k): str(v) for k, v in obj(dep.get("digest"), f"resolvedDependencies[{i}].digest").items()}
        uri = text(dep.get("uri")) or text(dep.get("name"))
        if uri or digest:
            materials.append({"uri": uri, "digest": digest})
    repo, ref, commit = _source(obj(build_def.get("externalParameters"), "externalParameters"), materials)
    meta = obj(run.get("metadata"), "predicate.runDetails.metadata")
    subjects = [(n, d) for n, d in _subjects(doc) if d] or [(None, None)]
    return [
        BuildRecord(
            image_ref=image_ref or digest,  # type: ignore[arg-type]
            builder_id=builder_id,
            build_type=build_type,
            source_repo=repo,
            source_ref=ref,
            source_commit=commit,
            materials=[dict(m, digest=dict(m["digest"])) for m in materials],
            invocation_id=text(meta.get("invocationId")),
            started_on=text(meta.get("startedOn")),
            finished_on=text(meta.get("finishedOn")),
            predicate_type=SLSA_PROVENANCE_V1,
            subject_name=name,
            subject_digest=digest,
        )
        for name, digest in subjects
    ]
