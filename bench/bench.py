#!/usr/bin/env python3
"""framepress benchmark suite (issue 8 §2): writes docs/BENCHMARKS.md.

Every figure is a ratio against a baseline measured in the same run on the same machine, as the median of
several runs. Test media is made with ffmpeg's lavfi sources at run time, in a temporary directory that is
removed on exit, with every server this script started.

Environment:
  BENCH_QUICK=1          smoke version: 1 run each, short clips, 1,000 SSE subscribers, 256 MiB uploads;
                         writes build/bench/BENCHMARKS-quick.md unless BENCH_OUT is set
  BENCH_RUNS=N           runs per figure (default 3; quick 1)
  BENCH_PRESET=P         x264 preset of every encode (default veryfast)
  BENCH_ONLY=a,b         sections: ladder,overhead,dispatch,sse,upload,throughput (default: all)
  BENCH_OUT=PATH         where the report goes (default docs/BENCHMARKS.md)
  BENCH_TMPDIR=DIR       where the temporary directory goes (default /tmp); uploads and dd write there
  BENCH_SSE_CONNECTIONS  default 10000 (quick 1000)
  BENCH_UPLOAD_BYTES     default 2147483648 (quick 268435456)
  BENCH_DISPATCH_JOBS    default 100 (quick 20)
  BENCH_THROUGHPUT_JOBS  default 20 (quick 6)
  BENCH_NO_KAFKA=1       skip the runs over Kafka (otherwise made when `framepress api`/`worker` exist and
                         scripts/kafka.sh can start a broker)
  FRAMEPRESS             the binary (default build/src/app/framepress)
  SSE_LOAD               the load generator (default build/bench/sse_load)
"""

from __future__ import annotations

import atexit
import datetime as _dt
import http.client
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS", "1" if QUICK else "3"))
PRESET = os.environ.get("BENCH_PRESET", "veryfast")
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
FRAMEPRESS = Path(os.environ.get("FRAMEPRESS", REPO / "build/src/app/framepress")).resolve()
SSE_LOAD = Path(os.environ.get("SSE_LOAD", REPO / "build/bench/sse_load")).resolve()
OUT = Path(os.environ.get("BENCH_OUT", REPO / ("build/bench/BENCHMARKS-quick.md" if QUICK else "docs/BENCHMARKS.md")))
SSE_CONNECTIONS = int(os.environ.get("BENCH_SSE_CONNECTIONS", "1000" if QUICK else "10000"))
SSE_BASELINE_CONNECTIONS = 10 if QUICK else 100
UPLOAD_BYTES = int(os.environ.get("BENCH_UPLOAD_BYTES", str(256 << 20 if QUICK else 2 << 30)))
DISPATCH_JOBS = int(os.environ.get("BENCH_DISPATCH_JOBS", "20" if QUICK else "100"))
THROUGHPUT_JOBS = int(os.environ.get("BENCH_THROUGHPUT_JOBS", "6" if QUICK else "20"))
LADDER_SECONDS = 8 if QUICK else 30
THROUGHPUT_SECONDS = 3 if QUICK else 5
SSE_JOB_SECONDS = 5 if QUICK else 10
LADDER = ["1080p", "720p", "480p", "360p", "240p", "144p"]
CRF = 23
AUDIO_KBPS = 128
MIB = 1 << 20

SECTIONS = ["ladder", "overhead", "dispatch", "sse", "upload", "throughput"]


def log(*args):
    print(f"[bench {time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------
# Clean-up: every server (its own process group, so its ffmpeg children go too) and the temporary directory.

TMP = Path(tempfile.mkdtemp(prefix="framepress-bench-", dir=os.environ.get("BENCH_TMPDIR") or None))
_servers: list["Server"] = []
_server_count = [0]
_children: list[subprocess.Popen] = []


def _cleanup():
    for s in list(_servers):
        s.stop()
    for b in list(_brokers):
        b.stop()
    for p in list(_children):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, _frame):
    log(f"signal {signum}: cleaning up")
    sys.exit(128 + signum)  # runs atexit


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)

# --------------------------------------------------------------------------------------------------------
# Commands: every command line that is measured goes into the report, with the temporary directory as $TMP.

COMMANDS: dict[str, list[str]] = {}


def show(argv) -> str:
    return shlex.join(str(a) for a in argv).replace(str(TMP), "$TMP")


def note_command(section: str, argv_or_text):
    text = argv_or_text if isinstance(argv_or_text, str) else show(argv_or_text)
    COMMANDS.setdefault(section, [])
    if text not in COMMANDS[section]:
        COMMANDS[section].append(text)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, **kw)


