// A stand-in for `framepress serve`, for working on the page without the C++ server: the API and SSE
// contract of docs/ARCHITECTURE.md, with simulated encodes (each "rendition" is the uploaded file
// itself, so the player really plays). Uses ffprobe when it is installed to read the source facts.
//
//   node e2e/mock-server.mjs [port]       serves web/dist at / and the API at /api
//
// A file whose name contains "fail" gets a rendition that fails after one retry. Env: MOCK_ENCODE_MS
// (time per rendition, default 3000), MOCK_MAX_UPLOAD (bytes, default 500 MB).

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8090);
const encodeMs = Number(process.env.MOCK_ENCODE_MS ?? 3000);
const maxUpload = Number(process.env.MOCK_MAX_UPLOAD ?? 500_000_000);
const dist = fileURLToPath(new URL("../dist", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "framepress-mock-"));

const ladder = [144, 240, 360, 480, 720, 1080].map((s) => ({ name: `${s}p`, short_side: s, class: s <= 480 ? "sd" : "hd" }));
const presets = {
  ladder,
  max_resolution: 1080,
  presets: [
    { name: "fast", description: "Quick, larger files", video_codec: "libx264", preset: "veryfast", crf: 23 },
    { name: "standard", description: "Balanced size and quality", video_codec: "libx264", preset: "medium", crf: 23 },
    { name: "small", description: "Smallest files, slower", video_codec: "libx264", preset: "slower", crf: 28 },
    { name: "quality", description: "Best quality, slow", video_codec: "libx264", preset: "slow", crf: 20 },
  ],
  default_preset: "standard",
  limits: { max_upload_bytes: maxUpload, max_duration_seconds: 21600, max_pixels: 33177600, max_frame_rate: 240, max_streams: 16 },
};

/** id → { job, file, events: [{id, name, data}], position, listeners: Set } */
const jobs = new Map();
const terminal = new Set(["completed", "failed", "cancelled"]);

const ulidish = () => Date.now().toString(36).padStart(10, "0").toUpperCase() + randomBytes(8).toString("hex").toUpperCase();

function send(res, status, body, headers = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(text);
}
const fail = (res, status, code, message) => send(res, status, { error: { code, message } });

const types = {
  created: "job.created",
  started: "rendition.started",
  progress: "rendition.progress",
  rendition: "rendition.done",
  retrying: "rendition.failed",
  rendition_failed: "rendition.failed",
  cancelled: "job.cancelled",
  deleted: "job.deleted",
  completed: "job.completed",
  failed: "job.failed",
};

function publish(entry, name, data, { derived = false } = {}) {
  if (!derived) entry.position += 1;
  const id = entry.position * 2 + (derived ? 1 : 0);
  const event = { id, name, data: { type: types[name], video_id: entry.job.id, at: new Date().toISOString(), at_ms: Date.now(), ...data } };
  entry.events.push(event);
  entry.job.last_event_id = String(id);
  entry.job.updated_at = event.data.at;
  for (const listener of entry.listeners) listener(event);
}

function probe(path) {
  return new Promise((resolve, reject) => {
    execFile("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", path], (error, stdout) => {
      if (error) return reject(new Error("ffprobe found no media in it"));
      const info = JSON.parse(stdout);
      const video = info.streams.find((s) => s.codec_type === "video");
      if (!video) return reject(new Error("it has no video stream"));
      const audio = info.streams.find((s) => s.codec_type === "audio");
      const [num, den] = (video.avg_frame_rate ?? "0/1").split("/").map(Number);
      resolve({
        container: info.format.format_name,
        size: Number(info.format.size),
        duration: Number(info.format.duration ?? 0),
        bit_rate: Number(info.format.bit_rate ?? 0),
        video_codec: video.codec_name,
        width: video.width,
        height: video.height,
        rotation: 0,
        sample_aspect: 1,
        display_width: video.width,
        display_height: video.height,
        frame_rate: den ? num / den : 0,
        audio: audio ? { codec: audio.codec_name, channels: audio.channels, sample_rate: Number(audio.sample_rate) } : null,
      });
    });
  });
}

