import { describe, expect, it } from "vitest";
import { formatBitrate, formatBytes, formatDuration, formatEta, formatRatio } from "./format";

const plain = (text: string) => text.replaceAll("\u00a0", " ");

describe("format", () => {
  it("writes sizes and bit rates in decimal units", () => {
    expect(plain(formatBytes(999))).toBe("999 B");
    expect(plain(formatBytes(1_250_000))).toBe("1.25 MB");
    expect(plain(formatBytes(21_474_836_480))).toBe("21.5 GB");
    expect(plain(formatBitrate(640_000))).toBe("640 kb/s");
    expect(plain(formatBitrate(12_300_000))).toBe("12.3 Mb/s");
    expect(formatBitrate(0)).toBe("–");
  });

  it("writes durations and time left", () => {
    expect(formatDuration(7.4)).toBe("0:07");
    expect(formatDuration(3723)).toBe("1:02:03");
    expect(formatEta(-1)).toBe("");
    expect(formatEta(8.2)).toBe("9 s left");
    expect(formatEta(185)).toBe("3 min 5 s left");
  });

  it("compares an output with its source", () => {
    expect(formatRatio(10_000_000, 1_250_000)).toBe("8.0× smaller · 13%");
    expect(formatRatio(1_000_000, 2_000_000)).toBe("2.0× larger · 200%");
    expect(formatRatio(0, 1)).toBe("–");
  });
});