def timed(argv, section: str | None = None) -> tuple[float, float]:
    """Runs argv; returns (wall seconds, CPU seconds of it and its children)."""
    if section:
        note_command(section, argv)
    cpu0 = children_cpu()
    t0 = time.monotonic()
    subprocess.run([str(a) for a in argv], check=True, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    return wall, children_cpu() - cpu0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    """Nearest-rank percentile."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(1, math.ceil(p / 100 * len(s)))
    return s[k - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sync_disk():
    subprocess.run(["sync"], check=False)


# --------------------------------------------------------------------------------------------------------
# Media

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def make_clip(path: Path, width: int, height: int, seconds: float, noise: bool = True):
    """A synthetic clip: testsrc2 (moving pattern, counter) with light temporal noise so x264 has real work,
    a 440 Hz tone, H.264 (ultrafast, CRF 20, GOP 2 s) + AAC in MP4."""
    vf = "noise=alls=3:allf=t" if noise else "null"
    argv = FFMPEG + [
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart", str(path)]
    note_command("media", argv)
    run(argv)


def rung_size(short_side: int, w: int, h: int) -> tuple[int, int]:
    """The ladder's size for a landscape source (core/ladder.cpp: round to even)."""
    def even(v):
        return max(2, int(math.floor(v / 2.0 + 0.5)) * 2)
    return even(w * short_side / h), even(short_side)


def x264_args():
    return ["-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF), "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-movflags", "+faststart"]


def one_rendition_cmd(src: Path, w: int, h: int, out: Path):
    return FFMPEG + ["-i", str(src), "-vf", f"scale={w}:{h},setsar=1", "-map", "0:V:0", "-map", "0:a:0?"] + \
        x264_args() + [str(out)]


def split_cmd(src: Path, sizes: list[tuple[int, int]], outs: list[Path]):
    n = len(sizes)
    graph = f"[0:V:0]split={n}" + "".join(f"[s{i}]" for i in range(n))
    for i, (w, h) in enumerate(sizes):
        graph += f";[s{i}]scale={w}:{h},setsar=1[v{i}]"
    argv = FFMPEG + ["-i", str(src), "-filter_complex", graph]
    for i, out in enumerate(outs):
        argv += ["-map", f"[v{i}]", "-map", "0:a:0?"] + x264_args() + [str(out)]
    return argv


# --------------------------------------------------------------------------------------------------------
# The server

HELP_CACHE: dict[str, str] = {}


def serve_help() -> str:
    if "serve" not in HELP_CACHE:
        HELP_CACHE["serve"] = subprocess.run([str(FRAMEPRESS), "serve", "--help"], capture_output=True,
                                             text=True).stdout
    return HELP_CACHE["serve"]


def limit_lifting_flags(kinds=("max-streams-per-ip", "max-streams", "max-connections", "max-uploads-per-ip",
                               "max-uploads")) -> list[str]:
    """Flags that lift the server's connection limits, for the options this binary has."""
    flags = []
    help_text = serve_help()
    for k in kinds:
        if re.search(rf"^\s*--{re.escape(k)}\b", help_text, re.M):
            flags += [f"--{k}", "1000000"]
    return flags


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, PermissionError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """A framepress process: `serve` (default), `api` or `worker`, in its own directory and process group."""

    def __init__(self, name: str, extra: list[str] = (), preset: str = PRESET, role: str = "serve",
                 data_dir: Path | None = None):
        self.name = name
        self.role = role
        _server_count[0] += 1
        self.dir = TMP / f"{role}-{name}-{_server_count[0]}"
        self.shown_dir = f"$TMP/{role}-{name}"
        self.count = _server_count[0]
        self.dir.mkdir(parents=True)
        (self.dir / "empty.toml").write_text("")
        self.port = free_port() if role != "worker" else 0
        self.argv = [str(FRAMEPRESS), role, "--config", str(self.dir / "empty.toml"),
                     "--data-dir", str(data_dir or self.dir / "data")]
        if role != "worker":
            self.argv += ["--listen", f"127.0.0.1:{self.port}", "--encoder-preset", preset]
        self.argv += ["--log-format", "text"] + list(extra)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FRAMEPRESS_") and k not in
               ("MAX_RESOLUTION", "MAX_WORKERS", "MAX_CONTENT_LENGTH", "KAFKA_SERVER", "MINIO_BUCKET")}
        self.log_path = self.dir / "server.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=self.dir, env=env, start_new_session=True,
                                     preexec_fn=_raise_nofile)
        _servers.append(self)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{role} {name} exited: {self.log_path.read_text()[-2000:]}")
            if role == "worker":
                # Ready once it has replayed the log and holds the partitions of every class's tasks topic.
                text = self.log_text()
                if "event log replayed" in text and len(re.findall(r"assigned partitions", text)) >= 3:
                    break
            else:
                try:
                    status, _ = self.request("GET", "/readyz")
                    if status == 200:
                        break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{role} {name} not ready: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def shown_argv(self) -> str:
        """The command line for the report: the same for every run of one kind."""
        text = show(self.argv).replace(f"{self.shown_dir}-{self.count}/", f"{self.shown_dir}/")
        if self.port:
            text = text.replace(f"127.0.0.1:{self.port}", "127.0.0.1:$PORT")
        broker = _kafka_state.get("broker")
        if broker:
            text = text.replace(broker.bootstrap, "127.0.0.1:$KAFKA_PORT")
        return text

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, data
        finally:
            c.close()

    def status(self) -> dict[str, int]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
        return out

    def cpu(self) -> tuple[float, float]:
        """(own CPU seconds, CPU seconds of its reaped children: ffmpeg and ffprobe)."""
        f = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return (int(f[11]) + int(f[12])) / tck, (int(f[13]) + int(f[14])) / tck

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self not in _servers:
            return
        _servers.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        # ffmpeg children share the group; make sure none outlives the server.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log_file.close()

    # ---- the API

    def upload_curl(self, path: Path, query: str, section: str) -> tuple[dict, float]:
        """Raw upload with curl; returns (job, monotonic time curl exited with the 201)."""
        url = f"http://127.0.0.1:{self.port}/api/videos?filename={path.name}&{query}"
        argv = ["curl", "-sS", "--fail-with-body", "-X", "POST", "-H", "Content-Type: video/mp4", "-T", str(path), url]
        note_command(section, show(argv).replace(f"127.0.0.1:{self.port}", "127.0.0.1:$PORT"))
        p = subprocess.run(argv, capture_output=True, check=True)
        t = time.monotonic()
        return json.loads(p.stdout), t

    def upload(self, path: Path, query: str) -> tuple[dict, int, int, int]:
        """Raw upload with http.client; returns (job, monotonic ns before sending, monotonic ns and Unix ms at
        the 201's arrival)."""
        size = path.stat().st_size
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120, blocksize=MIB)
        try:
            with open(path, "rb") as f:
                t_send = time.monotonic_ns()
                c.request("POST", f"/api/videos?filename={path.name}&{query}", body=f,
                          headers={"Content-Type": "video/mp4", "Content-Length": str(size)})
                r = c.getresponse()
                t_mono, t_wall = time.monotonic_ns(), time.time_ns() // 1_000_000
                body = r.read()
            if r.status != 201:
                raise RuntimeError(f"upload: {r.status} {body[:300]!r}")
            return json.loads(body), t_send, t_mono, t_wall
        finally:
            c.close()

    def follow(self, path: str, timeout=1200, replay=False) -> dict[str, tuple[int, dict]]:
        """Follows an SSE stream until it ends; returns, for each event name, (monotonic ns of its first
        arrival, its data). A job's terminal event ends the stream. replay: `Last-Event-ID: 0`, so every event
        of the job comes, those before the connection too, with their own `at_ms`."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        seen: dict[str, tuple[int, dict]] = {}
        headers = {"Accept": "text/event-stream"}
        if replay:
            headers["Last-Event-ID"] = "0"
        try:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            if r.status != 200:
                raise RuntimeError(f"events: {r.status} {r.read()[:300]!r}")
            name, data = None, []
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.rstrip(b"\r\n")
                if not line:
                    if name or data:
                        t = time.monotonic_ns()
                        try:
                            obj = json.loads(b"\n".join(data)) if data else {}
                        except ValueError:
                            obj = {}
                        seen.setdefault(name or "message", (t, obj))
                    name, data = None, []
                elif line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].lstrip())
            return seen
        finally:
            c.close()

    def follow_job(self, vid: str, replay=False) -> dict[str, tuple[int, dict]]:
        seen = self.follow(f"/api/videos/{vid}/events", replay=replay)
        if "completed" not in seen:
            raise RuntimeError(f"job {vid} did not complete: {sorted(seen)}; log: {self.log_text()[-3000:]}")
        return seen

    def delete(self, vid: str):
        self.request("DELETE", f"/api/videos/{vid}")


def groups_in_log(text: str) -> list[list[int]]:
    """For each job in the server's log, the number of renditions of each ffmpeg it ran."""
    jobs: dict[str, list[int]] = {}
    for vid, n in re.findall(r"\[(\w+) [^\]]*\] encoding (\d+) rendition\(s\) from one decode", text):
        jobs.setdefault(vid, []).append(int(n))
    return list(jobs.values())


# --------------------------------------------------------------------------------------------------------
# Results

RESULTS: dict[str, dict] = {}
FAILED: dict[str, str] = {}
SUMMARY: list[dict] = []  # rows: benchmark, figure, value text, ratio text, aim, met (True/False/None)


def summary(bench, figure, value, baseline, aim, met):
    SUMMARY.append(dict(bench=bench, figure=figure, value=value, baseline=baseline, aim=aim, met=met))


def fmt_s(x):
    return f"{x:.2f} s"


def fmt_ms(x):
    return f"{x:.1f} ms".replace("-0.0 ms", "0.0 ms")


def fmt_r(x, digits=2):
    """A ratio, without the '-0.00' of a tiny negative."""
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


# --------------------------------------------------------------------------------------------------------
# 1. Ladder and 2. overhead of one rendition

def bench_ladder(src: Path):
    log("ladder: 1080p source into", ",".join(LADDER))
    sizes = [rung_size(int(r[:-1]), 1920, 1080) for r in LADDER]
    server = Server("ladder")
    note_command("ladder", server.shown_argv())
    rows = []
    outdir = TMP / "ladder-out"
    for i in range(RUNS):
        # Interleaved, so that whatever else the machine does is spread over the three alike.
        sync_disk()
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir()
        own0, kids0 = server.cpu()
        job, t201 = server.upload_curl(src, "renditions=" + ",".join(LADDER), "ladder")
        seen = server.follow_job(job["id"])
        fp = (seen["completed"][0] / 1e9) - t201
        own1, kids1 = server.cpu()
        got = {r["name"]: (r["width"], r["height"]) for r in job["renditions"]}
        if [got[r] for r in LADDER] != sizes:
            raise RuntimeError(f"ladder sizes differ: framepress {got}, bench {sizes}")
        _, final = server.request("GET", f"/api/videos/{job['id']}")
        fp_bytes = sum(r["size"] for r in final["renditions"])
        server.delete(job["id"])

        sync_disk()
        seq_wall, seq_cpu = 0.0, 0.0
        for name, (w, h) in zip(LADDER, sizes):
            wall, cpu = timed(one_rendition_cmd(src, w, h, outdir / f"seq-{name}.mp4"), "ladder")
            seq_wall += wall
            seq_cpu += cpu
        seq_bytes = sum(p.stat().st_size for p in outdir.glob("seq-*.mp4"))

        sync_disk()
        one_wall, one_cpu = timed(split_cmd(src, sizes, [outdir / f"one-{n}.mp4" for n in LADDER]), "ladder")
        one_bytes = sum(p.stat().st_size for p in outdir.glob("one-*.mp4"))
        row = dict(framepress=fp, framepress_cpu=(own1 - own0) + (kids1 - kids0), framepress_bytes=fp_bytes,
                   sequential=seq_wall, sequential_cpu=seq_cpu, sequential_bytes=seq_bytes,
                   single=one_wall, single_cpu=one_cpu, single_bytes=one_bytes)
        log(f"ladder run {i + 1}: framepress {fp:.2f}s, (a) {seq_wall:.2f}s, (b) {one_wall:.2f}s")
        rows.append(row)
    groups = groups_in_log(server.log_text())
    server.stop()
    shutil.rmtree(outdir, ignore_errors=True)
    med = {k: median([r[k] for r in rows]) for k in rows[0]}
    speedup = med["sequential"] / med["framepress"]
    vs_single = med["framepress"] / med["single"]
    RESULTS["ladder"] = dict(rows=rows, median=med, speedup=speedup, vs_single=vs_single, groups=groups,
                             sizes=sizes)
    summary("1. Ladder (6 rungs)", "speed-up over (a) one ffmpeg per rendition, one after another",
            f"{speedup:.2f}×", f"(a) {fmt_s(med['sequential'])}, framepress {fmt_s(med['framepress'])}",
            "≥ 1.40×", speedup >= 1.4)
    summary("1. Ladder (6 rungs)", "framepress time / (b) one hand-written split command",
            f"{vs_single:.3f}", f"(b) {fmt_s(med['single'])}", "≤ 1.05", vs_single <= 1.05)


