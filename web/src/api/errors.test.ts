import { describe, expect, it } from "vitest";
import { ApiError, describeError, errorFromResponse } from "./errors";

const body = (code: string, message: string) => JSON.stringify({ error: { code, message } });

describe("describeError", () => {
  it("shows the server's own reason for a file that is not a video (422)", () => {
    const error = errorFromResponse(422, body("not_a_video", "ffprobe: Invalid data found when processing input"));
    expect(error).toMatchObject({ status: 422, code: "not_a_video" });
    expect(describeError(error, { filename: "notes.txt" })).toBe(
      "“notes.txt” can’t be compressed: ffprobe: Invalid data found when processing input",
    );
  });

  it("says a file is too large, with the limit (413)", () => {
    const text = describeError(errorFromResponse(413, body("too_large", "over 20 GB")), { filename: "big.mov", maxUploadBytes: 20_000_000_000 });
    expect(text).toBe("“big.mov” is too large to upload. The limit is 20.0\u00a0GB. (over 20 GB)");
  });

  it("asks for a video when the type is refused (415)", () => {
    expect(describeError(errorFromResponse(415, body("unsupported_media_type", "send multipart/form-data")), { filename: "a.bin" })).toBe(
      "“a.bin” is not a type the server accepts (send multipart/form-data). Upload a video file.",
    );
  });

  it("tells when the server cannot be reached", () => {
    expect(describeError(new ApiError(0, "unreachable", ""))).toMatch(/^Can’t reach the framepress server/);
  });

  it("copes with bodies that are not the error JSON", () => {
    const error = errorFromResponse(502, "<html>Bad gateway</html>");
    expect(error.message).toBe("");
    expect(describeError(error)).toBe("The server ran into a problem. Try again.");
    expect(describeError(errorFromResponse(503, body("unavailable", "replaying the log")))).toBe(
      "The server is busy or still starting (replaying the log). Try again in a moment.",
    );
  });
});
