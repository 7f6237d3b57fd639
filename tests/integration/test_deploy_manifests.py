"""The deployment files (deploy/helm/values.yaml, deploy/k8s/, deploy/compose.yaml) checked without a cluster or a
Docker engine: against the official schemas (the Dagster chart's values schema, the Compose Specification), and
for what they mean: secrets only by reference, ports on 127.0.0.1, every variable the production profile needs
handed to the processes that run platform code, and every image command an entrypoint mode or a real module."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import jsonschema
import pytest
import yaml

from platform_assets.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
K8S = {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
       for path in sorted((DEPLOY / "k8s").glob("*.yaml"))}
ENTRYPOINT = (DEPLOY / "entrypoint.sh").read_text()
ENV_EXAMPLE = DEPLOY / "production.env.example"
PRODUCTION_DOC = (PROJECT_ROOT / "docs" / "production.md").read_text()
IMAGE_REPOSITORY = "registry.example.org/fraud-platform"
# The chart's Dagster instance replaces deploy/production/dagster.yaml on Kubernetes: its variables are the
# compose file's business only (the chart takes the same settings from postgresql.* and its Secret).
INSTANCE_FILE_VARS_PREFIX = ("DAGSTER_HOME", "PLATFORM_DAGSTER_")
# Issue 19's scale-out interfaces (settings.py reads them; the S3 clients read the AWS variables natively).
SCALE_OUT_VARS = {"PLATFORM_SHARED_STORE_URL", "PLATFORM_WAREHOUSE_CATALOG", "PLATFORM_DASK_SCHEDULER",
                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_S3"}


# ---------------------------------------------------------------------------------------------------- helpers
def _env_file_keys() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


SECRET_VARS = set(_env_file_keys())


def _doc_rows() -> list[list[str]]:
    """The rows of docs/production.md's variable tables: [variable cell, required cell, example, meaning]."""
    rows = []
    for line in PRODUCTION_DOC.splitlines():
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _doc_required_vars() -> set[str]:
    names = set()
    for cells in _doc_rows():
        if len(cells) >= 2 and re.match(r"(yes|with celery)", cells[1], re.IGNORECASE):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]))
    return names


def _doc_secret_vars() -> set[str]:
    """The variables the tables mark *secret*: a row whose example says so, or names followed by "(*secrets*)"."""
    names = set()
    for cells in _doc_rows():
        if len(cells) >= 3 and "*secret" in cells[2]:
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]))
        for listed in re.findall(r"((?:`[A-Z][A-Z0-9_]+`(?:, | and )?)+) \(\*secrets?\*\)", " ".join(cells)):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", listed))
    return names


def _resource_env_vars(environ: dict[str, str]) -> set[str]:
    """The dg.EnvVar names the production resources resolve at run time (platform_assets/resources/profile.py)."""
    from platform_assets.resources.profile import build_resources
    from platform_assets.settings import load_settings

    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dg.EnvVar):
            found.add(value.env_var_name)
        elif isinstance(value, dg.ConfigurableResource):
            for field in value._get_non_default_public_field_values().values():
                walk(field)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for resource in build_resources(load_settings(environ)).values():
        walk(resource)
    return found


def _required_production_vars(tmp_path: Path) -> set[str]:
    """What a process running platform code needs in production, read from the code and the docs: the documented
    required variables, the instance file's `env:` references, the Celery executor's, the resources' dg.EnvVars
    (with every optional secret configured, so none is left out) and issue 19's scale-out variables."""
    instance = yaml.safe_load((DEPLOY / "production" / "dagster.yaml").read_text())
    instance_vars = set(re.findall(r"'env': '([A-Z_0-9]+)'", str(instance)))
    executor_vars = set(re.findall(r'\{"env": "([A-Z_0-9]+)"\}',
                                   (PROJECT_ROOT / "platform_assets" / "definitions.py").read_text()))
    # the compose file's environment (the profile as deployed), every secret set, a data dir of the test's own
    environ = {**COMPOSE["x-platform-env"], **{name: "configured" for name in SECRET_VARS},
               "PLATFORM_DATA_DIR": str(tmp_path)}
    resource_vars = _resource_env_vars(environ)
    assert {"PLATFORM_FEAST_REGISTRY_URL", "PLATFORM_REDIS_URL", "MLFLOW_TRACKING_URI"} <= resource_vars
    assert {"PLATFORM_DAGSTER_PG_PASSWORD", "PLATFORM_DAGSTER_STORAGE"} <= instance_vars
    assert {"PLATFORM_CELERY_BROKER_URL", "PLATFORM_CELERY_BACKEND_URL"} <= executor_vars
    # PLATFORM_WEBHOOK_URL / the source systems' URLs are optional integrations: needed only once configured.
    optional = {"PLATFORM_WEBHOOK_URL", "PLATFORM_SOURCE_DATABASE_URL", "PLATFORM_CHARGEBACK_API_TOKEN"}
    return (_doc_required_vars() | instance_vars | executor_vars | resource_vars | SCALE_OUT_VARS) - optional