def bench_overhead(src: Path):
    log("overhead: one 720p rendition")
    w, h = rung_size(720, 1920, 1080)
    server = Server("overhead")
    note_command("overhead", server.shown_argv())
    rows = []
    for i in range(RUNS):
        sync_disk()
        job, t201 = server.upload_curl(src, "renditions=720p", "overhead")
        seen = server.follow_job(job["id"])
        fp = seen["completed"][0] / 1e9 - t201
        # started → done as the server saw it: the part of the time that is the encode itself
        server.delete(job["id"])
        sync_disk()
        bare, _ = timed(one_rendition_cmd(src, w, h, TMP / "overhead-720p.mp4"), "overhead")
        (TMP / "overhead-720p.mp4").unlink()
        log(f"overhead run {i + 1}: framepress {fp:.2f}s, ffmpeg {bare:.2f}s")
        rows.append(dict(framepress=fp, ffmpeg=bare))
    server.stop()
    med = {k: median([r[k] for r in rows]) for k in rows[0]}
    ratio = med["framepress"] / med["ffmpeg"]
    RESULTS["overhead"] = dict(rows=rows, median=med, ratio=ratio)
    summary("2. One rendition (720p)", "framepress time / bare ffmpeg time", f"{ratio:.3f}",
            f"ffmpeg {fmt_s(med['ffmpeg'])}, framepress {fmt_s(med['framepress'])}", "≤ 1.05", ratio <= 1.05)


# --------------------------------------------------------------------------------------------------------
# 3. Dispatch latency

