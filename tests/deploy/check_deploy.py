#!/usr/bin/env python3
"""Checks the deployment files under deploy/ without a container engine or a cluster.

    check_deploy.py FRAMEPRESS_BINARY SOURCE_DIR {compose,k8s,dockerfile,dashboard,all}
    check_deploy.py compose-spec deploy/compose.yaml    (JSON of its framepress services, for compose_smoke.sh)

compose     deploy/compose*.yaml parse; every service, secret, config and volume they name is declared;
            files they mount exist; images are pinned; the framepress services pass only flags and
            FRAMEPRESS_* variables that `framepress <subcommand> --help` lists (for that subcommand), read
            their secrets from mounted secret files, and the worker pools cover every class.
k8s         deploy/k8s/*.yaml parse; kustomization.yaml lists every file; selectors, Services, PDBs and
            KEDA ScaledObjects point at what exists (consumer group and topic of the right class); probes,
            resources sized per class, grace periods; Secrets are placeholders; the ConfigMap's
            framepress.toml has only known keys, and `framepress serve` starts with it (values checked).
dockerfile  deploy/docker/Dockerfile: its stages, the non-root user, the HEALTHCHECK, the entry point and
            the default command's flags, the install paths the binary looks for the web page at.
dashboard   deploy/grafana-dashboard.json parses and charts only metrics src/metrics/metrics.h declares.

Prints one line per problem and exits 1 if there was any. Needs PyYAML (tests/deploy/tools.sh).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - reported, not raised
    print("check_deploy: PyYAML is missing (tests/deploy/tools.sh installs it)", file=sys.stderr)
    sys.exit(1)

try:
    import tomllib
except ImportError:  # Python < 3.11: the binary still checks the file when it starts with it
    tomllib = None

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


# ---- what the binary knows ------------------------------------------------------------------------


class Binary:
    """The flags and FRAMEPRESS_* variables of each subcommand, from `framepress <sub> --help`."""

    SUBCOMMANDS = ("serve", "api", "worker")

    def __init__(self, path, source_dir):
        self.path = path
        self.flags = {}
        self.env = {}
        self.help = {}
        for sub in self.SUBCOMMANDS:
            out = subprocess.run([path, sub, "--help"], capture_output=True, text=True, timeout=30)
            if out.returncode != 0:
                problem(path, f"`{sub} --help` exited with {out.returncode}: {out.stderr.strip()}")
            text = out.stdout
            self.help[sub] = text
            self.flags[sub] = set(re.findall(r"^\s+(--[a-z0-9][a-z0-9-]*)", text, re.M))
            env = set(re.findall(r"\b(FRAMEPRESS_[A-Z0-9_]+|[A-Z][A-Z0-9_]+)\b(?=[);,]|\s|$)", text))
            env = {e for e in env if e.startswith("FRAMEPRESS_")}
            # "FRAMEPRESS_KAFKA_SASL_PASSWORD or _FILE": the file form of a secret.
            env |= {m + "_FILE" for m in re.findall(r"(FRAMEPRESS_[A-Z0-9_]+) or _FILE", text)}
            self.env[sub] = env
        # The S3 credentials are read by the S3 store, not the option table: the header that documents
        # them is their schema (FRAMEPRESS_S3_ACCESS_KEY, …_FILE).
        header = Path(source_dir, "src/store/s3/s3_options.h").read_text()
        self.credentials = set(re.findall(r"\b(FRAMEPRESS_S3_[A-Z0-9_]+)\b", header))
        # Read by the image's HEALTHCHECK (deploy/docker/Dockerfile), not by framepress.
        self.image_variables = {"FRAMEPRESS_HEALTH_URL"}
        if not self.flags.get("serve"):
            problem(path, "no flags found in `serve --help`")

    def knows_env(self, sub, name):
        return name in self.env.get(sub, ()) or name in self.credentials or name in self.image_variables

    def key_to_flag(self, key):
        return "--" + key.replace(".", "-").replace("_", "-")


def check_invocation(where, binary, argv, environment, secret_files=None):
    """argv: the arguments after `framepress` (subcommand first); environment: name → value."""
    if not argv:
        problem(where, "no framepress subcommand given")
        return None
    sub = argv[0]
    if sub not in Binary.SUBCOMMANDS:
        problem(where, f"'{sub}' is not a server subcommand of framepress ({', '.join(Binary.SUBCOMMANDS)})")
        return None
    for arg in argv[1:]:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            if flag not in binary.flags[sub] and flag != "--config":
                problem(where, f"`framepress {sub}` has no flag {flag}")
    for name in environment:
        if name.startswith("FRAMEPRESS_") and not binary.knows_env(sub, name):
            problem(where, f"`framepress {sub}` does not read the variable {name}")
        if name.startswith("FRAMEPRESS_") and name.endswith("_FILE") and secret_files is not None:
            path = str(environment[name])
            if path not in secret_files:
                problem(where, f"{name}={path} is not a mounted secret file ({', '.join(sorted(secret_files)) or 'none'})")
    return sub


def flag_values(argv, flag):
    values = []
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_starts(where, binary, args, env_extra=None):
    """Starts `framepress serve ARGS` on a free port and a scratch data directory; passes when it becomes
    ready and stops with exit status 0 on SIGTERM. Checks values, not only names."""
    with tempfile.TemporaryDirectory(prefix="framepress-deploy-") as scratch:
        port = free_port()
        argv = [binary.path, "serve", *args, "--listen", f"127.0.0.1:{port}", "--data-dir", f"{scratch}/data",
                "--log-format", "text"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEPRESS_")}
        env.update(env_extra or {})
        log_path = Path(scratch, "log")
        with open(log_path, "w") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=scratch)
        try:
            deadline = time.monotonic() + 60
            ready = False
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                        ready = answer.status == 200
                except OSError:
                    pass
                if ready:
                    break
                time.sleep(0.2)
            if not ready:
                problem(where, f"`framepress serve` did not become ready with {' '.join(args)}:\n{log_path.read_text()}")
                return
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=30)
            if status != 0:
                problem(where, f"`framepress serve` exited with {status} after SIGTERM:\n{log_path.read_text()}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


# ---- compose --------------------------------------------------------------------------------------

COMPOSE_TOP = {"name", "services", "networks", "volumes", "secrets", "configs", "include"}
COMPOSE_SERVICE = {
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes",
    "secrets", "configs", "depends_on", "healthcheck", "deploy", "restart", "stop_grace_period", "stop_signal",
    "labels", "init", "user", "networks", "working_dir", "tmpfs", "ulimits", "logging", "profiles",
    "pull_policy", "read_only", "security_opt", "cap_drop", "cap_add", "hostname", "container_name",
    "extra_hosts", "shm_size", "mem_limit", "cpus",
}
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value, where):
    """Compose's variable interpolation with an empty environment: defaults apply, $$ is a dollar."""
    if isinstance(value, dict):
        return {k: interpolate(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, where) for v in value]
    if not isinstance(value, str):
        return value

    def replace(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, default = m.group(2), m.group(3)
        if op in (":-", "-"):
            return default
        if op in (":?", "?"):
            problem(where, f"${{{name}}} is required: `docker compose up` alone would fail")
            return ""
        problem(where, f"${name} has no default: `docker compose up` alone would leave it empty")
        return ""

    return INTERPOLATION.sub(replace, value)


def as_list(command):
    if command is None:
        return []
    if isinstance(command, str):
        return command.split()
    return [str(c) for c in command]


def as_env(environment):
    if environment is None:
        return {}
    if isinstance(environment, list):
        out = {}
        for item in environment:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def pinned(image):
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return bool(tag) and tag != "latest"


def check_compose(path, binary, source_dir):
    where = str(path.relative_to(source_dir))
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        problem(where, f"does not parse: {e}")
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        problem(where, "no services")
        return
    for key in doc:
        if key not in COMPOSE_TOP and not str(key).startswith("x-"):
            problem(where, f"unknown top-level key '{key}'")
    doc = interpolate(doc, where)
    base = path.parent
    services = doc["services"]
    declared = {kind: set((doc.get(kind) or {}).keys()) for kind in ("secrets", "configs", "volumes", "networks")}

    for kind in ("secrets", "configs"):
        for name, spec in (doc.get(kind) or {}).items():
            file = (spec or {}).get("file")
            if not file:
                problem(where, f"{kind} '{name}' has no file")
            elif not (base / file).is_file():
                problem(where, f"{kind} '{name}': {file} does not exist")

    framepress_services = {}
    classes = set()
    for name, svc in services.items():
        w = f"{where}: service {name}"
        for key in svc:
            if key not in COMPOSE_SERVICE and not str(key).startswith("x-"):
                problem(w, f"unknown key '{key}'")
        image = svc.get("image")
        build = svc.get("build")
        if not image and not build:
            problem(w, "neither image nor build")
        if build:
            context = base / (build.get("context", ".") if isinstance(build, dict) else build)
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            if not dockerfile.is_file():
                problem(w, f"build: {dockerfile} does not exist")
        elif image and not pinned(image):
            problem(w, f"image {image} is not pinned to a version")
        for secret in svc.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret.get("source")
            if secret_name not in declared["secrets"]:
                problem(w, f"secret '{secret_name}' is not declared")
        for config in svc.get("configs") or []:
            config_name = config if isinstance(config, str) else config.get("source")
            if config_name not in declared["configs"]:
                problem(w, f"config '{config_name}' is not declared")
        for volume in svc.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in declared["volumes"]:
                problem(w, f"volume '{source}' is not declared")
            if source.startswith("."):
                if not (base / source).exists():
                    problem(w, f"bind mount {source} does not exist")
        depends = svc.get("depends_on") or {}
        for target in depends if isinstance(depends, (list, dict)) else []:
            if target not in services:
                problem(w, f"depends on unknown service '{target}'")
            elif isinstance(depends, dict):
                condition = (depends[target] or {}).get("condition", "service_started")
                if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                    problem(w, f"unknown depends_on condition {condition}")
                if condition == "service_healthy":
                    hc = services[target].get("healthcheck") or {}
                    if hc.get("disable") or (not hc.get("test") and not services[target].get("build")):
                        problem(w, f"waits for {target} to be healthy, which has no healthcheck")
        hc = svc.get("healthcheck")
        if hc and not hc.get("disable"):
            test = hc.get("test")
            if not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL", "NONE")) and not isinstance(test, str):
                problem(w, f"healthcheck test {test!r} is not [CMD…], [CMD-SHELL, …] or a string")
        limits = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {})
        if "cpus" in limits:
            try:
                if float(limits["cpus"]) <= 0:
                    raise ValueError
            except ValueError:
                problem(w, f"deploy.resources.limits.cpus {limits['cpus']!r} is not a positive number")
        if "memory" in limits and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", str(limits["memory"])):
            problem(w, f"deploy.resources.limits.memory {limits['memory']!r} is not a size")

        is_framepress = (image or "").startswith("framepress") or (
            isinstance(build, dict) and str(build.get("dockerfile", "")).endswith("deploy/docker/Dockerfile"))
        if not is_framepress:
            continue
        mounted = set()
        for secret in svc.get("secrets") or []:
            if isinstance(secret, str):
                mounted.add(f"/run/secrets/{secret}")
            else:
                mounted.add(secret.get("target") if str(secret.get("target", "")).startswith("/")
                            else f"/run/secrets/{secret.get('target') or secret.get('source')}")
        argv = as_list(svc.get("command")) or ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/framepress"]
        if svc.get("entrypoint") is not None:
            problem(w, "overrides the image's entry point (framepress)")
        env = as_env(svc.get("environment"))
        sub = check_invocation(w, binary, argv, env, mounted)
        framepress_services[name] = (sub, argv, env, svc)
        if sub == "worker":
            cls = flag_values(argv, "--classes")
            if not cls:
                problem(w, "a worker pool without --classes takes every class")
            for c in cls:
                classes.update(c.split(","))
            if not flag_values(argv, "--concurrency"):
                problem(w, "no --concurrency: the worker would run one encode per core it sees, whatever its limits")
            if not limits.get("memory"):
                problem(w, "a worker pool without a memory limit")
        if sub in ("api", "worker"):
            bus = env.get("FRAMEPRESS_BUS", "".join(flag_values(argv, "--bus")))
            m = re.fullmatch(r"kafka://([^:/,]+):(\d+)", bus)
            if not m:
                problem(w, f"bus {bus!r} is not kafka://<service>:<port>")
            elif m.group(1) not in services:
                problem(w, f"bus host {m.group(1)} is not a service of this file")
            else:
                advertised = as_env(services[m.group(1)].get("environment")).get("KAFKA_ADVERTISED_LISTENERS", "")
                if f"//{m.group(1)}:{m.group(2)}" not in advertised:
                    problem(w, f"bus {bus} is not what {m.group(1)} advertises ({advertised})")
                if m.group(1) not in (svc.get("depends_on") or {}):
                    problem(w, f"does not wait for {m.group(1)}")
            storage = env.get("FRAMEPRESS_STORAGE", "".join(flag_values(argv, "--storage")))
            m = re.fullmatch(r"s3://[a-z0-9.-]{3,63}\?(.*)", storage)
            endpoint = re.search(r"(?:^|&)endpoint=https?://([^:/&]+)", m.group(1)) if m else None
            if not m or not endpoint:
                problem(w, f"storage {storage!r} is not s3://<bucket>?endpoint=http://<service>:<port>")
            elif endpoint.group(1) not in services:
                problem(w, f"storage endpoint host {endpoint.group(1)} is not a service of this file")
            for key in ("FRAMEPRESS_S3_ACCESS_KEY", "FRAMEPRESS_S3_SECRET_KEY"):
                if key in env:
                    problem(w, f"{key} is set in the environment: use {key}_FILE and a secret")
                elif key + "_FILE" not in env:
                    problem(w, f"{key}_FILE is not set: the S3 store has no credentials")
        if sub in ("serve", "api"):
            listen = env.get("FRAMEPRESS_LISTEN", "".join(flag_values(argv, "--listen")))
            port = listen.rpartition(":")[2]
            if not listen.startswith("0.0.0.0:"):
                problem(w, f"listens on {listen or 'the default 127.0.0.1'}: unreachable from outside the container")
            published = [str(p) for p in svc.get("ports") or []]
            if not any(p.endswith(f":{port}") for p in published):
                problem(w, f"port {port} is not published")

    if path.name == "compose.yaml":
        subs = {s for s, *_ in framepress_services.values()}
        if not {"api", "worker"} <= subs:
            problem(where, "the distributed stack needs an api and workers")
        if classes != {"sd", "hd", "uhd"}:
            problem(where, f"the worker pools serve {sorted(classes)}, not one pool per class sd, hd, uhd")
        images = {name: (svc.get("image") or "") for name, svc in services.items()}
        if not any(re.fullmatch(r"apache/kafka:3\.9\.\d+", i) for i in images.values()):
            problem(where, "no apache/kafka:3.9.x service (the line the tests use)")
        if not any(i.startswith("chrislusf/seaweedfs:") for i in images.values()):
            problem(where, "no chrislusf/seaweedfs service")
        if any("minio" in i.lower() for i in images.values()):
            problem(where, "MinIO is AGPL: not used")
        kafka = next((s for s in services.values() if (s.get("image") or "").startswith("apache/kafka:")), {})
        roles = as_env(kafka.get("environment")).get("KAFKA_PROCESS_ROLES", "")
        if set(roles.split(",")) != {"broker", "controller"}:
            problem(where, "Kafka is not one KRaft broker+controller")
        for svc in (kafka, next((s for s in services.values() if "seaweedfs" in (s.get("image") or "")), {})):
            if not any(str(v).split(":")[0] in declared["volumes"] for v in svc.get("volumes") or []):
                problem(where, f"{svc.get('image')} keeps its data in no named volume")
        # Worker pools are sized per class: the bigger the pictures, the more memory.
        def memory(svc):
            text = str((((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}).get("memory", "0"))
            number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmgBKMG]?)", text).groups()
            return float(number) * {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit.lower()]
        by_class = {}
        for sub, argv, env, svc in framepress_services.values():
            if sub == "worker":
                for c in flag_values(argv, "--classes"):
                    by_class[c] = memory(svc)
        if all(c in by_class for c in ("sd", "hd", "uhd")) and not by_class["sd"] <= by_class["hd"] <= by_class["uhd"]:
            problem(where, f"worker memory limits do not grow with the class: {by_class}")
    else:
        # The embedded stack: one serve, its data in a named volume, and it must start as written.
        serves = [(n, a, e, s) for n, (sub, a, e, s) in framepress_services.items() if sub == "serve"]
        if len(serves) != 1:
            problem(where, "the embedded stack is one `framepress serve`")
        for name, argv, env, svc in serves:
            data_dir = env.get("FRAMEPRESS_DATA_DIR", "".join(flag_values(argv, "--data-dir")))
            if not any(str(v).split(":")[0] in declared["volumes"] and str(v).split(":")[1] == data_dir
                       for v in svc.get("volumes") or []):
                problem(f"{where}: service {name}", f"the data directory {data_dir or '(default)'} is not a named volume")
            rest = []
            skip = False
            for i, arg in enumerate(argv[1:]):
                if skip:
                    skip = False
                    continue
                if arg in ("--listen", "--data-dir"):
                    skip = True
                    continue
                rest.append(arg)
            serve_starts(f"{where}: service {name}", binary, rest,
                         {k: v for k, v in env.items() if k not in ("FRAMEPRESS_LISTEN", "FRAMEPRESS_DATA_DIR")})


