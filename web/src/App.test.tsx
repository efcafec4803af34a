import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import type { Job } from "./api/types";
import { FakeEventSource, job, presets, rendition } from "./test/fixtures";

const A = "01JDEMO000000000000000000A";
const B = "01JDEMO000000000000000000B";

function serve(routes: Record<string, () => unknown>) {
  const fetch = vi.fn(async (url: string) => {
    const path = String(url);
    const route = Object.keys(routes).find((r) => path.startsWith(r));
    if (route === undefined) return new Response(JSON.stringify({ error: { code: "not_found", message: "no" } }), { status: 404 });
    return new Response(JSON.stringify(routes[route]!()), { status: 200 });
  });
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

const card = (id: string) => document.querySelector<HTMLElement>(`article[data-job-id="${id}"]`)!;

describe("App", () => {
  beforeEach(() => {
    FakeEventSource.all = [];
    vi.stubGlobal("EventSource", FakeEventSource);
  });

  it("rebuilds the page from the history and shows live progress from the stream", async () => {
    const running = job(B, { filename: "new.mov" });
    const finished = job(A, { state: "completed", filename: "old.mov", renditions: [rendition("360p", 640, 360, { state: "done", size: 1, url: "/x" })] });
    let latest: Job = running;
    const fetch = serve({
      "/api/presets": () => presets,
      [`/api/videos/${B}`]: () => latest,
      "/api/videos?": () => ({ videos: [running, finished], next: null, total: 2 }),
    });
    render(<App />);
    await screen.findByRole("heading", { name: "new.mov" });
    expect(screen.getByText("2 videos")).toBeTruthy();

    // One stream, for the unfinished job only.
    await waitFor(() => expect(FakeEventSource.open.map((s) => s.ids)).toEqual([[B]]));
    const stream = FakeEventSource.open[0]!;
    act(() => {
      stream.open();
      stream.emit("snapshot", { ...running, video_id: B });
      stream.emit("started", { video_id: B, rendition: "720p", attempt: 1 });
      stream.emit("progress", { video_id: B, rendition: "720p", percent: 63, fps: 90, speed: 3.6, eta_seconds: 4 });
    });
    expect(screen.getByRole("status").textContent).toBe("Live");
    expect(within(card(B)).getByRole("progressbar", { name: "720p encoding" }).getAttribute("aria-valuenow")).toBe("63");
    expect(card(B).textContent).toContain("63% · 90 fps · 3.6× · 4 s left");
    expect(card(B).dataset.state).toBe("processing");

    latest = job(B, {
      filename: "new.mov",
      state: "failed",
      error: "720p: ffmpeg exited with code 1",
      renditions: [rendition("360p", 640, 360, { state: "cancelled" }), rendition("720p", 1280, 720, { state: "failed", error: "ffmpeg exited with code 1" })],
    });
    await act(async () => {
      stream.emit("rendition_failed", { video_id: B, rendition: "720p", attempt: 1, reason: "ffmpeg exited with code 1", will_retry: false });
      stream.emit("failed", { video_id: B, rendition: "720p", reason: "ffmpeg exited with code 1" });
    });
    expect(card(B).dataset.state).toBe("failed");
    expect(card(B).textContent).toContain("Failed: 720p: ffmpeg exited with code 1");
    expect(FakeEventSource.open).toHaveLength(0);
    expect(fetch).toHaveBeenCalledWith(`/api/videos/${B}`, expect.anything());
  });

  it("says when the server is unreachable, and tries again on request", async () => {
    const fetch = vi.fn().mockRejectedValue(new TypeError("Failed to fetch"));
    vi.stubGlobal("fetch", fetch);
    render(<App />);
    expect((await screen.findByRole("alert")).textContent).toMatch(/Can’t reach the framepress server/);
    serve({ "/api/presets": () => presets, "/api/videos?": () => ({ videos: [], next: null, total: 0 }) });
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText(/No videos yet/)).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("pages older videos in with `before`", async () => {
    const fetch = serve({
      "/api/presets": () => presets,
      "/api/videos?limit=20&before=": () => ({ videos: [job(A, { state: "completed", filename: "older.mov" })], next: null, total: 2 }),
      "/api/videos?limit=20": () => ({ videos: [job(B, { state: "completed", filename: "newer.mov" })], next: B, total: 2 }),
    });
    render(<App />);
    await userEvent.setup().click(await screen.findByRole("button", { name: "Show older videos" }));
    await screen.findByRole("heading", { name: "older.mov" });
    expect(fetch).toHaveBeenCalledWith(`/api/videos?limit=20&before=${B}`, expect.anything());
    expect(screen.queryByRole("button", { name: "Show older videos" })).toBeNull();
  });
});