class ExecWatcher:
    """Linux proc connector: the kernel reports every exec() with its monotonic time stamp, so the moment a
    server's ffmpeg child starts is known to the microsecond without polling /proc."""

    def __init__(self, parent_pid: int):
        self.parent = parent_pid
        self.execs: list[int] = []  # monotonic ns of each exec of an ffmpeg child of the server
        self.lost = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)  # NETLINK_CONNECTOR
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * MIB)
        self.sock.bind((0, 1))  # CN_IDX_PROC
        op = struct.pack("=I", 1)  # PROC_CN_MCAST_LISTEN
        cn = struct.pack("=IIIIHH", 1, 1, 0, 0, len(op), 0) + op
        self.sock.send(struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:  # ENOBUFS: the machine exec'd faster than we read
                self.lost += 1
                continue
            off = 0
            while off + 16 <= len(data):
                length = struct.unpack_from("=I", data, off)[0]
                if length < 16:
                    break
                msg = data[off:off + length]
                off += (length + 3) & ~3
                if len(msg) < 60:
                    continue
                what, _cpu, ts = struct.unpack_from("=IIQ", msg, 36)
                if what != 2:  # PROC_EVENT_EXEC
                    continue
                pid = struct.unpack_from("=I", msg, 52)[0]
                try:
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                    if comm != "ffmpeg":
                        continue
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    if int(stat[1]) == self.parent:
                        self.execs.append(ts)
                except (OSError, IndexError, ValueError):
                    continue

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


def dispatch_jobs(api: Server, encoder_pid: int, tiny: Path, label: str) -> dict:
    """DISPATCH_JOBS jobs one at a time (the queue is empty each time) through `api`; the ffmpeg that counts
    is a child of `encoder_pid` (the server, or the worker process)."""
    try:
        watcher = ExecWatcher(encoder_pid)
    except OSError as e:
        log(f"proc connector unavailable ({e}): only the rendition.started time is measured")
        watcher = None
    proc_ms, started_ms, job_ms = [], [], []
    missing = 0
    # One warm-up job, not counted: the first job after start also pays for first connections, topic metadata
    # and the like.
    job, _, t201, _ = api.upload(tiny, "renditions=144p")
    seen = api.follow_job(job["id"], replay=True)
    warmup_ms = (seen["completed"][0] - t201) / 1e6
    api.delete(job["id"])
    for i in range(DISPATCH_JOBS):
        job, t_send, t201, t201_wall = api.upload(tiny, "renditions=144p")
        seen = api.follow_job(job["id"], replay=True)
        t_done = seen["completed"][0]
        if "started" in seen and "at_ms" in seen["started"][1]:
            started_ms.append(seen["started"][1]["at_ms"] - t201_wall)
        job_ms.append((t_done - t201) / 1e6)
        if watcher:
            time.sleep(0.02)  # let the watcher thread read the exec event
            execs = [t for t in watcher.execs if t_send <= t <= t_done]
            if execs:
                proc_ms.append((min(execs) - t201) / 1e6)
            else:
                missing += 1
        api.delete(job["id"])
    lost = watcher.lost if watcher else 0
    if watcher:
        watcher.close()
    main_xs = proc_ms if proc_ms and missing == 0 else started_ms
    which = "ffmpeg exec (proc connector)" if main_xs is proc_ms else "rendition.started at_ms"
    res = dict(jobs=DISPATCH_JOBS, proc=proc_ms, started=started_ms, job=job_ms, missing=missing, lost=lost,
               p50=pct(main_xs, 50), p99=pct(main_xs, 99), which=which, n=len(main_xs), warmup_ms=warmup_ms)
    log(f"dispatch {label}: p50 {res['p50']:.1f} ms, p99 {res['p99']:.1f} ms ({which})")
    return res


class KafkaBroker:
    """A single-node broker from scripts/kafka.sh (the project's own script for tests), in the run's
    temporary directory; stopped on exit, and by the script's watchdog should this process die."""

    def __init__(self):
        self.dir = TMP / "kafka"
        self.script = REPO / "scripts/kafka.sh"
        env = dict(os.environ, KAFKA_OWNER_PID=str(os.getpid()))
        subprocess.run([str(self.script), "install"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        _brokers.append(self)
        subprocess.run([str(self.script), "start", str(self.dir)], check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        vals = dict(line.split("=", 1) for line in (self.dir / "env").read_text().split())
        self.bootstrap = vals["KAFKA_BOOTSTRAP"]

    def stop(self):
        if self in _brokers:
            _brokers.remove(self)
            subprocess.run([str(self.script), "stop", str(self.dir)], check=False, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


_brokers: list[KafkaBroker] = []
_kafka_state: dict = {}


def kafka_available() -> str | None:
    """None when Kafka runs can be made, else why not."""
    top = subprocess.run([str(FRAMEPRESS), "--help"], capture_output=True, text=True).stdout
    if not all(re.search(rf"^\s+{c}\s", top, re.M) for c in ("api", "worker")):
        listed = ", ".join(re.findall(r"^  (\w+)\s", top, re.M))
        return (f"this build has no `framepress api`/`framepress worker` (`framepress --help` lists {listed}): "
                "nothing to measure over Kafka yet.")
    if os.environ.get("BENCH_NO_KAFKA"):
        return "BENCH_NO_KAFKA is set."
    if not (REPO / "scripts/kafka.sh").exists():
        return "there is no scripts/kafka.sh to start a broker with."
    return _kafka_state.get("failed")


def kafka_broker() -> KafkaBroker:
    """One broker for the whole run, started on first use (each use has its own topics)."""
    if "broker" not in _kafka_state:
        log("starting a Kafka broker (scripts/kafka.sh)")
        try:
            _kafka_state["broker"] = KafkaBroker()
        except subprocess.CalledProcessError as e:
            err = (e.stderr or b"").decode(errors="replace").strip().splitlines()
            _kafka_state["failed"] = f"the broker did not start: {(err or [str(e)])[-1][:300]}"
            raise RuntimeError(_kafka_state["failed"])
        note_command("kafka", "scripts/kafka.sh start $TMP/kafka   # one broker+controller (KRaft), Kafka 3.9")
    return _kafka_state["broker"]


def kafka_flags(tag: str) -> list[str]:
    b = kafka_broker()
    return ["--bus", f"kafka://{b.bootstrap}", "--storage", f"file://{TMP / ('objects-' + tag)}",
            "--kafka-events-topic", f"bench.{tag}.events", "--kafka-tasks-topic-prefix", f"bench.{tag}.tasks."]


def kafka_shown(server: "Server") -> str:
    return server.shown_argv()


def bench_dispatch(tiny: Path):
    log(f"dispatch: {DISPATCH_JOBS} jobs of a tiny clip into 144p, embedded")
    server = Server("dispatch")
    note_command("dispatch", server.shown_argv())
    note_command("dispatch", f"POST /api/videos?filename={tiny.name}&renditions=144p  (Python http.client, raw "
                             f"body), then GET /api/videos/ID/events (Last-Event-ID: 0) until `completed`, one job "
                             f"at a time")
    embedded = dispatch_jobs(server, server.pid, tiny, "embedded")
    server.stop()
    res = dict(embedded=embedded, kafka=None, kafka_note="")
    # Over Kafka: `framepress api` and `framepress worker` with a broker from scripts/kafka.sh.
    res["kafka_note"] = kafka_available() or ""
    if not res["kafka_note"]:
        api = worker = None
        try:
            flags = kafka_flags("dispatch")
            api = Server("dispatch-kafka", flags, role="api")
            worker = Server("dispatch-kafka", flags, role="worker")
            for x in (api, worker):
                note_command("dispatch", kafka_shown(x))
            log(f"dispatch: {DISPATCH_JOBS} jobs over Kafka")
            res["kafka"] = dispatch_jobs(api, worker.pid, tiny, "kafka")
        except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
            res["kafka_note"] = f"the Kafka run failed: {str(e)[:300]}"
            log("dispatch over Kafka failed:", e)
        finally:
            for x in (worker, api):
                if x:
                    x.stop()
    # The baseline: the encode itself, run bare.
    bare = []
    for _ in range(max(RUNS, 5)):
        wall, _ = timed(one_rendition_cmd(tiny, *rung_size(144, 640, 360), TMP / "d-144p.mp4"), "dispatch")
        bare.append(wall * 1000)
    res["bare_ms"] = bare_med = median(bare)
    RESULTS["dispatch"] = res
    log(f"dispatch: bare 144p encode {bare_med:.0f} ms")
    for label, r in (("embedded", embedded), ("over Kafka", res["kafka"])):
        if r is None:
            summary(f"3. Dispatch, {label}", "201 → first ffmpeg started", "not measured", res["kafka_note"],
                    "— (no aim set)", None)
            continue
        summary(f"3. Dispatch, {label}", f"201 → first ffmpeg started, p50 / p99 ({r['n']} jobs)",
                f"{fmt_ms(r['p50'])} / {fmt_ms(r['p99'])}",
                f"{fmt_r(r['p50'] / bare_med)} / {fmt_r(r['p99'] / bare_med)} of the bare 144p encode ({bare_med:.0f} ms)",
                "— (no aim set)", None)


# --------------------------------------------------------------------------------------------------------
# 4. SSE fan-out

def sse_run(connections: int, blocker_src: Path, job_src: Path) -> dict:
    """One server (--workers 1). A slow blocker job keeps the worker busy while `connections` subscribers
    attach to a queued target job; then the blocker is cancelled and the target runs while they listen."""
    flags = ["--workers", "1"] + limit_lifting_flags()
    server = Server(f"sse{connections}", flags)
    note_command("sse", server.shown_argv())
    try:
        blocker, _, _, _ = server.upload(blocker_src, "preset=quality")
        time.sleep(0.5)
        target, _, _, _ = server.upload(job_src, "renditions=144p,240p,360p")
        time.sleep(0.5)
        rss_before = server.status()["VmRSS"]
        argv = [SSE_LOAD, "--port", server.port, "--path", f"/api/videos/{target['id']}/events",
                "--connections", connections, "--sources", 8, "--batch", 512, "--timeout", 600]
        note_command("sse", show(argv).replace(f"--port {server.port}", "--port $PORT").replace(target["id"], "ID"))
        err = open(TMP / f"sse_load-{connections}.log", "wb")
        gen = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=err, text=True,
                               start_new_session=True)
        _children.append(gen)
        line = gen.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"sse_load: {line!r}")
        _, ready, failed, setup_ms = line.split()
        time.sleep(1.0)
        rss_with = server.status()["VmRSS"]
        _, tj = server.request("GET", f"/api/videos/{target['id']}")
        valid = tj["state"] == "queued"
        own0, _ = server.cpu()
        gen_cpu0 = _proc_cpu(gen.pid)
        t0 = time.monotonic()
        status, _ = server.request("POST", f"/api/videos/{blocker['id']}/cancel")
        out = gen.stdout.read()
        phase = time.monotonic() - t0
        _, wstatus, ru = os.wait4(gen.pid, 0)
        gen.returncode = os.waitstatus_to_exitcode(wstatus)
        _children.remove(gen)
        err.close()
        own1, _ = server.cpu()
        res = json.loads(out.strip().splitlines()[-1])
        res.update(ready=int(ready), failed_at_ready=int(failed), setup_ms=int(setup_ms), rss_before=rss_before,
                   rss_with=rss_with, per_conn=(rss_with - rss_before) / max(1, int(ready)), valid=valid,
                   server_cpu=own1 - own0, gen_cpu=ru.ru_utime + ru.ru_stime - gen_cpu0, cancel_status=status,
                   phase_s=phase)
        res["cpu_us_per_delivery"] = res["server_cpu"] / max(1, res["samples"]) * 1e6
        res["event_count"] = len(res["per_event"])
        return res
    finally:
        server.stop()


def _proc_cpu(pid) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def bench_sse(blocker_src: Path):
    if not SSE_LOAD.exists():
        log(f"sse: {SSE_LOAD} missing (bench/run.sh builds it)")
        return
    job_src = TMP / f"sse-{SSE_JOB_SECONDS}s-360p.mp4"
    make_clip(job_src, 640, 360, SSE_JOB_SECONDS)
    res = {"baseline": [], "load": []}
    for i in range(RUNS):
        for kind, n in (("baseline", SSE_BASELINE_CONNECTIONS), ("load", SSE_CONNECTIONS)):
            log(f"sse run {i + 1}: {n} subscribers")
            r = sse_run(n, blocker_src, job_src)
            log(f"sse run {i + 1}: {n} subscribers: ready {r['ready']}/{n} in {r['setup_ms']} ms, "
                f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"{r['per_conn'] / 1024:.1f} KiB/conn, failed {r['failed']}, valid {r['valid']}")
            res[kind].append(r)
    RESULTS["sse"] = res
    load = res["load"]
    base = res["baseline"]
    p50 = median([r["p50_ms"] for r in load])
    p99 = median([r["p99_ms"] for r in load])
    b99 = median([r["p99_ms"] for r in base])
    b50 = median([r["p50_ms"] for r in base])
    kib = median([r["per_conn"] for r in load]) / 1024
    summary("4. SSE fan-out", f"delivery latency p50 / p99, {SSE_CONNECTIONS} subscribers",
            f"{fmt_ms(p50)} / {fmt_ms(p99)}",
            f"{p50 / b50:.1f}× / {p99 / b99:.1f}× the same with {SSE_BASELINE_CONNECTIONS} subscribers "
            f"({fmt_ms(b50)} / {fmt_ms(b99)})" if b50 > 0 and b99 > 0 else "—",
            "p99 < 100 ms", p99 < 100 and all(r["ready"] == SSE_CONNECTIONS for r in load))
    summary("4. SSE fan-out", "server RSS per subscriber", f"{kib:.1f} KiB",
            f"{kib / 20:.2f} of the 20 KiB aim", "< 20 KiB", kib < 20)


# --------------------------------------------------------------------------------------------------------
# 5. Uploads

def bench_upload():
    log(f"uploads: {UPLOAD_BYTES / MIB:.0f} MiB raw and multipart")
    payload = TMP / "payload.bin"
    argv = ["dd", "if=/dev/urandom", f"of={payload}", f"bs={MIB}", f"count={UPLOAD_BYTES // MIB}",
            "status=none"]
    note_command("upload", argv)
    run(argv)
    rows = []
    flags = limit_lifting_flags(("max-uploads-per-ip", "max-uploads"))
    for i in range(RUNS):
        row = {}
        # dd: the same bytes, from the same (cached) file, to the same disk, without fsync.
        sync_disk()
        dd_out = TMP / "dd.out"
        w, _ = timed(["dd", f"if={payload}", f"of={dd_out}", f"bs={MIB}", "status=none"], "upload")
        row["dd"] = UPLOAD_BYTES / w
        dd_out.unlink()
        for kind in ("raw", "multipart"):
            server = Server(f"upload-{kind}", flags)
            if i == 0 and kind == "raw":
                note_command("upload", server.shown_argv())
            sync_disk()
            try:
                Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            except OSError:
                pass
            start = server.status()["VmRSS"]
            cpu0, _ = server.cpu()
            url = f"http://127.0.0.1:{server.port}/api/videos"
            if kind == "raw":
                argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                        "-H", "Content-Type: video/mp4", "-T", str(payload), url + "?filename=payload.mp4"]
            else:
                argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                        "-F", f"video=@{payload};type=video/mp4;filename=payload.mp4", url]
            note_command("upload", show(argv).replace(f"127.0.0.1:{server.port}", "127.0.0.1:$PORT"))
            c0 = children_cpu()
            t0 = time.monotonic()
            p = subprocess.run(argv, capture_output=True, text=True)
            wall = time.monotonic() - t0
            row[kind + "_client_cpu"] = children_cpu() - c0
            st = server.status()
            cpu1, _ = server.cpu()
            row[kind + "_cpu"] = cpu1 - cpu0
            row[kind + "_util"] = (cpu1 - cpu0) / wall
            code = p.stdout.strip()
            row[kind] = UPLOAD_BYTES / wall
            row[kind + "_code"] = code
            row[kind + "_rss"] = st["VmHWM"] - start
            scratch = list((server.dir / "data").rglob("*"))
            row[kind + "_left"] = sum(1 for f in scratch if f.is_file() and f.stat().st_size > MIB)
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
        log(f"upload run {i + 1}: dd {row['dd'] / MIB:.0f} MiB/s, raw {row['raw'] / MIB:.0f} MiB/s "
            f"({row['raw_code']}, +{row['raw_rss'] / MIB:.1f} MiB), multipart {row['multipart'] / MIB:.0f} MiB/s "
            f"({row['multipart_code']}, +{row['multipart_rss'] / MIB:.1f} MiB)")
        rows.append(row)
    syscalls = upload_syscalls(payload)
    payload.unlink()
    med = {k: median([r[k] for r in rows]) for k in rows[0] if not k.endswith("_code")}
    RESULTS["upload"] = dict(rows=rows, median=med, syscalls=syscalls)
    for kind in ("raw", "multipart"):
        ratio = med[kind] / med["dd"]
        codes = {r[kind + "_code"] for r in rows}
        summary(f"5. Upload {UPLOAD_BYTES / MIB / 1024:.3g} GiB {kind}", "throughput / dd to the same disk",
                f"{ratio:.2f}", f"dd {med['dd'] / MIB:.0f} MiB/s, framepress {med[kind] / MIB:.0f} MiB/s "
                f"(answer {', '.join(sorted(codes))})", "≥ 0.70", ratio >= 0.70 and codes == {"422"})
        rss = med[kind + "_rss"] / MIB
        summary(f"5. Upload {UPLOAD_BYTES / MIB / 1024:.3g} GiB {kind}", "peak RSS growth (VmHWM − VmRSS at start)",
                f"{rss:.1f} MiB", f"{rss / 64:.2f} of the 64 MiB aim", "≤ 64 MiB", rss <= 64)


def upload_syscalls(payload: Path) -> dict | None:
    """Diagnosis, not timed: the server's system calls for a raw upload of the first 32 MiB of the payload,
    counted by `strace -c -f` (when strace is installed)."""
    if not shutil.which("strace"):
        return None
    part = TMP / "payload-head.bin"
    n = min(UPLOAD_BYTES, 32 * MIB)
    with open(payload, "rb") as f, open(part, "wb") as g:
        g.write(f.read(n))
    server = Server("upload-strace")
    out = TMP / "strace.txt"
    try:
        st = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p", str(server.pid)],
                              stderr=subprocess.DEVNULL)
        _children.append(st)
        time.sleep(1.0)
        argv = ["curl", "-sS", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: video/mp4", "-T", str(part),
                f"http://127.0.0.1:{server.port}/api/videos?filename=payload.mp4"]
        subprocess.run(argv, check=False)
        time.sleep(0.5)
        st.send_signal(signal.SIGINT)
        st.wait(timeout=30)
        _children.remove(st)
        calls = {}
        for line in out.read_text().splitlines():
            f = line.split()
            if len(f) >= 5 and f[0][0].isdigit() and not f[-1].startswith("total"):
                calls[f[-1]] = int(f[3])
        note_command("upload", f"strace -c -f -p <server pid>   # during one untimed {n // MIB} MiB raw upload")
        return dict(bytes=n, calls=calls)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        log(f"strace diagnosis failed: {e}")
        return None
    finally:
        server.stop()
        part.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------
