#!/usr/bin/env python3
"""deploy/compose.yaml without Docker: its framepress services run as local processes with exactly the
arguments and environment the file gives them, against a real Kafka 3.9 (scripts/kafka.sh) and a real
SeaweedFS started by the file's own entry point (deploy/seaweedfs/start.sh) with the file's secrets.
Only what a container would change is rewritten: service host names become 127.0.0.1 and free ports,
/run/secrets/<name> becomes the secret's file, /var/lib/framepress a scratch directory per service.

A 1440p clip is uploaded for one rendition of each class (240p sd, 720p hd, 1440p uhd); the job must
complete with each rendition encoded by the worker pool of its class. Then worker-hd gets SIGTERM in the
middle of an encode (a rolling update): it must exit 0 and hand its task back, and the task completes on
its successor, reported once, as attempt 1. At the end every process must stop with status 0 on SIGTERM.

    compose_smoke.py FRAMEPRESS_BINARY SOURCE_DIR

Exits 77 (skipped) when Kafka or SeaweedFS is not installed (`make services` installs both).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_deploy  # noqa: E402  (the compose reading and interpolation)

SKIP = 77


def log(text):
    print(f"compose_smoke: {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", data=None, headers=None, timeout=30):
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.status, answer.read()


def wait_for(what, predicate, timeout, process=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}"
                               + (f"\n{Path(log_path).read_text()[-4000:]}" if log_path else ""))
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what}: not within {timeout} s" + (f"\n{Path(log_path).read_text()[-4000:]}" if log_path else ""))


class Processes:
    """Every process started here, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self):
        self.items = []

    def start(self, name, argv, env, log_path, cwd=None):
        out = open(log_path, "w")
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                   start_new_session=True)
        self.items.append((name, process, log_path))
        return process

    def stop(self, name, process, grace=30):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def stop_all(self):
        for name, process, _ in reversed(self.items):
            self.stop(name, process, grace=20)


