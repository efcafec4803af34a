import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { job, rendition } from "../test/fixtures";
import { JobCard } from "./JobCard";

const id = "01JDEMO0000000000000000001";
const noop = () => Promise.resolve();

function show(j = job(id), handlers = { onCancel: vi.fn(noop), onDelete: vi.fn(noop) }) {
  render(<JobCard job={j} defaultOpen onCancel={handlers.onCancel} onDelete={handlers.onDelete} />);
  return { ...handlers, user: userEvent.setup() };
}

describe("JobCard", () => {
  it("shows the source facts and one bar per rendition with percent, fps and time left", () => {
    show(
      job(id, {
        state: "processing",
        renditions: [
          rendition("360p", 640, 360, { state: "encoding", percent: 47.6, fps: 212.4, speed: 8.5, eta_seconds: 8 }),
          rendition("720p", 1280, 720),
        ],
      }),
    );
    const source = screen.getByText("Resolution").closest("dl")!;
    expect(source.textContent).toContain("1280×720");
    expect(source.textContent).toContain("0:13");
    expect(source.textContent).toContain("h264");
    expect(source.textContent).toContain("25 fps");
    expect(source.textContent).toContain("10.0\u00a0MB");

    const bar = screen.getByRole("progressbar", { name: "360p encoding" });
    expect(bar.getAttribute("aria-valuenow")).toBe("48");
    expect(bar.getAttribute("aria-valuetext")).toBe("47% · 212 fps · 8.5× · 8 s left");
    const [first, second] = within(screen.getByRole("list", { name: "Renditions" })).getAllByRole("listitem");
    expect(within(first!).getByText("Encoding").dataset.state).toBe("encoding");
    expect(within(second!).getByText("Queued").dataset.state).toBe("queued");
    expect(screen.getByRole("button", { name: `Cancel holiday.mp4` })).toBeTruthy();
  });

  it("lists finished renditions with size, bitrate, ratio and a download, beside a player", () => {
    show(
      job(id, {
        state: "completed",
        renditions: [
          rendition("360p", 640, 360, { state: "done", percent: 100, size: 1_250_000, bit_rate: 800_000, url: `/api/videos/${id}/renditions/360p` }),
          rendition("720p", 1280, 720, { state: "done", percent: 100, size: 2_500_000, bit_rate: 1_600_000, url: `/api/videos/${id}/renditions/720p` }),
        ],
      }),
    );
    expect(screen.queryByRole("list", { name: "Renditions" })).toBeNull();
    const table = screen.getByRole("table", { name: "Results of holiday.mp4" });
    const row = within(table).getByRole("row", { name: /^360p/ });
    expect(row.textContent).toContain("640×360");
    expect(row.textContent).toContain("1.25\u00a0MB");
    expect(row.textContent).toContain("800\u00a0kb/s");
    expect(row.textContent).toContain("8.0× smaller · 13%");
    expect(within(row).getByRole("link", { name: "Download 360p" }).getAttribute("href")).toBe(`/api/videos/${id}/renditions/360p`);

    const player = screen.getByLabelText("720p rendition of holiday.mp4");
    expect(player.getAttribute("src")).toBe(`/api/videos/${id}/renditions/720p#t=0.05`);
    expect(screen.getByLabelText("Original of holiday.mp4").getAttribute("src")).toBe(`/api/videos/${id}/source#t=0.05`);
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
  });

  it("switches rendition at the same time position", async () => {
    const { user } = show(
      job(id, {
        state: "completed",
        renditions: [
          rendition("360p", 640, 360, { state: "done", size: 1, url: "/a/360p" }),
          rendition("720p", 1280, 720, { state: "done", size: 2, url: "/a/720p" }),
        ],
      }),
    );
    const video = screen.getByLabelText("720p rendition of holiday.mp4") as HTMLVideoElement;
    video.currentTime = 4.2;
    await user.click(screen.getByRole("radio", { name: "360p" }));
    const switched = screen.getByLabelText("360p rendition of holiday.mp4") as HTMLVideoElement;
    expect(switched.getAttribute("src")).toBe("/a/360p#t=0.05");
    switched.currentTime = 0;
    switched.dispatchEvent(new Event("loadedmetadata"));
    expect(switched.currentTime).toBe(4.2);
  });

  it("shows why a job failed, and why a rendition failed", () => {
    show(
      job(id, {
        state: "failed",
        error: "720p: ffmpeg exited with code 1",
        renditions: [
          rendition("360p", 640, 360, { state: "done", size: 1, url: "/a" }),
          rendition("720p", 1280, 720, { state: "failed", attempt: 3, error: "ffmpeg exited with code 1" }),
        ],
      }),
    );
    expect(screen.getByText("Failed:").parentElement?.textContent).toBe("Failed: 720p: ffmpeg exited with code 1");
    const failed = within(screen.getByRole("list", { name: "Renditions" })).getByRole("listitem");
    expect(failed.dataset.state).toBe("failed");
    expect(failed.textContent).toContain("Failed after 3 attempts");
    expect(failed.textContent).toContain("Reason: ffmpeg exited with code 1");
  });

  it("deletes only after a second, explicit yes", async () => {
    const { user, onDelete } = show(job(id, { state: "completed" }));
    await user.click(screen.getByRole("button", { name: "Delete holiday.mp4" }));
    expect(onDelete).not.toHaveBeenCalled();
    expect(document.activeElement?.textContent).toBe("Yes, delete");
    await user.click(screen.getByRole("button", { name: "Keep" }));
    expect(document.activeElement?.getAttribute("aria-label")).toBe("Delete holiday.mp4");
    await user.click(screen.getByRole("button", { name: "Delete holiday.mp4" }));
    await user.click(screen.getByRole("button", { name: "Yes, delete" }));
    expect(onDelete).toHaveBeenCalledWith(id);
  });
});
