import { describe, expect, it } from "vitest";
import type { Job, JobEvent } from "../api/types";
import { job, rendition } from "../test/fixtures";
import { applyEvent, emptyJobs, jobsReducer } from "./jobs";

const id = "01JDEMO0000000000000000001";
const at = "2026-11-24T10:00:05.000Z";

function fold(start: Job, events: JobEvent[]): Job {
  let current: Job | undefined | "deleted" = start;
  for (const event of events) {
    if (current === undefined || current === "deleted") break;
    current = applyEvent(current, event);
  }
  if (current === undefined || current === "deleted") throw new Error("job gone");
  return current;
}

describe("applyEvent folds events like the server's job book", () => {
  it("moves a rendition through encoding to done and the job to completed", () => {
    const result = fold(job(id), [
      { name: "started", data: { video_id: id, at, rendition: "360p", attempt: 1 } },
      { name: "progress", data: { video_id: id, rendition: "360p", percent: 42.5, fps: 120, speed: 4.8, eta_seconds: 3 } },
    ]);
    expect(result.state).toBe("processing");
    expect(result.renditions[0]).toMatchObject({ state: "encoding", percent: 42.5, fps: 120, eta_seconds: 3 });

    const done = fold(result, [
      { name: "rendition", data: { video_id: id, rendition: "360p", size: 1_000_000, bit_rate: 640_000, duration: 12.5, width: 640, height: 360 } },
      { name: "started", data: { video_id: id, rendition: "720p", attempt: 1 } },
      { name: "rendition", data: { video_id: id, rendition: "720p", size: 3_000_000, bit_rate: 1_900_000, duration: 12.5, width: 1280, height: 720 } },
      { name: "completed", data: { video_id: id } },
    ]);
    expect(done.state).toBe("completed");
    expect(done.renditions.map((r) => [r.state, r.percent, r.size])).toEqual([
      ["done", 100, 1_000_000],
      ["done", 100, 3_000_000],
    ]);
    expect(done.renditions[0]?.url).toBe(`/api/videos/${id}/renditions/360p`);
  });

  it("ignores progress for a rendition that is not encoding", () => {
    const start = job(id);
    const after = applyEvent(start, { name: "progress", data: { video_id: id, rendition: "360p", percent: 50, fps: 1, speed: 1, eta_seconds: 1 } });
    expect(after).toBe(start);
  });

  it("puts a rendition back in the queue on a retry and fails it for good with the reason", () => {
    const retried = fold(job(id), [
      { name: "started", data: { video_id: id, rendition: "720p", attempt: 1 } },
      { name: "retrying", data: { video_id: id, rendition: "720p", attempt: 1, reason: "worker lost", will_retry: true } },
    ]);
    expect(retried.renditions[1]).toMatchObject({ state: "queued", error: "worker lost", attempt: 1 });

    const failed = fold(retried, [
      { name: "started", data: { video_id: id, rendition: "720p", attempt: 2 } },
      { name: "rendition_failed", data: { video_id: id, rendition: "720p", attempt: 2, reason: "ffmpeg: out of memory", will_retry: false } },
      { name: "failed", data: { video_id: id, rendition: "720p", reason: "ffmpeg: out of memory" } },
    ]);
    expect(failed.state).toBe("failed");
    expect(failed.error).toBe("720p: ffmpeg: out of memory");
    expect(failed.renditions[1]).toMatchObject({ state: "failed", attempt: 2 });
  });

  it("cancels the unfinished renditions and changes nothing after the end", () => {
    const start = job(id, { state: "processing", renditions: [rendition("360p", 640, 360, { state: "done" }), rendition("720p", 1280, 720, { state: "encoding" })] });
    const cancelled = fold(start, [{ name: "cancelled", data: { video_id: id } }]);
    expect(cancelled.state).toBe("cancelled");
    expect(cancelled.renditions.map((r) => r.state)).toEqual(["done", "cancelled"]);
    expect(applyEvent(cancelled, { name: "started", data: { video_id: id, rendition: "720p", attempt: 2 } })).toBe(cancelled);
    expect(applyEvent(cancelled, { name: "deleted", data: { video_id: id } })).toBe("deleted");
  });

  it("takes a snapshot whole, without the stream's video_id", () => {
    const snapshot = { ...job(id, { state: "completed" }), video_id: id };
    const result = applyEvent(job(id), { name: "snapshot", data: snapshot });
    expect(result).toEqual(job(id, { state: "completed" }));
  });
});

describe("jobsReducer", () => {
  it("keeps the newest first, pages older jobs in, and counts", () => {
    let state = jobsReducer(emptyJobs, { type: "page", page: { videos: [job("B"), job("A")], next: "A", total: 3 }, append: false });
    state = jobsReducer(state, { type: "page", page: { videos: [job("0")], next: null, total: 3 }, append: true });
    expect(state.jobs.map((j) => j.id)).toEqual(["B", "A", "0"]);
    expect(state.next).toBeNull();

    state = jobsReducer(state, { type: "upsert", job: job("C") });
    expect(state.jobs.map((j) => j.id)).toEqual(["C", "B", "A", "0"]);
    expect(state.total).toBe(4);

    state = jobsReducer(state, { type: "event", event: { name: "deleted", data: { video_id: "A" } } });
    expect(state.jobs.map((j) => j.id)).toEqual(["C", "B", "0"]);
    expect(state.total).toBe(3);
  });
});
