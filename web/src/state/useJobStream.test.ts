import { act, renderHook } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { FakeEventSource } from "../test/fixtures";
import { RETRY_MS, useJobStream } from "./useJobStream";

describe("useJobStream", () => {
  beforeEach(() => {
    FakeEventSource.all = [];
    vi.stubGlobal("EventSource", FakeEventSource);
  });

  function setup(ids: string[]) {
    const onEvent = vi.fn();
    const onClosed = vi.fn();
    const hook = renderHook(({ active }) => useJobStream(active, onEvent, onClosed), { initialProps: { active: ids } });
    return { ...hook, onEvent, onClosed };
  }

  it("opens one stream for every unfinished job and hands on its events", () => {
    const { result, onEvent } = setup(["A", "B"]);
    expect(FakeEventSource.open).toHaveLength(1);
    expect(FakeEventSource.open[0]?.url).toBe("/api/events?ids=A,B");
    expect(result.current).toBe("connecting");
    act(() => FakeEventSource.open[0]?.open());
    expect(result.current).toBe("live");
    act(() => FakeEventSource.open[0]?.emit("progress", { video_id: "B", rendition: "720p", percent: 10 }));
    expect(onEvent).toHaveBeenCalledWith({ name: "progress", data: { video_id: "B", rendition: "720p", percent: 10 } });
  });

  it("keeps the stream when a job ends, opens a new one when a job joins, closes it when none is left", () => {
    const { rerender } = setup(["A", "B"]);
    const first = FakeEventSource.open[0];
    rerender({ active: ["B"] });
    expect(FakeEventSource.open).toEqual([first]);
    rerender({ active: ["C", "B"] });
    expect(first?.readyState).toBe(FakeEventSource.CLOSED);
    expect(FakeEventSource.open.map((s) => s.ids)).toEqual([["C", "B"]]);
    rerender({ active: [] });
    expect(FakeEventSource.open).toHaveLength(0);
  });

  it("says when it reconnects, and after the server closes the stream refreshes and tries again", () => {
    vi.useFakeTimers();
    try {
      const { result, onClosed } = setup(["A"]);
      act(() => FakeEventSource.open[0]?.fail(false));
      expect(result.current).toBe("reconnecting");
      act(() => FakeEventSource.open[0]?.fail(true));
      expect(result.current).toBe("idle");
      expect(onClosed).toHaveBeenCalledWith(["A"]);
      act(() => vi.advanceTimersByTime(RETRY_MS));
      expect(FakeEventSource.open.map((s) => s.ids)).toEqual([["A"]]);
      expect(FakeEventSource.all).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