# ---- Kubernetes -----------------------------------------------------------------------------------


def load_all(path, where):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(where, f"does not parse: {e}")
        return []


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def quantity(text):
    """Kubernetes quantity → a number (cores or bytes)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", str(text))
    if not m:
        return None
    factor = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    return float(m.group(1)) * factor[m.group(2)]


def check_k8s(k8s_dir, binary, source_dir):
    rel = lambda p: str(p.relative_to(source_dir))
    kustomization = k8s_dir / "kustomization.yaml"
    if not kustomization.is_file():
        problem(rel(k8s_dir), "no kustomization.yaml")
        return
    kust = (load_all(kustomization, rel(kustomization)) or [{}])[0]
    listed = kust.get("resources") or []
    files = sorted(p.name for p in k8s_dir.glob("*.yaml") if p.name != "kustomization.yaml")
    for f in listed:
        if not (k8s_dir / f).is_file():
            problem(rel(kustomization), f"lists {f}, which does not exist")
    for f in files:
        if f not in listed:
            problem(rel(kustomization), f"does not list {f}")
    image_names = {i.get("name") for i in kust.get("images") or []}

    objects = []
    for f in files:
        for doc in load_all(k8s_dir / f, f"deploy/k8s/{f}"):
            where = f"deploy/k8s/{f}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            for key in ("apiVersion", "kind", "metadata"):
                if key not in doc:
                    problem(where, f"no {key}")
            if not (doc.get("metadata") or {}).get("name"):
                problem(where, "no metadata.name")
            objects.append((where, doc))

    def of_kind(kind):
        return [(w, d) for w, d in objects if d.get("kind") == kind]

    names = {(d.get("kind"), d["metadata"]["name"]) for _, d in objects if d.get("metadata", {}).get("name")}

    # The ConfigMap's framepress.toml: known keys, and `framepress serve` starts with it.
    toml_text = None
    for where, cm in of_kind("ConfigMap"):
        toml_text = (cm.get("data") or {}).get("framepress.toml", toml_text)
    toml = {}
    if toml_text is None:
        problem("deploy/k8s", "no ConfigMap with framepress.toml")
    else:
        all_flags = set().union(*binary.flags.values())
        if tomllib:
            try:
                raw = tomllib.loads(toml_text)
            except tomllib.TOMLDecodeError as e:
                problem("deploy/k8s ConfigMap framepress.toml", f"does not parse: {e}")
                raw = {}

            def flatten(table, prefix=""):
                for k, v in table.items():
                    key = f"{prefix}{k}"
                    if isinstance(v, dict):
                        yield from flatten(v, key + ".")
                    else:
                        yield key, v
            toml = dict(flatten(raw))
            for key in toml:
                if binary.key_to_flag(key) not in all_flags:
                    problem("deploy/k8s ConfigMap framepress.toml", f"unknown option '{key}' (no flag {binary.key_to_flag(key)})")
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(toml_text)
            config = f.name
        try:
            # The file's bus, storage and tokens point into a cluster: embedded stand-ins, every other
            # value (sizes, durations, presets, Kafka settings) is checked as framepress reads it.
            with tempfile.TemporaryDirectory() as objects_dir:
                serve_starts("deploy/k8s ConfigMap framepress.toml", binary,
                             ["--config", config, "--bus", "embedded", "--storage", f"file://{objects_dir}",
                              "--tokens-file", ""])
        finally:
            os.unlink(config)

    secrets = {}
    for where, secret in of_kind("Secret"):
        values = dict(secret.get("stringData") or {})
        values.update(secret.get("data") or {})
        secrets[secret["metadata"]["name"]] = set(values)
        for key, value in values.items():
            if "REPLACE" not in str(value):
                problem(where, f"{key} holds a value, not a REPLACE_… placeholder: real secrets stay out of the repository")

    deployments = {}
    for where, dep in of_kind("Deployment"):
        name = dep["metadata"]["name"]
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if not matches(selector, labels):
            problem(where, "spec.selector does not match the pod template's labels")
        pod = template.get("spec") or {}
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        security = pod.get("securityContext") or {}
        if not security.get("runAsNonRoot") or security.get("runAsUser", 0) == 0:
            problem(where, "pods do not run as a non-root user")
        containers = pod.get("containers") or []
        if len(containers) != 1:
            problem(where, "expected one container")
            continue
        c = containers[0]
        if c.get("image") not in image_names:
            problem(where, f"image {c.get('image')} is not set by kustomization.yaml images")
        argv = as_list(c.get("args"))
        env = {e["name"]: e.get("value", "") for e in c.get("env") or []}
        secret_files = set()
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m["name"])
            if v is None:
                problem(where, f"volumeMount {m['name']} has no volume")
                continue
            if "secret" in v:
                secret_name = v["secret"].get("secretName")
                if ("Secret", secret_name) not in names:
                    problem(where, f"volume {m['name']} names Secret {secret_name}, which is not in deploy/k8s")
                for key in secrets.get(secret_name, ()):
                    secret_files.add(f"{m['mountPath'].rstrip('/')}/{key}")
            if "configMap" in v and ("ConfigMap", v["configMap"].get("name")) not in names:
                problem(where, f"volume {m['name']} names ConfigMap {v['configMap'].get('name')}, which is not in deploy/k8s")
        sub = check_invocation(where, binary, argv, env, secret_files)
        resources = c.get("resources") or {}
        requests = resources.get("requests") or {}
        for r in ("cpu", "memory"):
            if quantity(requests.get(r, "")) is None:
                problem(where, f"no resources.requests.{r}")
        if quantity((resources.get("limits") or {}).get("memory", "")) is None:
            problem(where, "no memory limit")
        csec = c.get("securityContext") or {}
        if csec.get("allowPrivilegeEscalation") is not False or not csec.get("readOnlyRootFilesystem"):
            problem(where, "the container may escalate privileges or write its root filesystem")
        writable = {m["mountPath"] for m in c.get("volumeMounts") or [] if not m.get("readOnly")}
        data_dir = toml.get("data_dir", "/var/lib/framepress")
        if data_dir not in writable:
            problem(where, f"the data directory {data_dir} is not a writable volume (the root filesystem is read-only)")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        grace = pod.get("terminationGracePeriodSeconds", 30)
        deployments[name] = dict(where=where, labels=labels, sub=sub, argv=argv, requests=requests,
                                 replicas=spec.get("replicas", 1), ports=ports, container=c, grace=grace)
        if sub == "api":
            probes = {k: ((c.get(k) or {}).get("httpGet") or {}) for k in ("livenessProbe", "readinessProbe")}
            if probes["livenessProbe"].get("path") != "/healthz":
                problem(where, "the liveness probe is not GET /healthz")
            if probes["readinessProbe"].get("path") != "/readyz":
                problem(where, "the readiness probe is not GET /readyz")
            for k, probe in probes.items():
                port = probe.get("port")
                if port not in ports and port not in ports.values():
                    problem(where, f"{k} port {port} is not a container port")
            listen = toml.get("listen", "")
            if ports and listen.rpartition(":")[2] not in {str(p) for p in ports.values()}:
                problem(where, f"the container ports {sorted(ports.values())} are not the port framepress listens on ({listen})")
        if sub == "worker":
            if grace < 60:
                problem(where, f"terminationGracePeriodSeconds {grace}: too short for a worker to hand its tasks back")
            if not flag_values(argv, "--concurrency"):
                problem(where, "no --concurrency: one encode per core of the node, whatever the requests")

    workers = {}
    for name, d in deployments.items():
        if d["sub"] == "worker":
            cls = flag_values(d["argv"], "--classes")
            if len(cls) != 1 or "," in cls[0]:
                problem(d["where"], "a worker Deployment serves exactly one class")
                continue
            workers[cls[0]] = name
    if set(workers) != {"sd", "hd", "uhd"}:
        problem("deploy/k8s", f"worker Deployments for {sorted(workers)}, not one per class sd, hd, uhd")
    else:
        for r in ("cpu", "memory"):
            sizes = [quantity(deployments[workers[c]]["requests"].get(r, "0")) for c in ("sd", "hd", "uhd")]
            if not sizes[0] <= sizes[1] <= sizes[2] or sizes[0] == sizes[2]:
                problem("deploy/k8s", f"worker {r} requests are not sized per class (sd, hd, uhd: {sizes})")
    if not any(d["sub"] == "api" for d in deployments.values()):
        problem("deploy/k8s", "no API Deployment")

    for where, svc in of_kind("Service"):
        selector = (svc.get("spec") or {}).get("selector") or {}
        targets = [d for d in deployments.values() if matches(selector, d["labels"])]
        if not targets:
            problem(where, "selects no Deployment's pods")
        for port in (svc.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for d in targets:
                if target not in d["ports"] and target not in d["ports"].values():
                    problem(where, f"targetPort {target} is not a port of {d['where']}")

    pdb_covered = set()
    for where, pdb in of_kind("PodDisruptionBudget"):
        spec = pdb.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        targets = [n for n, d in deployments.items() if matches(selector, d["labels"])]
        if not targets:
            problem(where, "selects no Deployment's pods")
        pdb_covered.update(targets)
        if "minAvailable" in spec:
            for n in targets:
                if int(spec["minAvailable"]) >= deployments[n]["replicas"]:
                    problem(where, f"minAvailable {spec['minAvailable']} blocks every eviction of {n} ({deployments[n]['replicas']} replicas)")
    if not any(deployments[n]["sub"] == "api" for n in pdb_covered):
        problem("deploy/k8s", "no PodDisruptionBudget for the API")

    scaled = set()
    partitions = int(toml.get("kafka.partitions", 12))
    bus_hosts = toml.get("bus", "").removeprefix("kafka://")
    for where, so in of_kind("ScaledObject"):
        spec = so.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        if target not in deployments:
            problem(where, f"scaleTargetRef {target} is not a Deployment in deploy/k8s")
            continue
        cls = next((c for c, n in workers.items() if n == target), None)
        if cls is None:
            problem(where, f"scales {target}, which is not a worker pool")
            continue
        scaled.add(cls)
        if int(spec.get("maxReplicaCount", 100)) > partitions:
            problem(where, f"maxReplicaCount {spec.get('maxReplicaCount')} exceeds the {partitions} partitions of video.tasks.{cls}")
        triggers = spec.get("triggers") or []
        if len(triggers) != 1 or triggers[0].get("type") != "kafka":
            problem(where, "expected one kafka trigger")
            continue
        meta = triggers[0].get("metadata") or {}
        if meta.get("consumerGroup") != f"framepress-workers-{cls}":
            problem(where, f"consumerGroup {meta.get('consumerGroup')} is not framepress-workers-{cls}")
        if meta.get("topic") != f"video.tasks.{cls}":
            problem(where, f"topic {meta.get('topic')} is not video.tasks.{cls}")
        if bus_hosts and meta.get("bootstrapServers") != bus_hosts:
            problem(where, f"bootstrapServers {meta.get('bootstrapServers')} differ from the ConfigMap's bus {bus_hosts}")
        for key in ("lagThreshold", "activationLagThreshold"):
            if key in meta and not str(meta[key]).isdigit():
                problem(where, f"{key} must be a whole number in quotes")
        if meta.get("offsetResetPolicy") != "earliest":
            problem(where, "offsetResetPolicy must be earliest, as framepress's consumers start")
    if scaled != {"sd", "hd", "uhd"}:
        problem("deploy/k8s", f"KEDA ScaledObjects for {sorted(scaled)}, not one per worker class")


# ---- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions(text):
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        current += (" " if current else "") + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = current.partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def check_dockerfile(path, binary, source_dir):
    where = str(path.relative_to(source_dir))
    instructions = dockerfile_instructions(path.read_text())
    stages = {}
    current = None
    args = {}
    for word, rest in instructions:
        if word == "ARG" and current is None:
            k, _, v = rest.partition("=")
            args[k] = v
        if word == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            current = name
            stages[name] = {"image": image, "lines": []}
        elif current:
            stages[current]["lines"].append((word, rest))
    if not stages:
        problem(where, "no FROM")
        return
    final_name = list(stages)[-1]
    final = stages[final_name]
    if not re.fullmatch(r"debian:bookworm-slim", final["image"]):
        problem(where, f"the runtime stage is {final['image']}, not debian:bookworm-slim")
    if not any(s["image"] == "debian:bookworm" for s in stages.values()):
        problem(where, "no debian:bookworm build stage")
    for name, stage in stages.items():
        if ":" not in stage["image"] and stage["image"] not in stages:
            problem(where, f"stage {name} image {stage['image']} has no tag")
    lines = final["lines"]

    def last(word):
        found = [rest for w, rest in lines if w == word]
        return found[-1] if found else None

    user = last("USER")
    if user is None or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user):
        problem(where, f"USER {user}: the runtime must run as a numeric non-root user (Kubernetes runAsNonRoot checks it)")
    health = last("HEALTHCHECK")
    if not health or "/healthz" not in health:
        problem(where, "no HEALTHCHECK against /healthz")
    entrypoint = last("ENTRYPOINT")
    try:
        entry = json.loads(entrypoint or "null")
    except json.JSONDecodeError:
        entry = None
    if entry != ["framepress"]:
        problem(where, f"ENTRYPOINT {entrypoint}: expected [\"framepress\"] (exec form)")
    try:
        cmd = json.loads(last("CMD") or "null")
    except json.JSONDecodeError:
        cmd = None
    if not isinstance(cmd, list):
        problem(where, "CMD is not in exec form")
    else:
        check_invocation(f"{where}: CMD", binary, cmd, {})
        if cmd[:1] != ["serve"] or flag_values(cmd, "--listen") != ["0.0.0.0:8080"] or \
                flag_values(cmd, "--data-dir") != ["/var/lib/framepress"]:
            problem(where, f"CMD {cmd}: expected serve --listen 0.0.0.0:8080 --data-dir /var/lib/framepress")
    copies = [rest for w, rest in lines if w == "COPY"]
    if not any(re.search(r"--from=\S+ \S*framepress /usr/bin/framepress$", c) for c in copies):
        problem(where, "the binary is not installed at /usr/bin/framepress")
    # The binary looks for the page at <exe>/../share/framepress/web.
    if not any(re.search(r"--from=\S+ \S*dist/? /usr/share/framepress/web/?$", c) for c in copies):
        problem(where, "the web page is not installed at /usr/share/framepress/web")
    runs = " ".join(rest for w, rest in lines if w == "RUN")
    if "ffmpeg" not in runs:
        problem(where, "the runtime does not install ffmpeg")
    if re.search(r"-dev\b", runs):
        problem(where, "the runtime installs -dev packages")
    build_runs = " ".join(rest for s in stages.values() if s["image"] == "debian:bookworm"
                          for w, rest in s["lines"] if w == "RUN")
    if "install-deps.sh" not in build_runs:
        problem(where, "the build stage does not install the packages of scripts/install-deps.sh")
    # Every file COPY takes from the context exists (and the ignore file does not drop it).
    ignore = path.with_name(path.name + ".dockerignore")
    ignored = [l.strip() for l in ignore.read_text().splitlines() if l.strip() and not l.startswith("#")] if ignore.is_file() else []
    for stage in stages.values():
        for w, rest in stage["lines"]:
            if w != "COPY" or "--from=" in rest:
                continue
            parts = [p for p in rest.split() if not p.startswith("--")]
            for src in parts[:-1]:
                if src == ".":
                    continue
                if not (source_dir / src).exists():
                    problem(where, f"COPY {src}: no such file in the repository")
                top = src.split("/")[0]
                for pattern in ignored:
                    if not pattern.startswith("!") and (pattern == src.rstrip("/") or re.fullmatch(pattern.replace("*", ".*"), top)):
                        problem(where, f"COPY {src} is excluded by {ignore.name} ({pattern})")
    for needed in ("scripts/install-deps.sh", "deploy/docker/runtime-packages.sh", "CMakeLists.txt", "src", "web/package.json"):
        top = needed.split("/")[0]
        for pattern in ignored:
            if not pattern.startswith("!") and (pattern in (needed, top) or re.fullmatch(pattern.replace("*", ".*"), top)):
                problem(where, f"{needed} is excluded from the build context by {ignore.name} ({pattern})")
    for heavy in ("build", ".git", "web/node_modules"):
        if not any(pattern in (heavy, heavy + "*", "build*") or (heavy == "build" and pattern.startswith("build")) for pattern in ignored):
            problem(where, f"{heavy} is not kept out of the build context ({ignore.name})")


# ---- dashboard ------------------------------------------------------------------------------------


def check_dashboard(path, source_dir):
    where = str(path.relative_to(source_dir))
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        problem(where, f"does not parse: {e}")
        return
    header = (source_dir / "src/metrics/metrics.h").read_text()
    families = set(re.findall(r"^//\s+(framepress_[a-z0-9_]+)", header, re.M))
    if not families:
        problem("src/metrics/metrics.h", "lists no metric families in its header comment")
        return
    text = json.dumps(dashboard)
    used = set(re.findall(r"\bframepress_[a-z0-9_]+", text))
    for name in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in families and base not in families:
            problem(where, f"charts {name}, which src/metrics/metrics.h does not declare")
    for family in sorted(families):
        if not any(u == family or re.sub(r"_(bucket|sum|count)$", "", u) == family for u in used):
            problem(where, f"does not chart {family}")


def compose_spec(path):
    """The framepress services of a compose file as JSON, for tests/deploy/compose_smoke.sh: each one's
    arguments and environment after interpolation, the secrets' files and the SeaweedFS entry point."""
    doc = interpolate(yaml.safe_load(path.read_text()), str(path))
    base = path.parent
    out = {"services": {}, "secrets": {}, "seaweedfs": None}
    for name, spec in (doc.get("secrets") or {}).items():
        out["secrets"][name] = str((base / spec["file"]).resolve())
    configs = {name: str((base / spec["file"]).resolve()) for name, spec in (doc.get("configs") or {}).items()}
    for name, svc in doc["services"].items():
        image = svc.get("image") or ""
        if image.startswith("framepress"):
            out["services"][name] = {"argv": as_list(svc.get("command")), "env": as_env(svc.get("environment")),
                                     "replicas": ((svc.get("deploy") or {}).get("replicas", 1))}
        elif image.startswith("chrislusf/seaweedfs"):
            entry = as_list(svc.get("entrypoint"))
            script = next((configs[c["source"]] for c in svc.get("configs") or [] if c.get("target") in entry), None)
            out["seaweedfs"] = {"script": script, "env": as_env(svc.get("environment"))}
    print(json.dumps(out))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "compose-spec":
        compose_spec(Path(sys.argv[2]).resolve())
        return 0
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    binary_path, source_dir, what = str(Path(sys.argv[1]).resolve()), Path(sys.argv[2]).resolve(), sys.argv[3]
    deploy = source_dir / "deploy"
    binary = Binary(binary_path, source_dir) if what != "dashboard" else None
    if what in ("compose", "all"):
        for path in sorted(deploy.glob("compose*.yaml")):
            check_compose(path, binary, source_dir)
        if not (deploy / "compose.yaml").is_file() or not (deploy / "compose.embedded.yaml").is_file():
            problem("deploy", "compose.yaml and compose.embedded.yaml are both needed")
    if what in ("k8s", "all"):
        check_k8s(deploy / "k8s", binary, source_dir)
    if what in ("dockerfile", "all"):
        check_dockerfile(deploy / "docker" / "Dockerfile", binary, source_dir)
    if what in ("dashboard", "all"):
        check_dashboard(deploy / "grafana-dashboard.json", source_dir)
    for p in problems:
        print(p)
    print(f"check_deploy {what}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