def _entrypoint_modes() -> set[str]:
    block = ENTRYPOINT.split('case "${mode}" in', 1)[1].split("esac", 1)[0]
    return {label for label in re.findall(r"^\s{4}([a-z][a-z-]*)\)", block, re.MULTILINE)}


def _platform_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("image") == "fraud-platform:local"}


def _compose_env(service: dict) -> dict[str, str]:
    """A compose service's environment: its `environment` plus the env file's keys (the example stands for it)."""
    env = dict(service.get("environment") or {})
    if service.get("env_file"):
        env.update({key: "<env file>" for key in SECRET_VARS})
    return env


def _k8s_containers() -> dict[str, dict]:
    containers = {}
    for docs in K8S.values():
        for doc in docs:
            if doc["kind"] in ("Deployment", "StatefulSet"):
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    containers[doc["metadata"]["name"]] = container
    return containers


def _k8s_env(container: dict) -> dict[str, dict]:
    """A container's variables: name -> its EnvVar entry ({"value": ...} or {"valueFrom": ...}); config maps
    expanded from deploy/k8s (platform-config)."""
    env = {}
    config_maps = {doc["metadata"]["name"]: doc["data"] for docs in K8S.values() for doc in docs
                   if doc["kind"] == "ConfigMap"}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update({key: {"value": value} for key, value in config_maps[source["configMapRef"]["name"]].items()})
    for entry in container.get("env", []):
        env[entry["name"]] = entry
    return env


def _helm_code_server_env() -> dict[str, dict]:
    deployment = VALUES["dagster-user-deployments"]["deployments"][0]
    return _k8s_env({"envFrom": [{"configMapRef": ref} for ref in deployment["envConfigMaps"]],
                     "env": deployment["env"]})


def _schema_dir() -> Path | None:
    for candidate in (os.environ.get("PLATFORM_DEPLOY_SCHEMA_DIR"), PROJECT_ROOT / "tests" / "fixtures" /
                      "deploy_schemas", PROJECT_ROOT.parent / "shared" / "19" / "schemas"):
        if candidate and (Path(candidate) / "dagster-helm-values.schema.json").exists():
            return Path(candidate)
    return None


def _schema(name: str) -> dict:
    if name == "compose-spec.json":
        # The compose specification's schema, as check-jsonschema (a dev dependency) ships it in its wheel.
        from importlib.resources import files

        return json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath(name).read_text())
    directory = _schema_dir()
    if directory is None or not (directory / name).exists():
        pytest.skip(f"{name} not found: see tests/fixtures/deploy_schemas/SOURCE.md (third-party schema, not in git)")
    return json.loads((directory / name).read_text())


def _chart_validator() -> jsonschema.Validator:
    """The chart's values schema for an override file: without `required` (the chart's defaults fill them) and
    without the $refs to kubernetesjsonschema.dev (offline); everything else as Helm applies it."""
    def strip(node):
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items()
                    if key != "required" and not (key == "$ref" and not value.startswith("#"))}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return jsonschema.Draft202012Validator(strip(_schema("dagster-helm-values.schema.json")))


# ------------------------------------------------------------------------------------------------ schemas
def test_helm_values_fit_the_official_chart_schema():
    validator = _chart_validator()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(VALUES)]
    assert not errors, errors
    # The check bites: a misplaced key and a wrong type fail.
    broken = json.loads(json.dumps(VALUES))
    broken["dagsterWebserver"]["replicas"] = 1
    broken["runLauncher"]["type"] = "CeleryRunLauncher"
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "'replicas' was unexpected" in messages and "CeleryRunLauncher" in messages


def test_compose_file_fits_the_compose_specification():
    schema = _schema("compose-spec.json")
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert not errors, errors
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    assert any("intervall" in e.message for e in validator.iter_errors(broken))


