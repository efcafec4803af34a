// The server's JSON, as docs/ARCHITECTURE.md ("HTTP API", "SSE", "Presets") defines it.

export type JobState = "queued" | "processing" | "completed" | "failed" | "cancelled";
export type RenditionState = "queued" | "encoding" | "done" | "failed" | "cancelled";

export interface AudioInfo {
  codec: string;
  channels: number;
  sample_rate: number;
}

export interface SourceInfo {
  container: string;
  size: number;
  duration: number;
  bit_rate: number;
  video_codec: string;
  width: number;
  height: number;
  rotation: number;
  sample_aspect: number;
  display_width: number;
  display_height: number;
  frame_rate: number;
  audio: AudioInfo | null;
}

export interface Encoding {
  video_codec: string;
  preset: string;
  crf: number;
  audio_codec: string;
  audio_bitrate_kbps: number;
}

export interface Rendition {
  name: string;
  width: number;
  height: number;
  class: string;
  state: RenditionState;
  attempt: number;
  percent: number;
  fps: number;
  speed: number;
  /** -1 while unknown. */
  eta_seconds: number;
  size: number;
  bit_rate: number;
  duration: number;
  /** Set once the rendition is done. */
  url: string | null;
  error: string | null;
}

export interface Job {
  id: string;
  state: JobState;
  filename: string;
  created_at: string;
  updated_at: string;
  source: SourceInfo;
  preset: string;
  encoding: Encoding;
  renditions: Rendition[];
  error: string | null;
  last_event_id: string;
}

export interface VideoPage {
  videos: Job[];
  next: string | null;
  total: number;
}

export interface LadderRung {
  name: string;
  short_side: number;
  class: string;
}

export interface QualityPreset {
  name: string;
  description: string;
  video_codec: string;
  preset: string;
  crf: number;
}

export interface Presets {
  ladder: LadderRung[];
  max_resolution: number;
  presets: QualityPreset[];
  default_preset: string;
  limits: {
    max_upload_bytes: number;
    max_duration_seconds: number;
    max_pixels: number;
    max_frame_rate: number;
    max_streams: number;
  };
}

// ---- events on the SSE streams: `event:` name → `data:` JSON --------------------------------------

interface EventBase {
  video_id: string;
  at?: string;
  at_ms?: number;
}

export interface JobEventMap {
  /** The job JSON; on the multiplexed stream it carries `video_id` too. */
  snapshot: Job & { video_id?: string };
  created: EventBase & {
    filename: string;
    source: SourceInfo;
    renditions: { name: string; short_side: number; width: number; height: number; class: string }[];
    encoding: Encoding;
    preset: string;
  };
  started: EventBase & { rendition: string; attempt: number; worker?: string };
  progress: EventBase & { rendition: string; percent: number; fps: number; speed: number; eta_seconds: number };
  rendition: EventBase & {
    rendition: string;
    key?: string;
    /** Where to download it; the job's own route when absent. */
    url?: string;
    size: number;
    bit_rate: number;
    duration: number;
    width: number;
    height: number;
  };
  retrying: EventBase & { rendition: string; attempt: number; reason: string; will_retry: boolean };
  rendition_failed: EventBase & { rendition: string; attempt: number; reason: string; will_retry: boolean };
  cancelled: EventBase;
  deleted: EventBase;
  completed: EventBase;
  failed: EventBase & { rendition: string; reason: string };
}

export type JobEventName = keyof JobEventMap;
export const JOB_EVENT_NAMES = [
  "snapshot",
  "created",
  "started",
  "progress",
  "rendition",
  "retrying",
  "rendition_failed",
  "cancelled",
  "deleted",
  "completed",
  "failed",
] as const satisfies readonly JobEventName[];

export type JobEvent = { [K in JobEventName]: { name: K; data: JobEventMap[K] } }[JobEventName];

export function isTerminal(state: JobState | RenditionState): boolean {
  return state === "completed" || state === "done" || state === "failed" || state === "cancelled";
}
