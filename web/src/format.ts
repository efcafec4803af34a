// Numbers as people read them. Sizes use decimal units (1 MB = 1,000,000 bytes), like file managers.
// A no-break space joins a number to its unit, so "1.30 MB" never breaks across lines.

const NBSP = "\u00a0";

const units = ["B", "kB", "MB", "GB", "TB"];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)}${NBSP}${units[unit]}`;
}

export function formatBitrate(bitsPerSecond: number): string {
  if (!Number.isFinite(bitsPerSecond) || bitsPerSecond <= 0) return "–";
  if (bitsPerSecond >= 1_000_000) return `${(bitsPerSecond / 1_000_000).toFixed(bitsPerSecond >= 10_000_000 ? 1 : 2)}${NBSP}Mb/s`;
  return `${Math.round(bitsPerSecond / 1000)}${NBSP}kb/s`;
}

/** A media duration: "0:07", "12:03", "1:02:03". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Time left: "8 s left", "3 min 5 s left"; empty while unknown (negative). */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const total = Math.ceil(seconds);
  if (total < 60) return `${total} s left`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  if (h > 0) return `${h} h ${m} min left`;
  return `${m} min ${total % 60} s left`;
}

export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : "";
}

export function formatPercent(percent: number): string {
  return `${Math.floor(Math.min(100, Math.max(0, percent)))}%`;
}

/** How much smaller than the source: "8.4× smaller (12% of the source)". */
export function formatRatio(sourceBytes: number, bytes: number): string {
  if (sourceBytes <= 0 || bytes <= 0) return "–";
  const ratio = sourceBytes / bytes;
  const share = (bytes / sourceBytes) * 100;
  const shareText = share < 1 ? "<1%" : `${Math.round(share)}%`;
  return ratio >= 1 ? `${ratio.toFixed(1)}× smaller · ${shareText}` : `${(1 / ratio).toFixed(1)}× larger · ${shareText}`;
}

export function formatDate(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