def main():
    binary, source_dir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    compose = source_dir / "deploy" / "compose.yaml"
    spec_doc = check_deploy.interpolate(check_deploy.yaml.safe_load(compose.read_text()), str(compose))
    cache = Path(os.environ.get("FRAMEPRESS_CACHE", Path.home() / ".cache" / "framepress"))

    weed = subprocess.run([str(source_dir / "scripts/seaweedfs.sh"), "path"], capture_output=True, text=True).stdout.strip()
    kafka_version = re.search(r'KAFKA_VERSION="\$\{KAFKA_VERSION:-([0-9.]+)\}"', (source_dir / "scripts/kafka.sh").read_text())
    kafka_ready = kafka_version and (cache / f"kafka-{kafka_version.group(1)}" / "libs" / ".complete").is_file()
    if not weed or not os.access(weed, os.X_OK) or not kafka_ready or not shutil.which("kcat"):
        log("skipped: Kafka or SeaweedFS is not installed (make services)")
        return SKIP

    work = Path(tempfile.mkdtemp(prefix="framepress-compose-"))
    processes = Processes()
    kafka_dir = work / "kafka"
    try:
        # ---- Kafka (the compose file's broker is one KRaft node too) ----
        env = dict(os.environ, KAFKA_OWNER_PID=str(os.getpid()))
        out = subprocess.run([str(source_dir / "scripts/kafka.sh"), "start", str(kafka_dir)], env=env,
                             capture_output=True, text=True, timeout=240)
        if out.returncode != 0:
            raise RuntimeError(f"scripts/kafka.sh start failed:\n{out.stderr[-3000:]}")
        bootstrap = re.search(r"KAFKA_BOOTSTRAP=(\S+)", out.stdout).group(1)
        log(f"Kafka at {bootstrap}")

        # ---- SeaweedFS through the compose file's own entry point and secrets ----
        secrets = {name: str((compose.parent / s["file"]).resolve()) for name, s in spec_doc["secrets"].items()}
        seaweed = next(s for s in spec_doc["services"].values() if "seaweedfs" in (s.get("image") or ""))
        configs = {name: (compose.parent / c["file"]).resolve() for name, c in spec_doc["configs"].items()}
        script = next(configs[c["source"]] for c in seaweed["configs"])
        s3_port = free_port()
        weed_env = dict(os.environ)
        for key, value in check_deploy.as_env(seaweed.get("environment")).items():
            if value.startswith("/run/secrets/"):
                value = secrets[value.removeprefix("/run/secrets/")]
            weed_env[key] = value
        weed_env.update(WEED=weed, SEAWEEDFS_DATA=str(work / "s3data"), SEAWEEDFS_S3_PORT=str(s3_port),
                        SEAWEEDFS_S3_CONFIG=str(work / "s3.json"))
        ports = [free_port() for _ in range(7)]
        weed_process = processes.start("seaweedfs", ["/bin/sh", str(script),
                                       f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
                                       f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
                                       f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
                                       f"-s3.port.grpc={ports[6]}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                                       "-master.telemetry=false"],
                                       weed_env, work / "seaweedfs.log")
        health = seaweed["healthcheck"]["test"][-1]
        health_path = re.search(r"http://127\.0\.0\.1:8333(/\S*)", health).group(1)
        wait_for("SeaweedFS health", lambda: http(f"http://127.0.0.1:{s3_port}{health_path}")[0] == 200, 120,
                 weed_process, work / "seaweedfs.log")
        log(f"SeaweedFS S3 at 127.0.0.1:{s3_port} (keys from {Path(secrets['s3_access_key']).parent})")

        # ---- the framepress services, as the file starts them ----
        def rewrite(value, service):
            value = value.replace("kafka://kafka:9092", f"kafka://{bootstrap}")
            value = value.replace("http://seaweedfs:8333", f"http://127.0.0.1:{s3_port}")
            if value.startswith("/run/secrets/"):
                value = secrets[value.removeprefix("/run/secrets/")]
            if value == "/var/lib/framepress":
                value = str(work / service)
            return value

        services = {}
        for name, svc in spec_doc["services"].items():
            if not (svc.get("image") or "").startswith("framepress"):
                continue
            argv = [str(a) for a in check_deploy.as_list(svc.get("command"))]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEPRESS_", "MINIO_", "KAFKA_"))}
            for key, value in check_deploy.as_env(svc.get("environment")).items():
                env[key] = rewrite(value, name)
            port = None
            for i, arg in enumerate(argv):
                if arg in ("--listen", "--metrics-listen"):  # a worker's probes and metrics are on the latter
                    port = free_port()
                    argv[i + 1] = f"127.0.0.1:{port}"
            services[name] = dict(argv=argv, env=env, port=port)

        started = {}
        for name in sorted(services, key=lambda n: services[n]["argv"][0] != "api"):  # the API first
            s = services[name]
            process = processes.start(name, [str(binary), *s["argv"]], s["env"], work / f"{name}.log")
            started[name] = process
            if s["port"]:
                wait_for(f"{name} ready", lambda: http(f"http://127.0.0.1:{s['port']}/readyz")[0] == 200, 120,
                         process, work / f"{name}.log")
            else:
                wait_for(f"{name} replayed the log", lambda: "event log replayed" in (work / f"{name}.log").read_text(),
                         120, process, work / f"{name}.log")
            log(f"{name} runs (pid {process.pid}): framepress {' '.join(s['argv'])}")
        api = next(f"http://127.0.0.1:{s['port']}" for s in services.values() if s["argv"][0] == "api")

        # ---- one job with a rendition of each class ----
        clip = work / "clip.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=2560x1440:rate=30",
                        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast",
                        "-c:a", "aac", str(clip)], check=True)
        boundary = "framepressdeploysmoke"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        status, answer = http(f"{api}/api/videos?renditions=240p,720p,1440p", "POST", body,
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"}, timeout=120)
        job = json.loads(answer)
        log(f"uploaded job {job['id']}: {[(r['name'], r['class']) for r in job['renditions']]}")

        def job_state():
            return json.loads(http(f"{api}/api/videos/{job['id']}")[1])

        wait_for("the job to end", lambda: job_state()["state"] in ("completed", "failed", "cancelled"), 600)
        final = job_state()
        if final["state"] != "completed":
            raise RuntimeError(f"the job ended {final['state']}: {json.dumps(final)[:2000]}")

        # Which worker encoded each rendition: the `started` events name it (host/pid).
        request = urllib.request.Request(f"{api}/api/videos/{job['id']}/events", headers={"Last-Event-ID": "0"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            stream = answer.read().decode()
        by_pid = {str(p.pid): n for n, p in started.items()}
        encoded_by = {}
        for block in stream.split("\n\n"):
            if "event: started" in block:
                data = json.loads(next(line[5:] for line in block.splitlines() if line.startswith("data:")))
                encoded_by[data["rendition"]] = by_pid.get(str(data["worker"]).rpartition("/")[2], data["worker"])
        expected = {"240p": "worker-sd", "720p": "worker-hd", "1440p": "worker-uhd"}
        if encoded_by != expected:
            raise RuntimeError(f"renditions were encoded by {encoded_by}, expected {expected}")
        for r in final["renditions"]:
            status, data = http(f"{api}/api/videos/{job['id']}/renditions/{r['name']}", timeout=120)
            if status != 200 or len(data) != r["size"] or r["size"] <= 0:
                raise RuntimeError(f"rendition {r['name']}: {status}, {len(data)} bytes of {r['size']}")
        log(f"job completed: {', '.join(f'{n} by {w}' for n, w in sorted(encoded_by.items()))}")

        # ---- a worker stopped mid-encode (a rolling update, a scale-in) hands its task back ----
        clip2 = work / "clip2.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "15", "-c:v", "libx264", "-preset", "ultrafast",
                        "-c:a", "aac", str(clip2)], check=True)
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip2.mp4\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode() + clip2.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        job2 = json.loads(http(f"{api}/api/videos?renditions=720p", "POST", body,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}"}, timeout=120)[1])

        def rendition(job_id):
            return json.loads(http(f"{api}/api/videos/{job_id}")[1])["renditions"][0]

        wait_for("the 720p encode to start", lambda: rendition(job2["id"])["state"] == "encoding"
                 and rendition(job2["id"])["percent"] > 0, 300)
        began = time.monotonic()
        code = processes.stop("worker-hd", started["worker-hd"], grace=60)
        stopped_in = time.monotonic() - began
        if code != 0:
            raise RuntimeError(f"worker-hd exited with {code} after SIGTERM mid-encode")
        if "handed back" not in (work / "worker-hd.log").read_text():
            raise RuntimeError("worker-hd did not hand its task back")
        log(f"worker-hd stopped mid-encode with status 0 in {stopped_in:.1f} s and handed its task back")
        s = services["worker-hd"]
        started["worker-hd"] = processes.start("worker-hd", [str(binary), *s["argv"]], s["env"], work / "worker-hd-2.log")
        wait_for("the job after the hand-back", lambda: json.loads(http(f"{api}/api/videos/{job2['id']}")[1])["state"]
                 in ("completed", "failed", "cancelled"), 600, started["worker-hd"], work / "worker-hd-2.log")
        after = json.loads(http(f"{api}/api/videos/{job2['id']}")[1])
        request = urllib.request.Request(f"{api}/api/videos/{job2['id']}/events", headers={"Last-Event-ID": "0"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            events = re.findall(r"^event: (\S+)$", answer.read().decode(), re.M)
        if after["state"] != "completed" or events.count("rendition") != 1 or \
                {"retrying", "rendition_failed", "failed"} & set(events) or after["renditions"][0]["attempt"] != 1:
            raise RuntimeError(f"after the hand-back: {after['state']}, attempt {after['renditions'][0]['attempt']}, "
                               f"events {events}")
        log("the handed-back task completed on the restarted worker-hd: one rendition event, attempt 1")

        # ---- SIGTERM, as `docker compose down` sends it ----
        took = []
        for name, process in started.items():
            began = time.monotonic()
            code = processes.stop(name, process, grace=60)
            took.append(f"{name} {time.monotonic() - began:.1f} s")
            if code != 0:
                raise RuntimeError(f"{name} exited with {code} after SIGTERM:\n{(work / f'{name}.log').read_text()[-3000:]}")
        log(f"every framepress service stopped with status 0 on SIGTERM ({', '.join(took)})")
        log("PASS")
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is reported with the logs
        print(f"compose_smoke: FAIL: {e}", file=sys.stderr)
        for path in sorted(work.glob("*.log")):
            print(f"--- {path.name} (last 40 lines) ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]),
                  file=sys.stderr)
        return 1
    finally:
        processes.stop_all()
        # weed leaves its gRPC sockets in /tmp, named by port: those of this run go.
        for port in locals().get("ports", []):
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)
        subprocess.run([str(source_dir / "scripts/kafka.sh"), "stop", str(kafka_dir)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
