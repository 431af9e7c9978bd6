"""The production container setup agrees with the code it runs (no Docker needed).

``docker-compose.yml`` and ``Dockerfile`` name CLI commands, settings variables and search
attributes that live in Python. Nothing here runs a container; each test reads the files and
checks one promise against the real objects (the typer app, the settings model, the search
attribute keys), so a rename on either side fails here instead of on a user's machine.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import BaseModel, SecretStr

import momoflow.cli
from momoflow.search_attributes import ALL_KEYS
from momoflow.settings import Settings, TemporalSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

#: The services that run momoflow itself (the rest is Temporal and its database).
MOMOFLOW_SERVICES = ("worker", "gateway")
#: Settings that have a safe local default but must be given explicitly in production.
REQUIRED_IN_PRODUCTION = (
    "MOMOFLOW_PUBLIC_URL",
    "MOMOFLOW_API_KEYS",
    "MOMOFLOW_FINGERPRINT_SECRET",
    "MOMOFLOW_CAURISFLUX__BASE_URL",
    "MOMOFLOW_CAURISFLUX__PUBLIC_KEY",
    "MOMOFLOW_CAURISFLUX__SECRET_KEY",
    "MOMOFLOW_CAURISFLUX__WEBHOOK_SECRET",
)
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


def test_momoflow_waits_for_search_attributes(services: dict[str, dict[str, Any]]) -> None:
    for name in MOMOFLOW_SERVICES:
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
    for name in MOMOFLOW_SERVICES:
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


def test_production_secrets_are_required_not_defaulted(
    services: dict[str, dict[str, Any]],
) -> None:
    delimiter = str(Settings.model_config.get("env_nested_delimiter"))
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    required = set(REQUIRED_IN_PRODUCTION) | set(
        _secrets_with_dev_defaults(Settings, prefix, delimiter)
    )
    envs = {name: _environment(services[name]) for name in MOMOFLOW_SERVICES}
    for name, env in envs.items():
        assert env.get("MOMOFLOW_ENV") == "production", f"{name} is not in production mode"
        for variable in sorted(required):
            value = env.get(variable, "")
            assert re.fullmatch(rf"\$\{{{re.escape(variable)}:\?[^}}]+\}}", value), (
                f"{name}: {variable} must be required with ${{{variable}:?message}}, got {value!r}"
            )
    assert envs["worker"] == envs["gateway"], "worker and gateway must share one configuration"


def test_production_env_value_is_accepted_by_settings() -> None:
    env_field = Settings.model_fields["env"]
    assert "production" in typing.get_args(env_field.annotation)


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
    path = ROOT / compose["configs"][sources[target]]["file"]
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