# 6. Throughput

def bench_throughput():
    rungs = ["144p", "240p", "360p"]
    log(f"throughput: {THROUGHPUT_JOBS} jobs of a {THROUGHPUT_SECONDS} s 360p clip into {','.join(rungs)}")
    clip = TMP / f"tp-{THROUGHPUT_SECONDS}s-360p.mp4"
    make_clip(clip, 640, 360, THROUGHPUT_SECONDS)
    sizes = [rung_size(int(r[:-1]), 640, 360) for r in rungs]
    outdir = TMP / "tp-out"
    rows = []
    groups: dict[str, list] = {}
    kafka_note = kafka_available() or ""

    def jobs_through(api: Server) -> float:
        t0 = time.monotonic()
        ids = [api.upload(clip, "renditions=" + ",".join(rungs))[0]["id"] for _ in range(THROUGHPUT_JOBS)]
        api.follow("/api/events?ids=" + ",".join(ids))
        wall = time.monotonic() - t0
        for vid in ids:
            _, j = api.request("GET", f"/api/videos/{vid}")
            if j["state"] != "completed":
                raise RuntimeError(f"throughput job {vid}: {j['state']}")
        return wall

    def embedded_run(workers: int) -> float:
        server = Server(f"tp-w{workers}", ["--workers", str(workers)])
        note_command("throughput", server.shown_argv())
        try:
            wall = jobs_through(server)
            groups.setdefault(f"w{workers}", []).extend(groups_in_log(server.log_text()))
            return wall
        finally:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)

    def kafka_run(processes: int, run_no: int) -> float:
        procs: list[Server] = []
        try:
            flags = kafka_flags(f"tp-k{processes}-r{run_no}")
            api = Server(f"tp-k{processes}", flags, role="api")
            procs.append(api)
            for _ in range(processes):
                procs.append(Server(f"tp-k{processes}", flags + ["--concurrency", "1"], role="worker"))
            # Let the group settle: every worker holds its share of each class's partitions.
            time.sleep(2)
            for x in procs:  # the same line for every run: its topics and store are -r<run>
                note_command("throughput", kafka_shown(x).replace(f"-r{run_no}", "-rN"))
            wall = jobs_through(api)
            for x in procs[1:]:
                groups.setdefault(f"k{processes}", []).extend(groups_in_log(x.log_text()))
            return wall
        finally:
            for x in reversed(procs):
                x.stop()

    def bare_run(parallel: int) -> float:
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir()
        cmds = [split_cmd(clip, sizes, [outdir / f"j{j}-{r}.mp4" for r in rungs]) for j in range(THROUGHPUT_JOBS)]
        note_command("throughput", cmds[0])
        t0 = time.monotonic()
        with ThreadPoolExecutor(parallel) as ex:
            list(ex.map(lambda a: run(a, stdin=subprocess.DEVNULL), cmds))
        return time.monotonic() - t0

    note_command("throughput", f"{THROUGHPUT_JOBS} × POST /api/videos?renditions={','.join(rungs)} (Python "
                               f"http.client, one after another), then GET /api/events?ids=… until every job ended")
    for i in range(RUNS):
        sync_disk()
        row = dict(w1=embedded_run(1), bare1=bare_run(1), w2=embedded_run(2), bare2=bare_run(2))
        if not kafka_note:
            try:
                row.update(k1=kafka_run(1, i), k2=kafka_run(2, i))
            except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                kafka_note = f"the Kafka runs failed: {str(e)[:300]}"
                log("throughput over Kafka failed:", e)
        log("throughput run {}: ".format(i + 1) + ", ".join(f"{k} {v:.2f}s" for k, v in row.items()))
        rows.append(row)
    shutil.rmtree(outdir, ignore_errors=True)
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    med = {k: median([r[k] for r in rows]) for k in keys}
    per_min = {k: THROUGHPUT_JOBS / v * 60 for k, v in med.items()}
    RESULTS["throughput"] = dict(rows=rows, median=med, per_min=per_min, groups=groups, kafka_note=kafka_note)
    summary("6. Throughput, serve --workers 1", "jobs/min / bare ffmpeg one job at a time",
            f"{per_min['w1'] / per_min['bare1']:.2f}",
            f"{per_min['w1']:.0f} vs {per_min['bare1']:.0f} jobs/min", "— (no aim set)", None)
    summary("6. Throughput, serve --workers 2", "jobs/min / bare ffmpeg two jobs at a time",
            f"{per_min['w2'] / per_min['bare2']:.2f}",
            f"{per_min['w2']:.0f} vs {per_min['bare2']:.0f} jobs/min; 2 workers / 1 worker "
            f"{per_min['w2'] / per_min['w1']:.2f}×", "— (no aim set)", None)
    if "k1" in per_min and "k2" in per_min:
        summary("6. Throughput, 1 `framepress worker` (Kafka)", "jobs/min / bare ffmpeg one job at a time",
                f"{per_min['k1'] / per_min['bare1']:.2f}",
                f"{per_min['k1']:.0f} vs {per_min['bare1']:.0f} jobs/min", "— (no aim set)", None)
        summary("6. Throughput, 2 `framepress worker` (Kafka)", "jobs/min / bare ffmpeg two jobs at a time",
                f"{per_min['k2'] / per_min['bare2']:.2f}",
                f"{per_min['k2']:.0f} vs {per_min['bare2']:.0f} jobs/min; 2 processes / 1 "
                f"{per_min['k2'] / per_min['k1']:.2f}×", "— (no aim set)", None)
    else:
        summary("6. Throughput, `framepress worker` processes (Kafka)", "jobs/min", "not measured", kafka_note,
                "— (no aim set)", None)


