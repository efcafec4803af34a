// Every way a call to the API can fail, turned into one message a person can act on.

import { formatBytes } from "../format";

/** What the server said, or `status` 0 when it could not be reached at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Builds the ApiError of a response that was not a success, from its `{"error":{code,message}}` body. */
export function errorFromResponse(status: number, body: string): ApiError {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
      const { code, message } = (parsed as { error: { code?: unknown; message?: unknown } }).error;
      if (typeof message === "string") {
        return new ApiError(status, typeof code === "string" ? code : "", message);
      }
    }
  } catch {
    // Not JSON: a proxy's page or an empty body. The status alone will have to do.
  }
  return new ApiError(status, "", "");
}

export const unreachable = (): ApiError => new ApiError(0, "unreachable", "");

export interface ErrorContext {
  /** The file an upload was sending. */
  filename?: string | undefined;
  /** The server's upload limit, when known. */
  maxUploadBytes?: number | undefined;
}

/** The sentence to show for an error: what happened and, where there is one, what to do. */
export function describeError(error: unknown, context: ErrorContext = {}): string {
  if (!(error instanceof ApiError)) {
    return error instanceof Error ? error.message : String(error);
  }
  const said = error.message;
  const file = context.filename ? `“${context.filename}”` : "The file";
  switch (error.status) {
    case 0:
      return "Can’t reach the framepress server. Check that it is running and your connection, then try again.";
    case 413: {
      const limit = context.maxUploadBytes ? ` The limit is ${formatBytes(context.maxUploadBytes)}.` : "";
      return `${file} is too large to upload.${limit}${said ? ` (${said})` : ""}`;
    }
    case 415:
      return `${file} is not a type the server accepts${said ? ` (${said})` : ""}. Upload a video file.`;
    case 422:
      return `${file} can’t be compressed: ${said || "the server found no usable video in it."}`;
    case 404:
      return said || "Not found: the video may have been deleted.";
    case 409:
      return said || "That can no longer be done: the job has already ended.";
    case 503:
      return `The server is busy or still starting${said ? ` (${said})` : ""}. Try again in a moment.`;
    default:
      if (error.status >= 500) return `The server ran into a problem${said ? `: ${said}` : ""}. Try again.`;
      return said || `The request failed (HTTP ${error.status}).`;
  }
}