def test_docker_compose_renders_the_file(tmp_path):
    """`docker compose config` (the client's own parser and interpolation; no engine needed) where installed."""
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False) \
        if docker else None
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here (the docker client alone has no `compose`)")
    env_file = tmp_path / "production.env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    out = subprocess.run([docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--format", "json"],
                         capture_output=True, text=True, check=False, timeout=60,
                         env={**os.environ, "PLATFORM_ENV_FILE": str(env_file)})
    assert out.returncode == 0, out.stderr
    rendered = json.loads(out.stdout)
    assert set(rendered["services"]) == set(COMPOSE["services"])


# ------------------------------------------------------------------------------------------------ secrets
CREDENTIAL_IN_URL = re.compile(r"://[^\s/:@]*:[^\s@]+@")
PASSWORD_PARAM = re.compile(r"password\s*=\s*(?!CHANGE_ME)[^\s,;\"']+", re.IGNORECASE)


@pytest.mark.parametrize("path", ["helm/values.yaml", "compose.yaml", "compose/postgres-init.sh",
                                  "compose/workspace.yaml", *(f"k8s/{name}" for name in K8S)])
def test_no_credential_is_written_in_a_deployment_file(path):
    text = (DEPLOY / path).read_text()
    assert not CREDENTIAL_IN_URL.search(text), CREDENTIAL_IN_URL.search(text)
    assert not PASSWORD_PARAM.search(text), PASSWORD_PARAM.search(text)
    for name in SECRET_VARS:
        # a secret variable is never given a value in the file (YAML mapping or `name: X` + `value:` entry)
        assert not re.search(rf"^\s*{name}\s*[:=]\s*\S", text, re.MULTILINE), name
        assert not re.search(rf"name: {name}\n\s*value:", text), name


def test_the_env_example_holds_placeholders_only_and_the_real_file_stays_out_of_git_and_images():
    pairs = _env_file_keys()
    secret_docs = _doc_secret_vars()
    assert secret_docs - {"MLFLOW_TRACKING_URI"} <= set(pairs), secret_docs - set(pairs)
    for key, value in pairs.items():
        assert "CHANGE_ME" in value, f"{key} has a value that is not a placeholder"
        # the secret part of a URL or connection string is the placeholder itself
        for secret in re.findall(r"://[^:/@]*:([^@]+)@|password=([^\s,]+)", value):
            assert "CHANGE_ME" in "".join(secret), key
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/production.env"], cwd=PROJECT_ROOT, check=False)
    assert ignored.returncode == 0, "deploy/production.env is not git-ignored"
    dockerignore = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert "deploy/production.env" in dockerignore  # COPY deploy would otherwise bake it into the image
    for service in COMPOSE["services"].values():
        for entry in service.get("env_file", []):
            assert entry["path"].endswith("production.env}") and entry["required"] is True


def test_kubernetes_secrets_are_secret_references():
    """Every secret a pod gets is a secretKeyRef (or a whole Secret): in the chart's values and the manifests."""
    deployments = {"helm code server": _helm_code_server_env(),
                   **{name: _k8s_env(container) for name, container in _k8s_containers().items()}}
    for owner in ("dagsterWebserver", "dagsterDaemon"):
        deployments[f"helm {owner}"] = {e["name"]: e for e in VALUES[owner]["env"]}
    for where, env in deployments.items():
        for name, entry in env.items():
            if name in SECRET_VARS or name == "DAGSTER_PG_PASSWORD":
                assert "value" not in entry, f"{where}: {name} has a literal value"
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] in ("platform-secrets", "platform-dagster-postgresql"), (where, ref)
    assert VALUES["postgresql"]["postgresqlPassword"] == ""
    assert VALUES["generatePostgresqlPasswordSecret"] is False
    assert VALUES["global"]["postgresqlSecretName"] == "platform-dagster-postgresql"
    assert VALUES["generateCeleryConfigSecret"] is False  # no broker URL (with its password) in a chart Secret


# -------------------------------------------------------------------------------------------------- ports
def test_every_published_port_binds_loopback_and_nothing_else_is_exposed():
    published = []
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
            published.append(name)
    assert {"webserver", "mlflow", "scoring"} <= set(published)
    assert not {"postgres", "redis"} & set(published)  # servers stay on the compose network
    for docs in K8S.values():
        for doc in docs:
            if doc["kind"] == "Service":
                assert doc["spec"]["type"] == "ClusterIP", doc["metadata"]["name"]
    assert VALUES["ingress"]["enabled"] is False and VALUES["dagsterWebserver"]["service"]["type"] == "ClusterIP"


