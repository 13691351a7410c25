"""docs/k8s: every manifest is valid against the Kubernetes schema, and every ckpt command in them parses.

The schema check is kubernetes-validate's bundled JSON schemas, strict (unknown fields fail), offline;
docs/research-23.md §3 explains why this one (kubectl's dry run needs a server, kubeconform cannot be
installed here). Nothing is applied to a cluster and no ckpt command is run: the commands are parsed by
the CLI's own click objects, so an option that does not exist, a wrong value type or a missing argument
fails here.
"""

from __future__ import annotations

import copy
import fnmatch
import glob
import re
import shlex
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from ckpt.backends.core.errors import ExitCode
from ckpt.backends.core.toml import load_toml
from ckpt.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "docs" / "k8s"
KUBERNETES = "1.33.0"  # backoffLimitPerIndex and maxFailedIndexes are GA from 1.33 (docs/kubernetes.md)
FILES = sorted(K8S.glob("*.yaml"))
DOCS = [(path, at, doc) for path in FILES for at, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc]
RETRYABLE = {ExitCode.UNAVAILABLE, ExitCode.LOCKED}  # a later attempt can succeed: never FailJob/FailIndex


def _id(item: tuple[Path, int, dict[str, Any]]) -> str:
    path, _, doc = item
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if doc["kind"] == "Job":
        return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def _job_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]  # type: ignore[no-any-return]
    return doc["spec"] if doc["kind"] == "Job" else None


WORKLOADS = [item for item in DOCS if _pod_spec(item[2]) is not None]
CONTAINERS = [
    (item, container)
    for item in WORKLOADS
    for container in _pod_spec(item[2])["containers"]  # type: ignore[index]
]


def test_the_manifests_are_there() -> None:
    kinds = {doc["kind"] for _, _, doc in DOCS}
    assert {"Job", "CronJob", "ConfigMap"} <= kinds, kinds
    assert any(_job_spec(doc).get("completionMode") == "Indexed" for _, _, doc in WORKLOADS)  # type: ignore[union-attr]


@pytest.mark.parametrize("item", DOCS, ids=[_id(item) for item in DOCS])
def test_valid_against_the_kubernetes_schema(item: tuple[Path, int, dict[str, Any]]) -> None:
    kubernetes_validate.validate(item[2], KUBERNETES, strict=True)


def test_the_schema_check_can_fail() -> None:
    """A misspelt field is caught (only in strict mode: the plain schemas allow unknown keys)."""
    job = next(doc for _, _, doc in DOCS if doc["kind"] == "Job" and "backoffLimitPerIndex" in doc["spec"])
    broken = copy.deepcopy(job)
    broken["spec"]["backoffLimitPerIndx"] = broken["spec"].pop("backoffLimitPerIndex")
    with pytest.raises(kubernetes_validate.ValidationError, match="backoffLimitPerIndx"):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    wrong_type = copy.deepcopy(job)
    wrong_type["spec"]["parallelism"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES, strict=True)


# --- the ckpt commands -------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _defined_env(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The variables Kubernetes expands in ``$(VAR)``, with a stand-in value each."""
    names = {var["name"]: "x" for var in container.get("env", [])}
    if _job_spec(doc).get("completionMode") == "Indexed":  # type: ignore[union-attr]
        names["JOB_COMPLETION_INDEX"] = "0"  # the Job controller adds it to every container
    return names


