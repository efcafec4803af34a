// Calls to the framepress API. Same origin unless VITE_API_URL named another at build time.

import { errorFromResponse, unreachable } from "./errors";
import type { Job, Presets, VideoPage } from "./types";

const base = (import.meta.env.VITE_API_URL ?? "").replace(/\/+$/, "");

/** The absolute address of an API path ("/api/…"); other addresses (a presigned URL) pass through. */
export function apiUrl(path: string): string {
  return path.startsWith("/") ? base + path : path;
}

async function request<T>(path: string, init?: RequestInit): Promise<T | undefined> {
  let response: Response;
  try {
    response = await fetch(apiUrl(path), { ...init, headers: { Accept: "application/json", ...init?.headers } });
  } catch {
    throw unreachable();
  }
  if (!response.ok) throw errorFromResponse(response.status, await response.text());
  if (response.status === 204) return undefined;
  return (await response.json()) as T;
}

async function requestJson<T>(path: string, init?: RequestInit): Promise<T> {
  const body = await request<T>(path, init);
  if (body === undefined) throw new Error(`No content from ${path}`);
  return body;
}

const videoPath = (id: string) => `/api/videos/${encodeURIComponent(id)}`;

export const api = {
  presets: () => requestJson<Presets>("/api/presets"),
  videos: (before?: string | null, limit = 20) =>
    requestJson<VideoPage>(`/api/videos?limit=${limit}${before ? `&before=${encodeURIComponent(before)}` : ""}`),
  video: (id: string) => requestJson<Job>(videoPath(id)),
  cancel: (id: string) => requestJson<Job>(`${videoPath(id)}/cancel`, { method: "POST" }),
  remove: async (id: string) => {
    await request<never>(videoPath(id), { method: "DELETE" });
  },
  sourceUrl: (id: string) => apiUrl(`${videoPath(id)}/source`),
  renditionUrl: (id: string, name: string) => apiUrl(`${videoPath(id)}/renditions/${encodeURIComponent(name)}`),
  eventsUrl: (ids: readonly string[]) => apiUrl(`/api/events?ids=${ids.map(encodeURIComponent).join(",")}`),
  uploadUrl: (renditions: readonly string[], preset: string) => {
    const query = [
      renditions.length > 0 ? `renditions=${renditions.map(encodeURIComponent).join(",")}` : "",
      preset ? `preset=${encodeURIComponent(preset)}` : "",
    ].filter(Boolean);
    return apiUrl(`/api/videos${query.length > 0 ? `?${query.join("&")}` : ""}`);
  },
};