# -------------------------------------------------------------------------------------- required variables
def test_every_required_variable_reaches_the_compose_processes_that_run_platform_code(tmp_path):
    required = _required_production_vars(tmp_path)
    for name in ("code-server", "celery-worker", "daemon", "webserver"):
        missing = required - set(_compose_env(COMPOSE["services"][name]))
        assert not missing, f"{name} lacks {sorted(missing)}"
    # the mlflow server proxies the artifacts: its own backend store and S3 destination
    mlflow_env = _compose_env(COMPOSE["services"]["mlflow"])
    assert "MLFLOW_BACKEND_STORE_URI" in mlflow_env and mlflow_env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert COMPOSE["services"]["code-server"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_every_required_variable_reaches_the_kubernetes_pods_that_run_platform_code(tmp_path):
    required = {name for name in _required_production_vars(tmp_path) if not name.startswith(INSTANCE_FILE_VARS_PREFIX)}
    for where, env in {"helm code server (and its run workers)": _helm_code_server_env(),
                       "celery-worker": _k8s_env(_k8s_containers()["celery-worker"])}.items():
        missing = required - set(env)
        assert not missing, f"{where} lacks {sorted(missing)}"
    deployment = VALUES["dagster-user-deployments"]["deployments"][0]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # run workers inherit that environment
    # The Celery workers open the chart's instance (its ConfigMap) with the chart's password variable.
    worker = _k8s_containers()["celery-worker"]
    assert _k8s_env(worker)["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "postgresql-password"
    mounts = {mount["mountPath"] for mount in worker["volumeMounts"]}
    assert f"{VALUES['global']['dagsterHome']}/dagster.yaml" in mounts


# ---------------------------------------------------------------------------------------- launcher, executor
def test_helm_runs_each_run_as_a_kubernetes_job_whose_steps_go_to_our_celery_workers():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert VALUES["postgresql"]["enabled"] is False and VALUES["redis"]["enabled"] is False
    assert VALUES["rabbitmq"]["enabled"] is False and VALUES["flower"]["enabled"] is False
    config = yaml.safe_load((DEPLOY / "k8s" / "platform-config.yaml").read_text())["data"]
    assert config["PLATFORM_EXECUTOR"] == "celery" and config["PLATFORM_PROFILE"] == "production"
    from platform_assets.definitions import build_executor
    from platform_assets.settings import load_settings

    executor = build_executor(load_settings({"PLATFORM_PROFILE": "production"}))
    assert executor.name == "celery"  # the executor the workers of deploy/k8s/celery-worker.yaml serve
    workers = next(doc for doc in K8S["celery-worker.yaml"] if doc["kind"] == "Deployment")
    assert workers["spec"]["replicas"] >= 2
    # the duckdb_writer pool, as in deploy/production/dagster.yaml
    instance = yaml.safe_load((DEPLOY / "production" / "dagster.yaml").read_text())
    assert VALUES["additionalInstanceConfig"]["concurrency"]["pools"] == instance["concurrency"]["pools"]
    queued = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert VALUES["dagsterDaemon"]["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert VALUES["computeLogManager"]["type"] == "S3ComputeLogManager"  # no step log on a pod's disk


def test_every_pod_requests_resources_and_runs_as_the_image_user():
    deployment = VALUES["dagster-user-deployments"]["deployments"][0]
    requested = [deployment["resources"], VALUES["dagsterWebserver"]["resources"],
                 VALUES["dagsterDaemon"]["resources"], VALUES["runLauncher"]["config"]["k8sRunLauncher"]["resources"]]
    requested += [container["resources"] for container in _k8s_containers().values()]
    for resources in requested:
        assert {"cpu", "memory"} <= set(resources["requests"]), resources
    assert deployment["podSecurityContext"]["runAsUser"] == 10001
    for docs in K8S.values():
        for doc in docs:
            if doc["kind"] in ("Deployment", "StatefulSet"):
                assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


# --------------------------------------------------------------------------------- commands and entrypoint
def test_every_image_command_is_an_entrypoint_mode():
    modes = _entrypoint_modes()
    assert {"serve", "evidently", "webserver", "daemon", "code-server", "celery-worker", "velocity-consumer",
            "mlflow-server", "dask-scheduler", "dask-worker"} <= modes
    for name, service in _platform_services().items():
        assert service["command"][0] in modes, name
    for name, container in _k8s_containers().items():
        assert container["image"].startswith(IMAGE_REPOSITORY), name
        assert container["args"][0] in modes, name
    assert VALUES["dagster-user-deployments"]["deployments"][0]["image"]["repository"] == IMAGE_REPOSITORY


def test_the_chart_s_dagster_commands_pass_through_the_entrypoint(tmp_path):
    """The chart starts our image with args `dagster code-server start -h 0.0.0.0 -p 3030 <codeServerArgs>` (and
    K8sRunLauncher's Jobs with `dagster api execute_run ...`): the entrypoint runs them as given."""
    env = {**os.environ, "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
           "PLATFORM_HOME": str(PROJECT_ROOT), "TMPDIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "home")}
    args = VALUES["dagster-user-deployments"]["deployments"][0]["codeServerArgs"]
    out = subprocess.run([str(DEPLOY / "entrypoint.sh"), "dagster", "code-server", "start", "--help"],
                         capture_output=True, text=True, env=env, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    for option in args[::2]:
        assert option in out.stdout, option
    module = args[args.index("--module-name") + 1]
    assert importlib.util.find_spec(module) is not None
    assert hasattr(importlib.import_module(module), args[args.index("--attribute") + 1])


def test_modules_the_entrypoint_starts_exist():
    for module in re.findall(r"python -m ([a-z_.]+)", ENTRYPOINT) + ["dagster_celery.app"]:
        assert importlib.util.find_spec(module) is not None, module
    code_server = re.search(r"-m (platform_assets\.[a-z_.]+) -a (\w+)", ENTRYPOINT)
    assert hasattr(importlib.import_module(code_server.group(1)), code_server.group(2))
    for executable in ("dagster", "dagster-webserver", "dagster-daemon", "celery", "mlflow", "dask"):
        assert (PROJECT_ROOT / ".venv" / "bin" / executable).exists(), executable
    assert (DEPLOY / "production" / "dagster_celery_config.py").exists()  # what the celery-worker mode loads


# ---------------------------------------------------------------------------------------- compose topology
def test_compose_starts_the_whole_production_profile():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "minio", "minio-init", "mlflow", "dask-scheduler", "dask-worker", "code-server",
            "webserver", "daemon", "celery-worker", "scoring", "velocity-consumer"} <= set(services)
    assert services["dask-worker"]["deploy"]["replicas"] == 2
    assert services["celery-worker"]["deploy"]["replicas"] == 2
    for service in _platform_services().values():
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert (DEPLOY / service["build"]["context"] / "Dockerfile").exists()
    # the webserver and daemon load the code location from the code server's gRPC port
    workspace = yaml.safe_load((DEPLOY / "compose" / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert workspace["host"] == "code-server" and workspace["port"] == 4000
    assert "PLATFORM_CODE_SERVER_PORT:-4000" in ENTRYPOINT
    env = services["code-server"]["environment"]
    assert env["DAGSTER_WORKSPACE"] == "/opt/platform/deploy/compose/workspace.yaml"
    assert env["PLATFORM_DASK_SCHEDULER"] == "tcp://dask-scheduler:8786" and "PLATFORM_DASK_PORT:-8786" in ENTRYPOINT
    assert env["PLATFORM_SHARED_STORE_URL"].startswith("s3://platform") and "mb --ignore-existing platform/platform" \
        in " ".join(services["minio-init"]["command"])
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    # MLflow proxies the artifacts (no client needs a shared path)
    assert "--serve-artifacts" in ENTRYPOINT and "--artifacts-destination" in ENTRYPOINT
    init = (DEPLOY / "compose" / "postgres-init.sh").read_text()
    for database in ("platform_dagster", "platform_feast", "platform_mlflow", "platform_warehouse"):
        assert f"CREATE DATABASE {database}" in init
    assert env["PLATFORM_DAGSTER_PG_DB"] == "platform_dagster"


def test_compose_waits_on_healthy_dependencies():
    services = COMPOSE["services"]
    for name, service in services.items():
        if name != "minio-init":
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] in ("service_healthy", "service_completed_successfully"), (name, dependency)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
    for name in ("code-server", "celery-worker", "daemon", "webserver"):
        assert {"postgres", "redis", "mlflow", "minio-init"} <= set(services[name]["depends_on"]), name
    assert services["webserver"]["depends_on"]["code-server"]["condition"] == "service_healthy"
    # the image's healthcheck probes what each mode runs (deploy/healthcheck.py reads the mode the entrypoint wrote)
    healthcheck = (DEPLOY / "healthcheck.py").read_text()
    for service in _platform_services().values():
        mode = service["command"][0]
        assert mode in ("webserver",) or f'mode == "{mode}"' in healthcheck, mode
