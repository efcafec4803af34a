#!/usr/bin/env python3
"""The API contract test: docs/openapi.yaml against a live `framepress serve`.

Run it through tests/contract/run-schemathesis.sh, which provides the virtual environment (schemathesis,
and with it PyYAML and jsonschema). What it does:

1. Starts `framepress serve` on a free port with a temporary data directory, the `ultrafast` encoder
   preset and a 1 MiB upload limit (so that no large upload is ever generated), tokens off.
2. Uploads a one-second clip made by ffmpeg a few times and waits for the jobs to complete: real ids and
   rendition names for the fuzzer to find (a schemathesis dictionary, drawn half of the time).
3. Checks the streaming routes itself (a generic fuzzer cannot read an endless stream): their status,
   headers and first event, whose JSON must match the documented schema; the 204/400/404 answers.
4. Runs schemathesis on every other route: a bounded number of examples per route (--examples), every
   phase, and the checks no 5xx, documented status codes, content types, headers and response bodies,
   negative data refused, unsupported methods refused with a right Allow header.
5. Starts a second server with a tokens file and checks what tokens change: 401 without a token, 403
   without the scope, 404 for another's job, the token in the query for GET, and schemathesis again with
   the owner's token.

Every check prints PASS or FAIL; the last line is "N passed, M failed".
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
STREAM_PATHS = ["/api/videos/{id}/events", "/api/events", "/compression-status/{id}"]
# Everything schemathesis offers that concerns the contract. Left out: positive_data_acceptance (a
# schema-valid binary is not necessarily a video: the 422 is the contract), and the checks about
# authentication, which the second server covers explicitly (with tokens off every request is allowed).
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
])
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"  # a well-formed ULID no server here has made
EVENTS = "/api/videos/{id}/events"
RENDITION = "/api/videos/{id}/renditions/{name}"

results: list[tuple[str, bool, str]] = []


def record(name: str, ok: bool, detail: str = "") -> None:
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)


def check(name: str):
    """Decorator: runs the function as one check; an AssertionError or any exception fails it."""

    def wrap(fn):
        try:
            fn()
            record(name, True)
        except AssertionError as e:
            record(name, False, str(e) or "assertion failed")
        except Exception as e:  # noqa: BLE001 - a check that crashes has failed, and says why
            record(name, False, f"{type(e).__name__}: {e}")
            traceback.print_exc()
        return fn

    return wrap


# ---------------------------------------------------------------------------------------------- server


class Server:
    def __init__(self, binary: Path, workdir: Path, name: str, extra: list[str]):
        self.data = workdir / name
        self.log_path = workdir / f"{name}.log"
        self.data.mkdir(parents=True)
        self.log = open(self.log_path, "wb")
        args = [str(binary), "serve", "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
                "--encoder-preset", "ultrafast", "--max-upload-bytes", "1MiB", "--workers", "1",
                "--log-format", "text", "--log-level", "info", *extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEPRESS_")}
        env["FRAMEPRESS_CONFIG"] = str(workdir / "none.toml")  # no configuration file from the machine
        (workdir / "none.toml").touch()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        self.url = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"framepress serve exited with {self.proc.returncode}:\n{self.log_text()}")
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", self.log_text())
            if m:
                self.url = m.group(1)
                try:
                    if request("GET", self.url + "/readyz")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"framepress serve did not become ready:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------------------------ HTTP


def request(method: str, url: str, headers: dict | None = None, body: bytes | None = None, timeout: float = 30):
    """One request; returns (status, headers with lower-case names, body bytes)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def upload(url: str, clip: bytes, token: str | None = None, query: str = "") -> dict:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + clip + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, _, data = request("POST", url + "/api/videos" + query, headers, body)
    assert status == 201, f"upload answered {status}: {data[:300]!r}"
    return json.loads(data)


