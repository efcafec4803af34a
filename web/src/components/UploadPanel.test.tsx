import { act, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { FakeXhr, job, presets } from "../test/fixtures";
import { UploadPanel } from "./UploadPanel";

function setup(choice = { renditions: ["720p"], preset: "fast" }) {
  const onCreated = vi.fn();
  const onChoice = vi.fn();
  render(<UploadPanel presets={presets} choice={choice} onChoice={onChoice} onCreated={onCreated} />);
  return { onCreated, onChoice, user: userEvent.setup() };
}

const video = (name: string, bytes: number) => new File([new Uint8Array(bytes)], name, { type: "video/mp4" });
const rows = () => within(screen.getByRole("list", { name: "Uploads" })).getAllByRole("listitem");

describe("UploadPanel", () => {
  let clock = 0;
  beforeEach(() => {
    FakeXhr.all = [];
    clock = 0;
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    vi.spyOn(performance, "now").mockImplementation(() => clock);
  });

  it("offers the ladder and the quality presets from the server", async () => {
    const { user, onChoice } = setup({ renditions: [], preset: "standard" });
    expect(screen.getByLabelText("Quality")).toHaveProperty("value", "standard");
    expect(screen.getByRole("option", { name: "standard (default)" })).toBeTruthy();
    await user.click(screen.getByRole("checkbox", { name: "720p" }));
    expect(onChoice).toHaveBeenCalledWith({ renditions: ["720p"], preset: "standard" });
    expect(screen.getByText(/None ticked: every size up to the source’s own/)).toBeTruthy();
  });

  it("sends several files, two at a time, with the chosen options, and shows bytes, speed and time left", async () => {
    const { user, onCreated } = setup();
    await user.upload(screen.getByLabelText("Choose files"), [video("a.mp4", 400_000), video("b.mp4", 1000), video("c.mp4", 1000)]);

    expect(rows()).toHaveLength(3);
    expect(FakeXhr.all).toHaveLength(2);
    expect(FakeXhr.all[0]?.url).toBe("/api/videos?renditions=720p&preset=fast");
    expect((FakeXhr.all[0]?.body?.get("video") as File).name).toBe("a.mp4");
    expect(rows()[2]?.textContent).toContain("Waiting");

    clock = 1000;
    act(() => FakeXhr.all[0]?.progress(100_000, 400_000));
    expect(rows()[0]?.textContent).toContain("100\u00a0kB of 400\u00a0kB · 100\u00a0kB/s · 3 s left");
    expect(within(rows()[0]!).getByRole("progressbar", { name: "Upload of a.mp4" }).getAttribute("aria-valuenow")).toBe("25");

    act(() => FakeXhr.all[0]?.progress(400_000, 400_000));
    expect(rows()[0]?.textContent).toContain("the server is checking the video");

    const created = job("01JDEMO0000000000000000001", { filename: "a.mp4" });
    await act(async () => FakeXhr.all[0]?.respond(201, created));
    expect(onCreated).toHaveBeenCalledWith(created);
    expect(rows()).toHaveLength(2);
    expect(FakeXhr.all).toHaveLength(3); // the third file starts when a place is free
  });

  it("cancels an upload with abort()", async () => {
    const { user } = setup();
    await user.upload(screen.getByLabelText("Choose files"), [video("a.mp4", 1000)]);
    await user.click(screen.getByRole("button", { name: "Cancel upload of a.mp4" }));
    expect(FakeXhr.all[0]?.aborted).toBe(true);
    expect(rows()[0]?.textContent).toContain("Upload cancelled");
    await user.click(screen.getByRole("button", { name: "Dismiss a.mp4" }));
    expect(screen.queryByRole("list", { name: "Uploads" })).toBeNull();
  });

  it("shows the server's message when the file is not a video", async () => {
    const { user } = setup();
    await user.upload(screen.getByLabelText("Choose files"), [video("notes.txt", 10)]);
    await act(async () =>
      FakeXhr.all[0]?.respond(422, { error: { code: "not_a_video", message: "Invalid data found when processing input" } }),
    );
    expect(screen.getByRole("alert").textContent).toBe("“notes.txt” can’t be compressed: Invalid data found when processing input");
  });

  it("refuses a file over the server's limit before sending it, and says when the server is unreachable", async () => {
    const { user } = setup();
    await user.upload(screen.getByLabelText("Choose files"), [video("huge.mov", 2_000_000), video("ok.mp4", 10)]);
    expect(FakeXhr.all).toHaveLength(1);
    expect(screen.getByRole("alert").textContent).toBe("“huge.mov” is too large to upload. The limit is 1.00\u00a0MB.");
    await act(async () => FakeXhr.all[0]?.networkError());
    expect(screen.getAllByRole("alert")[1]?.textContent).toMatch(/^Can’t reach the framepress server/);
  });
});

describe("dropping files", () => {
  beforeEach(() => {
    FakeXhr.all = [];
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
  });

  it("takes files dropped anywhere on the page", () => {
    setup();
    const files = [video("a.mp4", 10), video("b.mp4", 10)];
    const dataTransfer = { types: ["Files"], files, dropEffect: "none" };
    const over = Object.assign(new Event("dragover", { cancelable: true }), { dataTransfer });
    act(() => {
      window.dispatchEvent(over);
    });
    expect(over.defaultPrevented).toBe(true);
    expect(screen.getByText("Drop to upload")).toBeTruthy();
    act(() => {
      window.dispatchEvent(Object.assign(new Event("drop", { cancelable: true }), { dataTransfer }));
    });
    expect(rows().map((row) => row.querySelector(".upload__name")?.textContent)).toEqual(["a.mp4", "b.mp4"]);
  });
});