# --------------------------------------------------------------------------------------------------------
# The machine and the report

def machine() -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) * 1024
    df = subprocess.run(["df", "-h", "--output=source,fstype,size,avail", str(TMP)], capture_output=True,
                        text=True).stdout.strip().splitlines()[-1]
    ff = subprocess.run(["ffmpeg", "-hide_banner", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    x264 = "?"
    fv = subprocess.run([str(FRAMEPRESS), "version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    q = subprocess.run(["dpkg-query", "-W", "libx264-[0-9]*"], capture_output=True, text=True).stdout.split()
    if len(q) >= 2:
        x264 = f"{q[0]} {q[1]}"
    ff = ff.split(" Copyright")[0]
    return dict(nproc=os.cpu_count(), cpu=cpu, mem=mem, kernel=platform.release(), ffmpeg=ff, framepress=fv,
                commit=commit + (" (with uncommitted changes in the work tree)" if dirty else ""),
                python=platform.python_version(), disk=df, load=os.getloadavg(), x264=x264,
                curl=subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0])


def yes_no(met):
    return "—" if met is None else ("yes" if met else "**no**")


def write_report(m: dict, started: float, load_after):
    L = []
    a = L.append
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    a("# framepress benchmarks")
    a("")
    a(f"Written by `make bench` (bench/run.sh → bench/bench.py) on {now}"
      + (" — **BENCH_QUICK smoke run: 1 run, short clips; not figures to quote**" if QUICK else "") + ". ")
    a("Every figure is a ratio against a baseline measured in the same run on the same machine, the median of "
      f"{RUNS} run{'s' if RUNS > 1 else ''} (framepress and its baselines interleaved run by run). "
      "Benchmarks are not tests: nothing in `make test` depends on them.")
    a("")
    a("**The machine is shared.** Other engineers' builds and tests may have run on the same 2 cores during "
      f"this run (load average {m['load'][0]:.1f} / {m['load'][1]:.1f} / {m['load'][2]:.1f} at the start, "
      f"{load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f} at the end). Ratios of interleaved runs "
      "hold up better than absolute times, but read every figure with that in mind.")
    a("")
    a("## Summary")
    a("")
    a("| benchmark | figure | value | against | aim | met |")
    a("|---|---|---|---|---|---|")
    for r in sorted(SUMMARY, key=lambda r: int(r["bench"].split(".")[0])):
        a(f"| {r['bench']} | {r['figure']} | {r['value']} | {r['baseline']} | {r['aim']} | {yes_no(r['met'])} |")
    for sec, why in FAILED.items():
        a(f"| section `{sec}` | **failed in this run** | {why} | — | — | — |")
    a("")
    a("## Machine and versions")
    a("")
    a(f"- CPU: {m['cpu']}, `nproc` = {m['nproc']}; memory {m['mem'] / (1 << 30):.1f} GiB")
    a(f"- Disk of the temporary directory (uploads, dd, data dirs): `{m['disk']}`")
    a(f"- Kernel {m['kernel']}; {m['ffmpeg']}; {m['x264']}")
    a(f"- {m['framepress']}, commit {m['commit']}")
    a(f"- {m['curl']}; Python {m['python']}")
    a(f"- x264 preset of every encode: `{PRESET}` (BENCH_PRESET; `veryfast` by default to keep the run short: "
      f"slower presets shift the time further into x264 and make framepress's share smaller), CRF {CRF}, "
      f"AAC {AUDIO_KBPS} kbit/s, `-pix_fmt yuv420p`, `-movflags +faststart` — the settings framepress uses.")
    a(f"- Test media made at run time with ffmpeg's lavfi `testsrc2` (light temporal noise) and `sine`, "
      "H.264 ultrafast CRF 20 + AAC; see the commands.")
    a(f"- The whole run took {(time.monotonic() - started) / 60:.1f} minutes.")
    a("")
    _ladder_section(a)
    _overhead_section(a)
    _dispatch_section(a)
    _sse_section(a)
    _upload_section(a)
    _throughput_section(a)
    _not_met_section(a)
    a("## Commands")
    a("")
    a("`$TMP` is the run's temporary directory, `$PORT` a free port, `ID` the job's id.")
    a("")
    for section in ["media", "kafka"] + SECTIONS:
        if section not in COMMANDS:
            continue
        a(f"### {section}")
        a("")
        a("```sh")
        for c in COMMANDS[section]:
            a(c)
        a("```")
        a("")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(L) + "\n")
    log(f"wrote {OUT}")


def _ladder_section(a):
    r = RESULTS.get("ladder")
    if not r:
        return
    a(f"## 1. Ladder: a 1080p {LADDER_SECONDS} s source into {', '.join(LADDER)}")
    a("")
    a("framepress: `framepress serve` (embedded, default workers: one per core, `--group-renditions` 8), the "
      "source uploaded with curl, the time from the 201 (curl exits) to the `completed` event on "
      "`GET /api/videos/ID/events`. (a) the prototype's way: one ffmpeg per rendition, one after another. "
      "(b) one hand-written ffmpeg: one decode, `split=6`, a scaler and an x264 per output, same settings. "
      "CPU = user + system seconds of the encoders (framepress: the server and its children).")
    a("")
    a("| run | framepress | (a) sequential | (b) one command | CPU framepress / (a) / (b) |")
    a("|---|---|---|---|---|")
    for i, x in enumerate(r["rows"]):
        a(f"| {i + 1} | {fmt_s(x['framepress'])} | {fmt_s(x['sequential'])} | {fmt_s(x['single'])} | "
          f"{x['framepress_cpu']:.1f} / {x['sequential_cpu']:.1f} / {x['single_cpu']:.1f} s |")
    md = r["median"]
    a(f"| **median** | **{fmt_s(md['framepress'])}** | **{fmt_s(md['sequential'])}** | **{fmt_s(md['single'])}** | "
      f"{md['framepress_cpu']:.1f} / {md['sequential_cpu']:.1f} / {md['single_cpu']:.1f} s |")
    a("")
    a(f"- Speed-up over (a): **{r['speedup']:.2f}×** (aim ≥ 1.4×). framepress / (b): **{r['vs_single']:.3f}** "
      "(aim ≤ 1.05).")
    a(f"- Output bytes (median): framepress {md['framepress_bytes'] / MIB:.1f} MiB, (a) "
      f"{md['sequential_bytes'] / MIB:.1f} MiB, (b) {md['single_bytes'] / MIB:.1f} MiB: the same encodes.")
    split = [g for g in r["groups"] if len(g) > 1]
    a(f"- Renditions per ffmpeg in framepress's log, per job: {r['groups']} ([6] is one decode for the whole "
      f"ladder; {len(split)} of {len(r['groups'])} jobs were split over several ffmpeg processes, i.e. decoded "
      "more than once: see the end of this file).")
    a("")


def _overhead_section(a):
    r = RESULTS.get("overhead")
    if not r:
        return
    a("## 2. Overhead for one rendition (720p)")
    a("")
    a("framepress (`?renditions=720p`, 201 → `completed`) against the bare ffmpeg command for the same output.")
    a("")
    a("| run | framepress | ffmpeg | ratio |")
    a("|---|---|---|---|")
    for i, x in enumerate(r["rows"]):
        a(f"| {i + 1} | {fmt_s(x['framepress'])} | {fmt_s(x['ffmpeg'])} | {x['framepress'] / x['ffmpeg']:.3f} |")
    md = r["median"]
    a(f"| **median** | **{fmt_s(md['framepress'])}** | **{fmt_s(md['ffmpeg'])}** | **{r['ratio']:.3f}** |")
    a("")


def _dispatch_section(a):
    res = RESULTS.get("dispatch")
    if not res:
        return
    a(f"## 3. Dispatch latency: 201 → first ffmpeg started ({DISPATCH_JOBS} jobs)")
    a("")
    a("One job at a time (the queue is empty each time): a 2 s 640×360 clip uploaded with Python's http.client "
      "into `?renditions=144p`, followed to `completed` with `Last-Event-ID: 0` (so every event comes, with its "
      "own `at_ms`). Embedded: one `framepress serve`. Over Kafka: `framepress api` and `framepress worker` "
      "(two processes, one broker from scripts/kafka.sh, a shared `file://` store). Two clocks:")
    a("")
    a("- **ffmpeg exec**: the Linux proc connector (netlink) reports each `exec` of an `ffmpeg` whose parent is "
      "the server (embedded) or the worker process (Kafka), with the kernel's monotonic time stamp, against the "
      "monotonic time the 201 was read. This is the figure in the summary when every job had one.")
    a("- **rendition.started**: the event's `at_ms` (published by the worker just before it starts ffmpeg) "
      "against the wall-clock millisecond the 201 was read.")
    a("")
    a("A negative value means the worker had started before the client finished reading the 201 (the tasks "
      "are enqueued before the answer is written). Percentiles are nearest-rank (p99 of 100 is the 99th). "
      "One warm-up job runs first and is not counted (its whole job time: " +
      ", ".join(f"{m} {r['warmup_ms']:.0f} ms" for m, r in (("embedded", res["embedded"]), ("Kafka", res["kafka"]))
                if r) + ").")
    a("")
    a("| mode | clock | p50 | p90 | p99 | max | jobs |")
    a("|---|---|---|---|---|---|---|")
    for mode, r in (("embedded", res["embedded"]), ("Kafka", res["kafka"])):
        if not r:
            continue
        for label, xs in (("ffmpeg exec", r["proc"]), ("rendition.started at_ms", r["started"]),
                          ("201 → completed (whole job)", r["job"])):
            if xs:
                a(f"| {mode} | {label} | {fmt_ms(pct(xs, 50))} | {fmt_ms(pct(xs, 90))} | {fmt_ms(pct(xs, 99))} | "
                  f"{fmt_ms(max(xs))} | {len(xs)} |")
    a("")
    e = res["embedded"]
    xs = e["proc"] or e["started"]
    slow = sum(1 for x in xs if 35 <= x <= 80)
    if xs and slow >= len(xs) // 10:
        a(f"Embedded, {slow} of {len(xs)} jobs waited 35–80 ms and most of the rest about 0: when a worker takes a "
          "task before the job book has folded the job's `job.created` (the book follows the SQLite log on its "
          "own thread), `WorkerPool::execute_group` waits for the job in 50 ms sleeps. Waking the worker when the "
          "book learns of the job (or publishing to the book before queuing the tasks) would remove that step.")
        a("")
    b = res["bare_ms"]
    a(f"Baseline: the same 144p encode as a bare ffmpeg takes {b:.0f} ms (median of its runs).")
    for mode, r in (("Embedded", res["embedded"]), ("Over Kafka", res["kafka"])):
        if r:
            a(f"{mode}: dispatch p50 is {fmt_r(r['p50'] / b)} of it and p99 {fmt_r(r['p99'] / b)}; the whole job "
              f"(201 → completed) takes {median(r['job']) / b:.2f}× the bare encode (median).")
            if r["lost"]:
                a(f"(The proc connector dropped messages {r['lost']} times: the machine exec'd faster than it was "
                  "read.)")
    if res["kafka"] is None:
        a("")
        a("**Over Kafka: not measured.** " + res["kafka_note"])
    a("")


def _sse_section(a):
    r = RESULTS.get("sse")
    if not r:
        return
    a(f"## 4. SSE fan-out: {SSE_CONNECTIONS} subscribers on one server")
    a("")
    a("Load generator: `bench/sse_load.cpp`, C++20 with Boost.Asio, one thread (built from bench/CMakeLists.txt "
      "into build/bench). C++ rather than Python asyncio: with 10,000 streams every event is 10,000 reads and "
      "parses, and the generator shares the two cores with the server it measures; in Python that costs "
      "tens of microseconds each (hundreds of milliseconds per event), which would show up as latency of the "
      "server. It raises RLIMIT_NOFILE, spreads connections over 127.0.0.2–127.0.0.9 (its own ephemeral port "
      "range for each), keeps at most 512 connects outstanding, de-chunks and parses every event, and records "
      "receive time (wall clock, µs) − the event's `at_ms`: publish-to-delivery, with up to 1 ms of truncation "
      "in `at_ms`.")
    a("")
    a("Each run: a fresh `framepress serve --workers 1` (with any connection limits it has lifted by flags); a "
      "slow blocker job (the ladder source, `?preset=quality`) holds the only worker while the subscribers "
      f"attach to a queued target job (a {SSE_JOB_SECONDS} s 360p clip into 144p, 240p, 360p); once all have "
      "their snapshot the server's VmRSS is read (before − with, / subscribers), the blocker is cancelled, and "
      "the target job runs while every subscriber receives its `started`, `progress`, `rendition` and "
      "`completed` events. Baseline: the same with "
      f"{SSE_BASELINE_CONNECTIONS} subscribers.")
    a("")
    a("Samples are (subscriber, event) pairs; setup is the time until every subscriber had its snapshot; the "
      "event phase runs from the blocker's cancel to the end of the last stream; server CPU is the server "
      "process's own (not ffmpeg's) in the event phase, also per delivered event.")
    a("")
    a("| run | subscribers | ready | failed | setup | samples | p50 | p90 | p99 | max | RSS/subscriber | event phase | server CPU | per delivery | generator CPU |")
    a("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind in ("baseline", "load"):
        for i, x in enumerate(r[kind]):
            a(f"| {i + 1} | {x['connections']} | {x['ready']} | {x['failed']} | {x['setup_ms'] / 1000:.1f} s | "
              f"{x['samples']} | {fmt_ms(x['p50_ms'])} | {fmt_ms(x['p90_ms'])} | {fmt_ms(x['p99_ms'])} | "
              f"{fmt_ms(x['max_ms'])} | {x['per_conn'] / 1024:.1f} KiB | {x['phase_s']:.1f} s | "
              f"{x['server_cpu']:.2f} s | {x['cpu_us_per_delivery']:.0f} µs | {x['gen_cpu']:.2f} s |")
    a("")
    load = r["load"]
    if load:
        x = load[len(load) // 2]
        a(f"Events per name on the subscribers (one run): `{json.dumps(x['events_by_name'])}`; errors: "
          f"`{json.dumps(x['errors'])}`.")
        worst = sorted(x["per_event"], key=lambda e: -e["last_ms"])[:5]
        a("Slowest events to reach their last subscriber (one run): " +
          ", ".join(f"{e['name']} {e['last_ms']:.0f} ms ({e['received']} got it)" for e in worst) + ".")
        if not all(y["valid"] for y in load + r["baseline"]):
            a("")
            a("**Some runs are not valid:** the target job had left `queued` before every subscriber was attached.")
    a("")


def _upload_section(a):
    r = RESULTS.get("upload")
    if not r:
        return
    a(f"## 5. Uploads: {UPLOAD_BYTES / MIB:.0f} MiB of random bytes, raw and multipart")
    a("")
    a("curl sends a file of random bytes (in the page cache) as a raw `video/mp4` body and as a multipart form; "
      "framepress streams it to a scratch file, ffprobe refuses it, and the answer is 422 after the whole body "
      "has been received and spooled: that is what is timed (curl's wall time). Baseline: `dd` copying the same "
      "file to the same disk (bs=1M). **No fsync on either side** (framepress does not fsync a scratch file; "
      "dd runs without conv=fsync), and `sync` runs (untimed) before each: both measure the write into the "
      "page cache of a machine with plenty of memory, so the ratio is framepress's receive path against a "
      "local copy, not against the disk's sustained speed. Peak RSS growth: each upload on a fresh server, "
      "VmHWM reset (`/proc/PID/clear_refs` 5) and VmRSS read before, VmHWM after.")
    a("")
    a("| run | dd | raw | multipart | raw RSS growth | multipart RSS growth | answers |")
    a("|---|---|---|---|---|---|---|")
    for i, x in enumerate(r["rows"]):
        a(f"| {i + 1} | {x['dd'] / MIB:.0f} MiB/s | {x['raw'] / MIB:.0f} MiB/s | {x['multipart'] / MIB:.0f} MiB/s | "
          f"{x['raw_rss'] / MIB:.1f} MiB | {x['multipart_rss'] / MIB:.1f} MiB | {x['raw_code']}, {x['multipart_code']} |")
    md = r["median"]
    a(f"| **median** | **{md['dd'] / MIB:.0f} MiB/s** | **{md['raw'] / MIB:.0f} MiB/s** ({md['raw'] / md['dd']:.2f}) | "
      f"**{md['multipart'] / MIB:.0f} MiB/s** ({md['multipart'] / md['dd']:.2f}) | {md['raw_rss'] / MIB:.1f} MiB | "
      f"{md['multipart_rss'] / MIB:.1f} MiB | |")
    a("")
    a("CPU time per upload (median; the server's own from /proc/PID/stat, curl's from its rusage):")
    a("")
    a("| | server CPU (own) | server CPU / wall | curl CPU |")
    a("|---|---|---|---|")
    for kind in ("raw", "multipart"):
        a(f"| {kind} | {md[kind + '_cpu']:.2f} s | {md[kind + '_util']:.2f} | {md[kind + '_client_cpu']:.2f} s |")
    a("")
    sc = r.get("syscalls")
    if sc and sc["calls"]:
        mib = sc["bytes"] / MIB
        top = sorted(sc["calls"].items(), key=lambda kv: -kv[1])[:8]
        a(f"System calls of the server during one untimed {mib:.0f} MiB raw upload (`strace -c -f`), per MiB "
          "received: " + ", ".join(f"{k} {v / mib:.0f}" for k, v in top) + ".")
        rv = sc["calls"].get("recvmsg") or sc["calls"].get("read")
        if rv:
            a(f"That is {sc['bytes'] / rv / 1024:.1f} KiB per socket read.")
        a("")


def _throughput_section(a):
    r = RESULTS.get("throughput")
    if not r:
        return
    kafka = "k1" in r["per_min"]
    a(f"## 6. Throughput: {THROUGHPUT_JOBS} small jobs ({THROUGHPUT_SECONDS} s 360p clip into 144p, 240p, 360p)")
    a("")
    a("Embedded: one `framepress serve` process with `--workers 1`, then one with `--workers 2` (worker threads of "
      "one process)." + (" Over Kafka: one `framepress api` and one, then two, `framepress worker` processes "
      "(`--concurrency 1` each), each run on topics of its own, on the same broker." if kafka else "") +
      " The jobs are uploaded one after another and followed on one `GET /api/events?ids=…` stream; time from "
      "the first upload to the end of the stream (every job completed). Baselines: the same encodes as bare "
      "ffmpeg commands (one decode, split, three outputs per job), one at a time and two at a time.")
    a("")
    cols = ["w1", "bare1", "w2", "bare2"] + (["k1", "k2"] if kafka else [])
    names = {"w1": "serve --workers 1", "bare1": "bare, 1 at a time", "w2": "serve --workers 2",
             "bare2": "bare, 2 at a time", "k1": "Kafka, 1 worker process", "k2": "Kafka, 2 worker processes"}
    a("| run | " + " | ".join(names[c] for c in cols) + " |")
    a("|---" * (len(cols) + 1) + "|")
    for i, x in enumerate(r["rows"]):
        a(f"| {i + 1} | " + " | ".join(fmt_s(x[c]) if c in x else "—" for c in cols) + " |")
    pm = r["per_min"]
    a("| **jobs/min (median)** | " + " | ".join(f"**{pm[c]:.0f}**" for c in cols) + " |")
    a("")
    a(f"framepress / bare: {pm['w1'] / pm['bare1']:.2f} with one worker, {pm['w2'] / pm['bare2']:.2f} with two; "
      f"two workers / one: {pm['w2'] / pm['w1']:.2f}× (bare: {pm['bare2'] / pm['bare1']:.2f}×)." +
      (f" Over Kafka: {pm['k1'] / pm['bare1']:.2f} with one worker process, {pm['k2'] / pm['bare2']:.2f} with two; "
       f"two processes / one: {pm['k2'] / pm['k1']:.2f}×." if kafka else ""))
    for key, label in (("w1", "--workers 1"), ("w2", "--workers 2"), ("k1", "1 worker process"),
                       ("k2", "2 worker processes")):
        g = r["groups"].get(key)
        if g:
            flat = [n for job in g for n in job]
            jobs = THROUGHPUT_JOBS * len(r["rows"])
            why = ("a worker leases a job's tasks together (`TaskSource::next_group`), so a split job points to "
                   "a retried rendition: see the server's log"
                   if key.startswith("w") else
                   "a worker process collects a job's tasks of one class from their partition "
                   "(`TaskSource::next_group`); a split job was one whose siblings it stopped waiting for, or a "
                   "retried rendition: see the worker's log")
            a(f"With {label}: {len(flat)} ffmpeg processes for {jobs} jobs, {flat.count(3)} of them with all three "
              f"renditions (one decode per job would be one process per job" +
              (f"; {why})." if len(flat) > jobs else ")."))
    if not kafka:
        a("")
        a(f"Over Kafka with `framepress worker` processes: not measured ({r['kafka_note']})")
    a("")


NOT_MET_TEXT: dict[str, str] = {}


def _not_met_section(a):
    a("## Aims not met, and what limits them")
    a("")
    rows = [r for r in SUMMARY if r["met"] is False]
    if not rows:
        a("Every aim with a figure in this run was met.")
    for r in rows:
        a(f"- **{r['bench']}: {r['figure']} = {r['value']}** (aim {r['aim']}).")
    extra = [t for t in NOT_MET_TEXT.values() if t]
    if extra:
        a("")
        for t in extra:
            a(t)
            a("")
    a("")


def main():
    started = time.monotonic()
    if not FRAMEPRESS.exists():
        sys.exit(f"{FRAMEPRESS} is missing: build it (ninja -C build framepress)")
    sections = ONLY or SECTIONS
    for s in sections:
        if s not in SECTIONS:
            sys.exit(f"unknown section {s}; known: {','.join(SECTIONS)}")
    m = machine()
    log(f"{m['cpu']} × {m['nproc']}, {m['mem'] / (1 << 30):.1f} GiB; {m['framepress']}; {m['ffmpeg']}; "
        f"runs {RUNS}, preset {PRESET}, quick {QUICK}; tmp {TMP}")
    src = TMP / f"src-1080p-{LADDER_SECONDS}s.mp4"
    if any(s in sections for s in ("ladder", "overhead", "sse")):
        log("making the 1080p source")
        make_clip(src, 1920, 1080, LADDER_SECONDS)
    tiny = TMP / "tiny-2s-360p.mp4"
    if "dispatch" in sections:
        make_clip(tiny, 640, 360, 2)
    # Run order: the sections that need the Kafka broker last, so it is not idling beside the others.
    for s in sorted(sections, key=["ladder", "overhead", "sse", "upload", "dispatch", "throughput"].index):
        try:
            {"ladder": lambda: bench_ladder(src), "overhead": lambda: bench_overhead(src),
             "dispatch": lambda: bench_dispatch(tiny), "sse": lambda: bench_sse(src),
             "upload": bench_upload, "throughput": bench_throughput}[s]()
        except Exception as e:  # one broken section must not lose the others' figures
            import traceback
            traceback.print_exc()
            FAILED[s] = f"{type(e).__name__}: {str(e)[:400]}"
            log(f"section {s} failed: {FAILED[s]}")
            for server in list(_servers):
                server.stop()
    sys.dont_write_bytecode = True  # no __pycache__ in the work tree
    import analysis  # noqa: E402  (bench/analysis.py: the explanations of aims not met)
    NOT_MET_TEXT.update(analysis.explain(RESULTS, SUMMARY))
    write_report(m, started, os.getloadavg())
    (OUT.with_suffix(".json") if QUICK else REPO / "build/bench/results.json").write_text(
        json.dumps(dict(results=RESULTS, summary=SUMMARY, machine=m, failed=FAILED), indent=1, default=str))
    if FAILED:
        sys.exit(f"sections failed: {', '.join(FAILED)}")


if __name__ == "__main__":
    main()