def _ckpt_argv(doc: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """The container's ckpt arguments (after ``ckpt``) with ``$(VAR)`` expanded as the kubelet does it."""
    words = [*container.get("command", []), *container.get("args", [])]
    if words[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        assert len(words) == 3, words
        words = shlex.split(words[2])
        if words[0] == "exec":
            words = words[1:]
    assert words and words[0] == "ckpt", f"not a ckpt command: {words}"
    env = _defined_env(doc, container)
    for word in words:
        for name in _VAR.findall(word):
            assert name in env, f"$({name}) is not defined in the container: Kubernetes would leave it as it is"
    return [_VAR.sub(lambda match: env[match[1]], word) for word in words[1:]]


def _parse(argv: list[str]) -> Any:
    """The context the CLI builds for ``ckpt ARGV``, down to the command that would run; nothing runs."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("ckpt", list(argv), resilient_parsing=False)
    while hasattr(command, "resolve_command"):  # a group: its subcommand takes the rest
        protected = getattr(ctx, "_protected_args", None)
        rest = [*(ctx.protected_args if protected is None else protected), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=False)
    return ctx


@pytest.mark.parametrize(
    ("item", "container"), CONTAINERS, ids=[f"{_id(item)}:{container['name']}" for item, container in CONTAINERS]
)
def test_every_ckpt_command_parses(
    item: tuple[Path, int, dict[str, Any]], container: dict[str, Any], tmp_path: Path
) -> None:
    argv = _ckpt_argv(item[2], container)
    # A glob (sh -c) becomes the files it would match: two stand-ins under tmp_path.
    expanded: list[str] = []
    for word in argv:
        if "*" in word:
            pattern = str(tmp_path / word.lstrip("/"))
            Path(pattern).parent.mkdir(parents=True, exist_ok=True)
            for index in range(2):
                Path(pattern.replace("*", str(index))).write_text("{}")
            expanded += sorted(glob.glob(pattern))
        else:
            expanded.append(word)
    try:
        ctx = _parse(expanded)
    except SystemExit as exc:  # the root group reports its own errors and exits
        pytest.fail(f"ckpt {shlex.join(argv)}: exit {exc.code}")
    except Exception as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
        pytest.fail(f"ckpt {shlex.join(argv)}: {message}")
    assert ctx.command is not None


@pytest.mark.parametrize(("item", "container"), CONTAINERS, ids=[_id(item) for item, _ in CONTAINERS])
def test_contexts_and_secrets_line_up(item: tuple[Path, int, dict[str, Any]], container: dict[str, Any]) -> None:
    """Each ``@name`` is a context in the ConfigMap that CKPT_CONTEXT_FILE points at, and each ``${VAR}``
    in its URL is in the container's environment (else ckpt exits 2 in the pod)."""
    path, _, doc = item
    argv = _ckpt_argv(doc, container)
    used = {word[1:] for word in argv if word.startswith("@")}
    if not used:
        return
    env = {var["name"]: var for var in container.get("env", [])}
    context_file = Path(env["CKPT_CONTEXT_FILE"]["value"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == context_file.parent)
    volume = next(v for v in _pod_spec(doc)["volumes"] if v["name"] == mount["name"])  # type: ignore[index]
    configmap = next(
        d
        for p, _, d in DOCS
        if p == path and d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"]
    )
    contexts = _toml(configmap["data"][context_file.name])["contexts"]
    for name in used:
        assert name in contexts, f"@{name} is not a context in {configmap['metadata']['name']}"
        for var in re.findall(r"\$\{(\w+)\}", contexts[name]["url"]):
            assert var in env and "secretKeyRef" in env[var].get("valueFrom", {}), f"${{{var}}} is not from a Secret"


def _toml(text: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "config.toml"
        file.write_text(text)
        return load_toml(file)  # the reader ckpt uses for contexts


def test_shards_reports_and_exit_codes_agree() -> None:
    """N is written twice (completions, --shard auto/N); the merge Job reads the volume and the files the
    shards write; every podFailurePolicy uses ckpt's exit codes and never gives up on one a retry can cure."""
    indexed = [(item, c) for item, c in CONTAINERS if _job_spec(item[2]).get("completionMode") == "Indexed"]  # type: ignore[union-attr]
    assert indexed
    for (_, _, doc), container in indexed:
        spec = doc["spec"]
        argv = _ckpt_argv(doc, container)
        shard = argv[argv.index("--shard") + 1]
        assert shard == f"auto/{spec['completions']}", (shard, spec["completions"])
        assert spec["parallelism"] <= spec["completions"]
        assert spec["template"]["spec"]["restartPolicy"] == "Never"
        report = container["args"][container["args"].index("--report") + 1]
        assert "{shard}" in report or "$(JOB_COMPLETION_INDEX)" in report, "every shard needs a file of its own"
        written = report.replace("{shard}", f"7-of-{spec['completions']}").replace("$(JOB_COMPLETION_INDEX)", "7")
        merges = [(d, c) for (_, _, d), c in CONTAINERS if _ckpt_argv(d, c)[:2] == ["report", "merge"]]
        assert merges, "no Job runs `ckpt report merge`"
        claim = _claim(doc, container, report)
        for merge_doc, merge_container in merges:
            pattern = next(w for w in _ckpt_argv(merge_doc, merge_container) if "*" in w)
            assert fnmatch.fnmatchcase(written, pattern), (written, pattern)
            assert _claim(merge_doc, merge_container, pattern) == claim
    for _, _, doc in WORKLOADS:
        spec = _job_spec(doc)
        names = {c["name"] for c in _pod_spec(doc)["containers"]}  # type: ignore[index]
        for rule in spec.get("podFailurePolicy", {}).get("rules", []):  # type: ignore[union-attr]
            codes = rule.get("onExitCodes")
            if codes is None:
                continue
            assert codes["containerName"] in names
            assert set(codes["values"]) <= {int(code) for code in ExitCode}, codes["values"]
            if rule["action"] in ("FailJob", "FailIndex"):
                assert not set(codes["values"]) & RETRYABLE, rule


def _claim(doc: dict[str, Any], container: dict[str, Any], path: str) -> str:
    """The PersistentVolumeClaim that holds ``path`` in this pod."""
    mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
    volume = next(v for v in _pod_spec(doc)["volumes"] if v["name"] == mount["name"])  # type: ignore[index]
    return volume["persistentVolumeClaim"]["claimName"]  # type: ignore[no-any-return]
