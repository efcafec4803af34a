// The upload list: files waiting, being sent, or stopped with a reason. A pure reducer, so it is
// tested without a browser; useUploads drives it with real requests.

export type UploadStatus = "waiting" | "uploading" | "checking" | "failed" | "cancelled";

export interface UploadItem {
  key: string;
  name: string;
  size: number;
  status: UploadStatus;
  loaded: number;
  /** Bytes per second, smoothed; 0 until measured. */
  rate: number;
  error: string;
  /** Asked for at the time the file was added. */
  renditions: string[];
  preset: string;
}

export type UploadAction =
  | { type: "add"; items: UploadItem[] }
  | { type: "start"; key: string }
  | { type: "progress"; key: string; loaded: number; rate: number }
  | { type: "sent"; key: string }
  | { type: "fail"; key: string; error: string }
  | { type: "cancel"; key: string }
  | { type: "remove"; key: string };

export function uploadsReducer(items: UploadItem[], action: UploadAction): UploadItem[] {
  if (action.type === "add") return [...items, ...action.items];
  if (action.type === "remove") return items.filter((item) => item.key !== action.key);
  return items.map((item) => {
    if (item.key !== action.key) return item;
    switch (action.type) {
      case "start":
        return { ...item, status: "uploading" };
      case "progress":
        return { ...item, loaded: action.loaded, rate: action.rate };
      case "sent":
        return { ...item, status: "checking", loaded: item.size };
      case "fail":
        return { ...item, status: "failed", error: action.error };
      case "cancel":
        return { ...item, status: "cancelled" };
    }
  });
}

/** Seconds left at the measured rate; -1 while unknown. */
export function uploadEta(item: UploadItem): number {
  return item.rate > 0 ? (item.size - item.loaded) / item.rate : -1;
}

export const isActive = (item: UploadItem) => item.status === "waiting" || item.status === "uploading" || item.status === "checking";

/** A smoothed rate from one more progress sample. */
export function nextRate(previousRate: number, bytes: number, seconds: number): number {
  if (seconds <= 0) return previousRate;
  const sample = bytes / seconds;
  return previousRate > 0 ? previousRate * 0.7 + sample * 0.3 : sample;
}