function plan(source, requested) {
  const short = Math.min(source.width, source.height);
  const pick = requested.length > 0 ? requested : ladder.filter((r) => r.short_side <= short).map((r) => r.name);
  if (pick.length === 0) pick.push(ladder[0].name);
  return pick.map((name) => {
    const rung = ladder.find((r) => r.name === name);
    if (!rung) throw Object.assign(new Error(`unknown rendition ${name}`), { code: "unknown_rendition" });
    if (rung.short_side > short && requested.length > 0) {
      throw Object.assign(new Error(`${name} is larger than the source (${source.width}×${source.height})`), { code: "above_source" });
    }
    const scale = rung.short_side / short;
    const even = (n) => Math.max(2, Math.round(n / 2) * 2);
    return { name, short_side: rung.short_side, width: even(source.width * scale), height: even(source.height * scale), class: rung.class };
  });
}

function simulate(entry) {
  const { job } = entry;
  const failing = job.filename.includes("fail") ? job.renditions[job.renditions.length - 1]?.name : undefined;
  const queue = job.renditions.map((r) => r.name);
  const running = new Set();
  const startNext = () => {
    while (running.size < 2 && queue.length > 0 && !terminal.has(job.state)) run(queue.shift(), 1);
  };
  const run = (name, attempt) => {
    const r = job.renditions.find((x) => x.name === name);
    running.add(name);
    r.state = "encoding";
    r.attempt = attempt;
    Object.assign(r, { percent: 0, fps: 0, speed: 0, eta_seconds: -1 });
    if (job.state === "queued") job.state = "processing";
    publish(entry, "started", { rendition: name, attempt, worker: "mock-1" });
    const began = Date.now();
    const timer = setInterval(() => {
      if (terminal.has(job.state)) return clearInterval(timer);
      const elapsed = Date.now() - began;
      const percent = Math.min(100, (elapsed / encodeMs) * 100);
      if (name === failing && percent > 60) {
        clearInterval(timer);
        running.delete(name);
        const willRetry = attempt < 2;
        r.error = "ffmpeg exited with code 1: Error while filtering: Cannot allocate memory";
        r.state = willRetry ? "queued" : "failed";
        publish(entry, willRetry ? "retrying" : "rendition_failed", { rendition: name, attempt, reason: r.error, will_retry: willRetry });
        if (willRetry) setTimeout(() => run(name, attempt + 1), 500);
        else finishIfEnded();
        startNext();
        return;
      }
      if (percent < 100) {
        const eta = ((encodeMs - elapsed) / 1000);
        Object.assign(r, { percent, fps: 180 + Math.random() * 40, speed: 7.3, eta_seconds: eta });
        publish(entry, "progress", { rendition: name, percent, fps: r.fps, speed: r.speed, eta_seconds: eta });
        return;
      }
      clearInterval(timer);
      running.delete(name);
      const size = Math.round(job.source.size * (r.height / job.source.height) ** 2 * 0.35);
      Object.assign(r, {
        state: "done",
        percent: 100,
        eta_seconds: 0,
        size,
        bit_rate: job.source.duration ? Math.round((size * 8) / job.source.duration) : 0,
        duration: job.source.duration,
        url: `/api/videos/${job.id}/renditions/${name}`,
        error: null,
      });
      publish(entry, "rendition", { rendition: name, key: `videos/${job.id}/renditions/${name}.mp4`, url: r.url, size, bit_rate: r.bit_rate, duration: r.duration, width: r.width, height: r.height });
      finishIfEnded();
      startNext();
    }, 250);
  };
  const finishIfEnded = () => {
    if (terminal.has(job.state) || !job.renditions.every((r) => ["done", "failed", "cancelled"].includes(r.state))) return;
    const failed = job.renditions.find((r) => r.state === "failed");
    if (failed) {
      job.state = "failed";
      job.error = `${failed.name}: ${failed.error}`;
      publish(entry, "failed", { rendition: failed.name, reason: failed.error }, { derived: true });
    } else {
      job.state = "completed";
      publish(entry, "completed", {}, { derived: true });
    }
  };
  setTimeout(startNext, 600);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** The first file part of a multipart body named `video`: { filename, data }. */
function multipartFile(body, contentType) {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  if (!boundary) return undefined;
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const headEnd = body.indexOf("\r\n\r\n", at);
    if (headEnd < 0) return undefined;
    const head = body.subarray(at, headEnd).toString();
    const next = body.indexOf(delimiter, headEnd);
    if (/name="video"/.test(head)) {
      const filename = /filename="([^"]*)"/.exec(head)?.[1] ?? "upload";
      return { filename, data: body.subarray(headEnd + 4, next < 0 ? body.length : next - 2) };
    }
    at = next;
  }
  return undefined;
}

