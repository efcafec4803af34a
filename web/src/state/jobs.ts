// The jobs on screen, folded from the API's answers and the SSE events the same way the server's job
// book folds its log (src/core/job_book.cpp), so the page shows what a reload would show.

import { isTerminal, type Job, type JobEvent, type Rendition, type VideoPage } from "../api/types";

export interface JobsState {
  /** Newest first (ids are ULIDs, which sort by creation time). */
  jobs: Job[];
  /** `before` for the next page of history; null on the last page. */
  next: string | null;
  total: number;
}

export type JobsAction =
  | { type: "page"; page: VideoPage; append: boolean }
  | { type: "upsert"; job: Job }
  | { type: "event"; event: JobEvent }
  | { type: "remove"; id: string };

export const emptyJobs: JobsState = { jobs: [], next: null, total: 0 };

const newestFirst = (a: Job, b: Job) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

function upsert(state: JobsState, job: Job): JobsState {
  const known = state.jobs.some((j) => j.id === job.id);
  const jobs = known ? state.jobs.map((j) => (j.id === job.id ? job : j)) : [...state.jobs, job].sort(newestFirst);
  return { ...state, jobs, total: known ? state.total : state.total + 1 };
}

function remove(state: JobsState, id: string): JobsState {
  if (!state.jobs.some((j) => j.id === id)) return state;
  return { ...state, jobs: state.jobs.filter((j) => j.id !== id), total: Math.max(0, state.total - 1) };
}

export function jobsReducer(state: JobsState, action: JobsAction): JobsState {
  switch (action.type) {
    case "page": {
      if (!action.append) return { jobs: [...action.page.videos].sort(newestFirst), next: action.page.next, total: action.page.total };
      const seen = new Set(state.jobs.map((j) => j.id));
      const older = action.page.videos.filter((j) => !seen.has(j.id));
      return { jobs: [...state.jobs, ...older].sort(newestFirst), next: action.page.next, total: action.page.total };
    }
    case "upsert":
      return upsert(state, action.job);
    case "remove":
      return remove(state, action.id);
    case "event": {
      const id = eventVideoId(action.event);
      const current = state.jobs.find((j) => j.id === id);
      const next = applyEvent(current, action.event);
      if (next === "deleted") return remove(state, id);
      return next === current || next === undefined ? state : upsert(state, next);
    }
  }
}

export function eventVideoId(event: JobEvent): string {
  return event.name === "snapshot" ? (event.data.video_id ?? event.data.id) : event.data.video_id;
}

function withRendition(job: Job, name: string, change: (r: Rendition) => Rendition | undefined): Job | undefined {
  const index = job.renditions.findIndex((r) => r.name === name);
  const current = job.renditions[index];
  if (current === undefined) return undefined;
  const changed = change(current);
  if (changed === undefined) return undefined;
  const renditions = job.renditions.map((r, i) => (i === index ? changed : r));
  return { ...job, renditions, state: job.state === "queued" && changed.state === "encoding" ? "processing" : job.state };
}

/** The job after one event: a new object when it changed, `current` when the event changes nothing,
 *  "deleted" when the job is gone. Like the server, ignores everything after the end but a deletion. */
export function applyEvent(current: Job | undefined, event: JobEvent): Job | undefined | "deleted" {
  if (event.name === "deleted") return "deleted";
  if (event.name === "snapshot") {
    const { video_id: _ignored, ...job } = event.data;
    return job;
  }
  if (event.name === "created") {
    if (current !== undefined) return current;
    const at = event.data.at ?? new Date().toISOString();
    return {
      id: event.data.video_id,
      state: "queued",
      filename: event.data.filename,
      created_at: at,
      updated_at: at,
      source: event.data.source,
      preset: event.data.preset,
      encoding: event.data.encoding,
      renditions: event.data.renditions.map((r) => ({
        name: r.name,
        width: r.width,
        height: r.height,
        class: r.class,
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
      })),
      error: null,
      last_event_id: "",
    };
  }
  if (current === undefined || isTerminal(current.state)) return current;
  const job = event.data.at ? { ...current, updated_at: event.data.at } : current;

  let next: Job | undefined;
  switch (event.name) {
    case "started": {
      const { rendition, attempt } = event.data;
      next = withRendition(job, rendition, (r) =>
        isTerminal(r.state)
          ? undefined
          : { ...r, state: "encoding", attempt: Math.max(r.attempt, attempt), percent: 0, fps: 0, speed: 0, eta_seconds: -1 },
      );
      break;
    }
    case "progress": {
      const { rendition, percent, fps, speed, eta_seconds } = event.data;
      next = withRendition(job, rendition, (r) => (r.state === "encoding" ? { ...r, percent, fps, speed, eta_seconds } : undefined));
      break;
    }
    case "rendition": {
      const d = event.data;
      next = withRendition(job, d.rendition, (r) =>
        isTerminal(r.state)
          ? undefined
          : {
              ...r,
              state: "done",
              percent: 100,
              eta_seconds: 0,
              size: d.size,
              bit_rate: d.bit_rate,
              duration: d.duration,
              width: d.width || r.width,
              height: d.height || r.height,
              url: d.url ?? `/api/videos/${encodeURIComponent(job.id)}/renditions/${encodeURIComponent(r.name)}`,
              error: null,
            },
      );
      break;
    }
    case "retrying":
    case "rendition_failed": {
      const { rendition, attempt, reason, will_retry } = event.data;
      next = withRendition(job, rendition, (r) =>
        isTerminal(r.state)
          ? undefined
          : { ...r, attempt: Math.max(r.attempt, attempt), error: reason, state: will_retry ? "queued" : "failed" },
      );
      break;
    }
    case "cancelled":
      next = {
        ...job,
        state: "cancelled",
        renditions: job.renditions.map((r) => (isTerminal(r.state) ? r : { ...r, state: "cancelled" })),
      };
      break;
    case "completed":
      next = { ...job, state: "completed" };
      break;
    case "failed":
      next = { ...job, state: "failed", error: `${event.data.rendition}: ${event.data.reason}` };
      break;
  }
  return next ?? current;
}