def wait_for_end(url: str, video_id: str, token: str | None = None, timeout: float = 180) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, data = request("GET", f"{url}/api/videos/{video_id}", headers)
        job = json.loads(data)
        if status == 200 and job["state"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {video_id} did not end within {timeout} s")


class EventStream:
    """Reads a text/event-stream response one event at a time, with a time-out per read."""

    def __init__(self, url: str, headers: dict | None = None, timeout: float = 20):
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""), headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def body(self) -> bytes:
        return self.resp.read()

    def next_event(self) -> dict | None:
        """The next event as {"event","id","data"} (comments skipped); None at the end of the stream."""
        event: dict = {}
        data: list[str] = []
        while True:
            raw = self.resp.readline()
            if not raw:
                return None
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data or event:
                    event["data"] = "\n".join(data)
                    return event
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field in ("event", "id", "retry"):
                event[field] = value

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------------------- schemas


def to_json_schema(node):
    """OpenAPI 3.0 schema objects → JSON Schema: `nullable: true` becomes a "null" type."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Schemas:
    def __init__(self, openapi_path: Path):
        self.doc = yaml.safe_load(openapi_path.read_text())
        self.components = to_json_schema(self.doc["components"])

    def documented(self, method: str, template: str, status: int) -> None:
        """The route documents that status."""
        op = self.doc["paths"].get(template, {}).get(method.lower())
        assert op is not None, f"{method} {template} is not in the document"
        assert str(status) in op["responses"], f"{method} {template} does not document {status}"

    def validate(self, name: str, instance) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": self.components}
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"not a {name}: " + "; ".join(
            f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5])


def assert_sse_headers(stream: EventStream, what: str) -> None:
    assert stream.status == 200, f"{what}: status {stream.status}, body {stream.body()[:300]!r}"
    ctype = stream.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "text/event-stream", f"{what}: Content-Type {ctype!r}"
    assert stream.headers.get("cache-control") == "no-cache", f"{what}: Cache-Control {stream.headers.get('cache-control')!r}"


def assert_error(status, headers, body, want: int, schemas: Schemas, what: str,
                 route: tuple[str, str] | None = None) -> dict:
    """An error answer with the status `want`, in the documented shape, and documented for `route`."""
    if route:
        schemas.documented(*route, want)
    assert status == want, f"{what}: status {status} (want {want}), body {body[:300]!r}"
    assert headers.get("content-type", "").startswith("application/json"), f"{what}: Content-Type {headers.get('content-type')!r}"
    if want == 401:
        # RFC 7235 requires the challenge on every 401; RFC 6750 names the scheme.
        assert headers.get("www-authenticate") == "Bearer", f"{what}: WWW-Authenticate {headers.get('www-authenticate')!r}"
    error = json.loads(body)
    schemas.validate("Error", error)
    return error


# ------------------------------------------------------------------------------------- stream checks


def stream_checks(url: str, schemas: Schemas, done_id: str, done_job: dict) -> None:
    @check("stream: /api/videos/{id}/events of a completed job: headers, snapshot, terminal event, end")
    def _():
        s = EventStream(f"{url}/api/videos/{done_id}/events")
        try:
            assert_sse_headers(s, "events")
            first = s.next_event()
            assert first and first.get("event") == "snapshot", f"first event {first!r}"
            assert "id" not in first, "the snapshot of an ended job carries no id"
            job = json.loads(first["data"])
            schemas.validate("Job", job)
            assert job["id"] == done_id and job["state"] == "completed", f"snapshot {job['id']} {job['state']}"
            second = s.next_event()
            assert second and second.get("event") == "completed", f"second event {second!r}"
            assert second.get("id") == job["last_event_id"], f"terminal id {second.get('id')} != {job['last_event_id']}"
            data = json.loads(second["data"])
            assert data["type"] == "job.completed" and data["video_id"] == done_id, f"terminal data {data!r}"
            assert s.next_event() is None, "the stream goes on after the terminal event"
        finally:
            s.close()

    @check("stream: /api/videos/{id}/events of a new job: headers, snapshot with an id")
    def _():
        clip = CLIP.read_bytes()
        job = upload(url, clip)
        s = EventStream(f"{url}/api/videos/{job['id']}/events")
        try:
            assert_sse_headers(s, "events")
            first = s.next_event()
            assert first and first.get("event") == "snapshot", f"first event {first!r}"
            snap = json.loads(first["data"])
            schemas.validate("Job", snap)
            assert snap["id"] == job["id"], "snapshot of another job"
            if snap["state"] not in ("completed", "failed", "cancelled"):
                assert first.get("id") == snap["last_event_id"], f"snapshot id {first.get('id')!r}"
        finally:
            s.close()
        wait_for_end(url, job["id"])

    @check("stream: Last-Event-ID past the end is a 204")
    def _():
        schemas.documented("GET", EVENTS, 204)
        status, headers, body = request("GET", f"{url}/api/videos/{done_id}/events",
                                        {"Last-Event-ID": done_job["last_event_id"]})
        assert status == 204, f"status {status}, body {body[:200]!r}"
        status, _, _ = request("GET", f"{url}/api/videos/{done_id}/events?last_event_id={done_job['last_event_id']}")
        assert status == 204, f"?last_event_id=: status {status}"

    @check("stream: /api/videos/{id}/events of an unknown or malformed id is a 404 error")
    def _():
        for vid in (UNKNOWN_ID, "not-a-ulid"):
            assert_error(*request("GET", f"{url}/api/videos/{vid}/events"), 404, schemas, vid, ("GET", EVENTS))

    @check("stream: /api/events: headers, a snapshot per job with a cursor id")
    def _():
        s = EventStream(f"{url}/api/events?ids={done_id},{UNKNOWN_ID}")
        try:
            assert_sse_headers(s, "multi")
            first = s.next_event()
            assert first and first.get("event") == "snapshot", f"first event {first!r}"
            assert re.fullmatch(r"\d+\.\d+", first.get("id", "")), f"cursor {first.get('id')!r}"
            job = json.loads(first["data"])
            schemas.validate("Job", job)
            assert job["id"] == done_id
            second = s.next_event()
            assert second and second.get("event") == "deleted", f"an unknown id: {second!r}"
            assert json.loads(second["data"])["video_id"] == UNKNOWN_ID
            assert s.next_event() is None, "the stream goes on after every job ended"
        finally:
            s.close()

    @check("stream: /api/events without ids, with a bad id, with over 100 ids is a 400 error")
    def _():
        for query in ("", "?ids=", "?ids=nope", "?ids=" + ",".join([UNKNOWN_ID[:-3] + f"{i:03d}" for i in range(101)])):
            assert_error(*request("GET", f"{url}/api/events{query}"), 400, schemas, query[:40] or "(none)",
                         ("GET", "/api/events"))

    @check("stream: /compression-status/{id}: headers, one unnamed event per rendition in the prototype's shape")
    def _():
        s = EventStream(f"{url}/compression-status/{done_id}", timeout=10)
        try:
            assert_sse_headers(s, "prototype")
            first = s.next_event()
            assert first and "event" not in first, f"first event {first!r}"
            data = json.loads(first["data"])
            want = {"video", "resolution", "file_name", "url", "bucket", "uploaded_at"}
            assert set(data) == want, f"fields {sorted(data)} != {sorted(want)}"
            assert data["video"] == done_id and data["resolution"] == done_job["renditions"][0]["name"]
        finally:
            s.close()

    @check("stream: /compression-status/{id} of an unknown id is a 404 error")
    def _():
        assert_error(*request("GET", f"{url}/compression-status/{UNKNOWN_ID}"), 404, schemas, "unknown",
                     ("GET", "/compression-status/{id}"))


# ----------------------------------------------------------------------------------- download checks


def download_checks(url: str, schemas: Schemas, job: dict) -> None:
    """Ranges on real files: the fuzzer seldom writes a Range header that fits one."""
    vid = job["id"]
    rendition = next(r for r in job["renditions"] if r["state"] == "done")

    @check("downloads: a rendition whole, then a range (206), then one past the end (416)")
    def _():
        status, headers, body = request("GET", f"{url}/api/videos/{vid}/renditions/{rendition['name']}")
        assert status == 200, f"status {status}"
        assert headers.get("content-type") == "video/mp4", f"Content-Type {headers.get('content-type')!r}"
        assert headers.get("accept-ranges") == "bytes", f"Accept-Ranges {headers.get('accept-ranges')!r}"
        assert headers.get("content-disposition", "").startswith("attachment;"), headers.get("content-disposition")
        assert len(body) == rendition["size"], f"{len(body)} bytes, the job says {rendition['size']}"
        schemas.documented("GET", RENDITION, 206)
        status, headers, part = request("GET", f"{url}/api/videos/{vid}/renditions/{rendition['name']}",
                                        {"Range": "bytes=10-19"})
        assert status == 206 and part == body[10:20], f"status {status}, {len(part)} bytes"
        assert headers.get("content-range") == f"bytes 10-19/{len(body)}", headers.get("content-range")
        status, headers, err = request("GET", f"{url}/api/videos/{vid}/renditions/{rendition['name']}",
                                       {"Range": f"bytes={len(body)}-"})
        assert_error(status, headers, err, 416, schemas, "past the end", ("GET", RENDITION))
        assert headers.get("content-range") == f"bytes */{len(body)}", headers.get("content-range")

    @check("downloads: the source with a suffix range; an unknown rendition is a 404 error")
    def _():
        status, headers, part = request("GET", f"{url}/api/videos/{vid}/source", {"Range": "bytes=-100"})
        assert status == 206 and len(part) == 100, f"status {status}, {len(part)} bytes"
        assert headers.get("content-type", "").startswith("video/"), headers.get("content-type")
        assert headers.get("content-range", "").endswith(f"/{job['source']['size']}"), headers.get("content-range")
        assert headers.get("content-disposition", "").startswith("inline;"), headers.get("content-disposition")
        assert_error(*request("GET", f"{url}/api/videos/{vid}/renditions/4320p"), 404, schemas, "4320p", ("GET", RENDITION))


# -------------------------------------------------------------------------------------- schemathesis


def run_schemathesis(args, url: str, workdir: Path, name: str, ids: list[str], renditions: list[str],
                     headers: dict | None = None) -> None:
    config = workdir / f"{name}.schemathesis.toml"
    config.write_text(
        "# Real ids and rendition names, drawn half of the time, so that the fuzzer reaches real jobs.\n"
        f"[dictionaries.videos]\nvalues = {json.dumps(ids)}\n"
        f"[dictionaries.renditions]\nvalues = {json.dumps(renditions)}\n"
        "[parameters]\n"
        '"path.id" = { dictionary = "videos", probability = 0.5 }\n'
        '"path.name" = { dictionary = "renditions", probability = 0.5 }\n'
        '"query.before" = { dictionary = "videos", probability = 0.3 }\n')
    cmd = [args.schemathesis, "--config-file", str(config), "run", str(args.openapi), "--url", url,
           "--checks", CHECKS, "--max-examples", str(args.examples), "--workers", "1",
           "--request-timeout", "30", "--phases", "examples,coverage,fuzzing,stateful",
           "--report", "junit", "--report-dir", str(workdir / f"{name}-report")]
    if args.seed != "random":
        cmd += ["--seed", str(args.seed)]
    for path in STREAM_PATHS:
        cmd += ["--exclude-path", path]
    for key, value in (headers or {}).items():
        cmd += ["--header", f"{key}: {value}"]
    print(f"--- schemathesis ({name}): {' '.join(cmd)}", flush=True)
    env = dict(os.environ, NO_COLOR="1", SCHEMATHESIS_TELEMETRY="false")
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout, flush=True)
    summary = re.findall(r"\d+ generated[^\n]*", proc.stdout)
    record(f"schemathesis ({name}): {summary[-1] if summary else 'no summary'}", proc.returncode == 0,
           f"exit {proc.returncode}; see the output above")


# ------------------------------------------------------------------------------------------ the runs


CLIP: Path


def make_clip(workdir: Path) -> Path:
    clip = workdir / "clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=192x144:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050",
                    "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(clip)], check=True)
    return clip


def tokens_off(args, workdir: Path, schemas: Schemas) -> None:
    server = Server(args.binary, workdir, "open", [])
    try:
        clip = CLIP.read_bytes()
        jobs = [wait_for_end(server.url, upload(server.url, clip)["id"]) for _ in range(3)]
        for job in jobs:
            assert job["state"] == "completed", f"seed job {job['id']} {job['state']}: {job.get('error')}"
        done = jobs[0]
        stream_checks(server.url, schemas, done["id"], done)
        download_checks(server.url, schemas, done)
        run_schemathesis(args, server.url, workdir, "tokens-off", [j["id"] for j in jobs],
                         sorted({r["name"] for j in jobs for r in j["renditions"]}) + ["720p"])

        @check("the server (tokens off) is still up and ready")
        def _():
            assert server.alive(), "it exited"
            assert request("GET", server.url + "/readyz")[0] == 200, "/readyz is not 200"
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(server.data, ignore_errors=True)


def make_token(binary: Path, name: str, scopes: str) -> tuple[str, str]:
    proc = subprocess.run([str(binary), "token", "--name", name, "--scopes", scopes], check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    token, _, entry = proc.stdout.partition("\n")
    return token.strip(), entry.strip() + "\n"


def tokens_on(args, workdir: Path, schemas: Schemas) -> None:
    alice, alice_entry = make_token(args.binary, "alice", "upload,read")
    reader, reader_entry = make_token(args.binary, "reader", "read")
    bob, bob_entry = make_token(args.binary, "bob", "upload,read")
    tokens_file = workdir / "tokens.toml"
    tokens_file.write_text(alice_entry + "\n" + reader_entry + "\n" + bob_entry)
    server = Server(args.binary, workdir, "tokens", ["--tokens-file", str(tokens_file)])
    url = server.url
    try:
        clip = CLIP.read_bytes()
        job = wait_for_end(url, upload(url, clip, alice)["id"], alice)
        vid = job["id"]
        auth = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731

        @check("tokens: no token or an unknown one is a 401 error on every guarded route")
        def _():
            for method, template in [("GET", "/api/videos"), ("GET", "/api/videos/{id}"),
                                     ("POST", "/api/videos/{id}/cancel"), ("DELETE", "/api/videos/{id}"),
                                     ("GET", "/api/videos/{id}/source"), ("GET", RENDITION), ("GET", EVENTS),
                                     ("GET", "/api/events"), ("GET", "/compression-status/{id}")]:
                path = template.replace("{id}", vid).replace("{name}", job["renditions"][0]["name"])
                path += f"?ids={vid}" if template == "/api/events" else ""
                route = (method, template)
                assert_error(*request(method, url + path), 401, schemas, f"{method} {path}", route)
                assert_error(*request(method, url + path, auth("fp_not-a-token")), 401, schemas, f"{method} {path} (bad)", route)
            status, headers, body = request("POST", url + "/upload", {"Content-Type": "multipart/form-data; boundary=x"},
                                            b"--x--\r\n")
            schemas.documented("POST", "/upload", 401)
            assert status == 401, f"/upload: {status}"
            assert headers.get("www-authenticate") == "Bearer", f"/upload: WWW-Authenticate {headers.get('www-authenticate')!r}"
            schemas.validate("PrototypeErrorBody", json.loads(body))

        @check("tokens: /healthz, /readyz and /api/presets need none")
        def _():
            for path in ("/healthz", "/readyz", "/api/presets"):
                assert request("GET", url + path)[0] == 200, path

        @check("tokens: a token without the scope is a 403 error")
        def _():
            boundary = "b"
            body = b"--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a.mp4\"\r\n\r\nx\r\n--b--\r\n"
            assert_error(*request("POST", url + "/api/videos",
                                  {**auth(reader), "Content-Type": f"multipart/form-data; boundary={boundary}"}, body),
                         403, schemas, "upload with a read token", ("POST", "/api/videos"))
            assert_error(*request("DELETE", f"{url}/api/videos/{vid}", auth(reader)), 403, schemas, "delete with a read token",
                         ("DELETE", "/api/videos/{id}"))

        @check("tokens: a token reads its own jobs; another's are a 404 (an admin's list would show all)")
        def _():
            assert request("GET", f"{url}/api/videos/{vid}", auth(alice))[0] == 200
            assert_error(*request("GET", f"{url}/api/videos/{vid}", auth(bob)), 404, schemas, "bob reads alice's job",
                         ("GET", "/api/videos/{id}"))
            status, _, body = request("GET", f"{url}/api/videos", auth(bob))
            assert status == 200 and json.loads(body)["total"] == 0, f"bob's list: {status} {body[:200]!r}"

        @check("tokens: GET takes the token from ?access_token= (EventSource), a stream too")
        def _():
            q = urllib.parse.quote(alice)
            assert request("GET", f"{url}/api/videos/{vid}?access_token={q}")[0] == 200
            s = EventStream(f"{url}/api/videos/{vid}/events?access_token={q}")
            try:
                assert_sse_headers(s, "events with ?access_token=")
                first = s.next_event()
                assert first and first.get("event") == "snapshot", f"first event {first!r}"
                schemas.validate("Job", json.loads(first["data"]))
            finally:
                s.close()
            # Not for what changes things: a DELETE with the token in the query is refused.
            assert_error(*request("DELETE", f"{url}/api/videos/{vid}?access_token={q}"), 401, schemas, "DELETE ?access_token=")

        @check("tokens: the token never reaches the log")
        def _():
            log = server.log_text()
            for t in (alice, reader, bob):
                assert t not in log, "a token is in the server's log"

        # As the job's owner, so that the fuzzer reaches it (it may well cancel or delete it: last).
        run_schemathesis(args, url, workdir, "tokens-on", [vid], [r["name"] for r in job["renditions"]], auth(alice))

        @check("the server (tokens on) is still up and ready")
        def _():
            assert server.alive(), "it exited"
            assert request("GET", url + "/readyz")[0] == 200
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(server.data, ignore_errors=True)


def main() -> int:
    global CLIP
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=REPO / "build" / "src" / "app" / "framepress")
    parser.add_argument("--openapi", type=Path, default=REPO / "docs" / "openapi.yaml")
    parser.add_argument("--schemathesis", default="schemathesis")
    parser.add_argument("--examples", type=int, default=int(os.environ.get("CONTRACT_EXAMPLES", "20")),
                        help="most test cases per route and phase (default 20)")
    parser.add_argument("--seed", default=os.environ.get("CONTRACT_SEED", "1"),
                        help="schemathesis's seed, or 'random' (default 1: the same cases every run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, reports)")
    args = parser.parse_args()
    if not args.binary.is_file():
        print(f"no framepress binary at {args.binary}: build it first (ninja -C build framepress)")
        print("0 passed, 1 failed")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="framepress-contract-"))
    try:
        schemas = Schemas(args.openapi)
        CLIP = make_clip(workdir)
        for run in (tokens_off, tokens_on):
            try:
                run(args, workdir, schemas)
            except Exception as e:  # noqa: BLE001 - a run that cannot even start has failed
                traceback.print_exc()
                record(f"{run.__name__}: setting up", False, f"{type(e).__name__}: {e}")
    finally:
        for log in sorted(workdir.glob("*.log")):
            text = log.read_text(errors="replace")
            bad = [line for line in text.splitlines() if re.search(r"\b(error|critical)\b|internal|sanitizer", line, re.I)]
            if bad:
                print(f"--- {log.name}: lines that name errors (of {len(text.splitlines())})")
                print("\n".join(bad[-30:]))
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