async function createVideo(req, res, url) {
  const length = Number(req.headers["content-length"] ?? 0);
  if (length > maxUpload) {
    req.resume();
    return fail(res, 413, "too_large", `The upload is ${length} bytes; the limit is ${maxUpload}.`);
  }
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data") && !contentType.startsWith("video/")) {
    req.resume();
    return fail(res, 415, "unsupported_media_type", `Send multipart/form-data with a "video" field, or a video/* body (got ${contentType || "nothing"}).`);
  }
  const body = await readBody(req);
  const part = contentType.startsWith("video/") ? { filename: url.searchParams.get("filename") ?? "upload", data: body } : multipartFile(body, contentType);
  if (!part) return fail(res, 400, "bad_request", 'No "video" field in the form.');
  const id = ulidish();
  const file = join(scratch, id);
  writeFileSync(file, part.data);
  let source;
  try {
    source = await probe(file);
  } catch (error) {
    return fail(res, 422, "not_a_video", `${part.filename} is not a usable video: ${error.message}.`);
  }
  let renditions;
  const requested = (url.searchParams.get("renditions") ?? "").split(",").filter(Boolean);
  try {
    renditions = plan(source, requested);
  } catch (error) {
    return fail(res, 422, error.code, error.message);
  }
  const presetName = url.searchParams.get("preset") || presets.default_preset;
  const preset = presets.presets.find((p) => p.name === presetName);
  if (!preset) return fail(res, 422, "unknown_preset", `There is no quality preset called "${presetName}".`);
  const now = new Date().toISOString();
  const encoding = { video_codec: preset.video_codec, preset: preset.preset, crf: preset.crf, audio_codec: "aac", audio_bitrate_kbps: 128 };
  const job = {
    id,
    state: "queued",
    filename: part.filename,
    created_at: now,
    updated_at: now,
    source,
    preset: presetName,
    encoding,
    renditions: renditions.map((r) => ({ name: r.name, width: r.width, height: r.height, class: r.class, state: "queued", attempt: 0, percent: 0, fps: 0, speed: 0, eta_seconds: -1, size: 0, bit_rate: 0, duration: 0, url: null, error: null })),
    error: null,
    last_event_id: "0",
  };
  const entry = { job, file, events: [], position: 0, listeners: new Set() };
  jobs.set(id, entry);
  publish(entry, "created", { filename: job.filename, source_key: `videos/${id}/source`, source, renditions, encoding, preset: presetName, owner: "" });
  simulate(entry);
  send(res, 201, job, { Location: `/api/videos/${id}` });
}

