// Jobs and fakes shared by the component tests.

import type { Job, Presets, Rendition } from "../api/types";

export function rendition(name: string, width: number, height: number, extra: Partial<Rendition> = {}): Rendition {
  return {
    name,
    width,
    height,
    class: "sd",
    state: "queued",
    attempt: 0,
    percent: 0,
    fps: 0,
    speed: 0,
    eta_seconds: -1,
    size: 0,
    bit_rate: 0,
    duration: 0,
    url: null,
    error: null,
    ...extra,
  };
}

export function job(id: string, extra: Partial<Job> = {}): Job {
  return {
    id,
    state: "queued",
    filename: "holiday.mp4",
    created_at: "2026-11-24T10:00:00.000Z",
    updated_at: "2026-11-24T10:00:00.000Z",
    source: {
      container: "mov,mp4,m4a,3gp,3g2,mj2",
      size: 10_000_000,
      duration: 12.5,
      bit_rate: 6_400_000,
      video_codec: "h264",
      width: 1280,
      height: 720,
      rotation: 0,
      sample_aspect: 1,
      display_width: 1280,
      display_height: 720,
      frame_rate: 25,
      audio: { codec: "aac", channels: 2, sample_rate: 48000 },
    },
    preset: "standard",
    encoding: { video_codec: "libx264", preset: "medium", crf: 23, audio_codec: "aac", audio_bitrate_kbps: 128 },
    renditions: [rendition("360p", 640, 360), rendition("720p", 1280, 720)],
    error: null,
    last_event_id: "2",
    ...extra,
  };
}

export const presets: Presets = {
  ladder: [
    { name: "360p", short_side: 360, class: "sd" },
    { name: "720p", short_side: 720, class: "hd" },
  ],
  max_resolution: 1080,
  presets: [
    { name: "fast", description: "Quick", video_codec: "libx264", preset: "veryfast", crf: 23 },
    { name: "standard", description: "Balanced", video_codec: "libx264", preset: "medium", crf: 23 },
  ],
  default_preset: "standard",
  limits: { max_upload_bytes: 1_000_000, max_duration_seconds: 21600, max_pixels: 33177600, max_frame_rate: 240, max_streams: 16 },
};

/** A stand-in for the browser's EventSource that the test drives by hand. */
export class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static all: FakeEventSource[] = [];
  readyState = FakeEventSource.CONNECTING;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private listeners = new Map<string, ((event: MessageEvent<string>) => void)[]>();

  constructor(readonly url: string) {
    FakeEventSource.all.push(this);
  }
  addEventListener(name: string, listener: (event: MessageEvent<string>) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }
  close() {
    this.readyState = FakeEventSource.CLOSED;
  }
  open() {
    this.readyState = FakeEventSource.OPEN;
    this.onopen?.();
  }
  emit(name: string, data: unknown) {
    for (const listener of this.listeners.get(name) ?? []) listener(new MessageEvent(name, { data: JSON.stringify(data) }));
  }
  fail(closed: boolean) {
    this.readyState = closed ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING;
    this.onerror?.();
  }
  get ids(): string[] {
    return (new URL(this.url, "http://page").searchParams.get("ids") ?? "").split(",");
  }
  static get open(): FakeEventSource[] {
    return FakeEventSource.all.filter((s) => s.readyState !== FakeEventSource.CLOSED);
  }
}

/** A stand-in for XMLHttpRequest: records requests; the test reports progress and answers. */
export class FakeXhr {
  static all: FakeXhr[] = [];
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  status = 0;
  responseText = "";
  method = "";
  url = "";
  body: FormData | undefined;
  aborted = false;

  constructor() {
    FakeXhr.all.push(this);
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader() {}
  send(body: FormData) {
    this.body = body;
  }
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true });
  }
  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = typeof body === "string" ? body : JSON.stringify(body);
    this.onload?.();
  }
  networkError() {
    this.onerror?.();
  }
}