function streamEvents(req, res, ids) {
  const entries = ids.map((id) => jobs.get(id));
  if (entries.some((e) => !e)) return fail(res, 404, "not_found", "No such video.");
  const lastId = req.headers["last-event-id"];
  const cursor = lastId ? String(lastId).split(".").map(Number) : undefined;
  const seen = entries.map((e, i) => cursor?.[i] ?? 0);
  const ended = () => entries.every((e) => terminal.has(e.job.state));
  const missed = cursor ? entries.flatMap((e, i) => e.events.filter((ev) => ev.id > seen[i])) : [];
  if (cursor && ended() && missed.length === 0) {
    res.writeHead(204);
    return res.end();
  }
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no" });
  const write = (entryIndex, name, data, eventId) => {
    if (eventId !== undefined) seen[entryIndex] = eventId;
    res.write(`id: ${seen.join(".")}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const closeIfEnded = () => {
    if (ended()) {
      cleanup();
      res.end();
    }
  };
  const listeners = entries.map((e, i) => (event) => {
    write(i, event.name, event.data, event.id);
    closeIfEnded();
  });
  const cleanup = () => entries.forEach((e, i) => e.listeners.delete(listeners[i]));
  if (cursor) {
    for (const ev of missed) write(entries.findIndex((e) => e.job.id === ev.data.video_id), ev.name, ev.data, ev.id);
  } else {
    entries.forEach((e, i) => {
      write(i, "snapshot", { ...e.job, video_id: e.job.id }, Number(e.job.last_event_id));
      const last = e.events.at(-1);
      if (terminal.has(e.job.state) && last) write(i, last.name, last.data);
    });
  }
  entries.forEach((e, i) => e.listeners.add(listeners[i]));
  const heartbeat = setInterval(() => res.write(": heartbeat\n\n"), 15000);
  req.on("close", () => {
    clearInterval(heartbeat);
    cleanup();
  });
  closeIfEnded();
}

function serveFile(req, res, path, type, disposition) {
  const size = statSync(path).size;
  const range = /bytes=(\d*)-(\d*)/.exec(req.headers.range ?? "");
  const headers = { "Content-Type": type, "Accept-Ranges": "bytes", ...(disposition ? { "Content-Disposition": disposition } : {}) };
  if (range) {
    const start = range[1] ? Number(range[1]) : size - Number(range[2]);
    const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    res.writeHead(206, { ...headers, "Content-Range": `bytes ${start}-${end}/${size}`, "Content-Length": end - start + 1 });
    return createReadStream(path, { start, end }).pipe(res);
  }
  res.writeHead(200, { ...headers, "Content-Length": size });
  createReadStream(path).pipe(res);
}

const contentTypes = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".map": "application/json" };

function serveStatic(req, res, pathname) {
  const path = normalize(join(dist, pathname));
  const file = path.startsWith(dist) && existsSync(path) && statSync(path).isFile() ? path : join(dist, "index.html");
  if (!existsSync(file)) return fail(res, 404, "not_found", "Build the page first: npm run build.");
  res.writeHead(200, { "Content-Type": contentTypes[extname(file)] ?? "application/octet-stream" });
  res.end(readFileSync(file));
}

createServer(async (req, res) => {
  const url = new URL(req.url, "http://mock");
  const path = url.pathname;
  const m = /^\/api\/videos\/([^/]+)(?:\/(cancel|source|events|renditions\/([^/]+)))?$/.exec(path);
  const entry = m ? jobs.get(m[1]) : undefined;
  try {
    if (path === "/api/presets") return send(res, 200, presets);
    if (path === "/api/videos" && req.method === "POST") return await createVideo(req, res, url);
    if (path === "/api/videos") {
      const limit = Number(url.searchParams.get("limit") ?? 20);
      const before = url.searchParams.get("before");
      const all = [...jobs.values()].map((e) => e.job).sort((a, b) => (a.id < b.id ? 1 : -1));
      const from = before ? all.filter((j) => j.id < before) : all;
      const page = from.slice(0, limit);
      return send(res, 200, { videos: page, next: from.length > limit ? page.at(-1).id : null, total: all.length });
    }
    if (path === "/api/events") return streamEvents(req, res, (url.searchParams.get("ids") ?? "").split(",").filter(Boolean));
    if (m && !entry) return fail(res, 404, "not_found", `No video ${m[1]}.`);
    if (m && !m[2] && req.method === "DELETE") {
      jobs.delete(m[1]);
      publish(entry, "deleted", {});
      res.writeHead(204);
      return res.end();
    }
    if (m && !m[2]) return send(res, 200, entry.job);
    if (m?.[2] === "cancel") {
      if (terminal.has(entry.job.state)) return fail(res, 409, "conflict", "The job has already ended.");
      entry.job.state = "cancelled";
      entry.job.renditions.forEach((r) => {
        if (!["done", "failed"].includes(r.state)) r.state = "cancelled";
      });
      publish(entry, "cancelled", {});
      return send(res, 202, entry.job);
    }
    if (m?.[2] === "source") return serveFile(req, res, entry.file, "video/mp4");
    if (m?.[2] === "events") return streamEvents(req, res, [m[1]]);
    if (m?.[3]) {
      const r = entry.job.renditions.find((x) => x.name === m[3] && x.state === "done");
      if (!r) return fail(res, 404, "not_found", `No finished rendition ${m[3]}.`);
      return serveFile(req, res, entry.file, "video/mp4", `attachment; filename="${entry.job.filename.replace(/\.[^.]+$/, "")}-${r.name}.mp4"`);
    }
    if (path.startsWith("/api/")) return fail(res, 404, "not_found", `No route ${req.method} ${path}.`);
    return serveStatic(req, res, path);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) fail(res, 500, "internal", String(error));
  }
}).listen(port, "127.0.0.1", () => console.log(`mock framepress on http://127.0.0.1:${port}`));
