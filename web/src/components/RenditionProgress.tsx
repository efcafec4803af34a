import type { Rendition } from "../api/types";
import { formatEta, formatPercent } from "../format";
import { ProgressBar } from "./ProgressBar";
import { StateBadge } from "./StateBadge";

function detail(r: Rendition): string {
  switch (r.state) {
    case "queued":
      return r.attempt > 0 && r.error ? `Retrying after attempt ${r.attempt}` : "Waiting for a worker";
    case "encoding":
      return [formatPercent(r.percent), r.fps > 0 ? `${Math.round(r.fps)} fps` : "", r.speed > 0 ? `${r.speed.toFixed(1)}×` : "", formatEta(r.eta_seconds)]
        .filter(Boolean)
        .join(" · ");
    case "done":
      return "100%";
    case "failed":
      return r.attempt > 1 ? `Failed after ${r.attempt} attempts` : "Failed";
    case "cancelled":
      return "Cancelled";
  }
}

const tone = (r: Rendition) =>
  r.state === "done" ? "done" : r.state === "failed" ? "failed" : r.state === "cancelled" ? "muted" : "active";

/** One bar per rendition with percent, fps and time left, and why it failed when it did. */
export function RenditionProgress({ renditions }: { renditions: Rendition[] }) {
  return (
    <ul className="renditions" aria-label="Renditions">
      {renditions.map((r) => (
        <li key={r.name} className="rendition" data-rendition={r.name} data-state={r.state}>
          <div className="rendition__name">
            <strong>{r.name}</strong>
            <span className="muted">
              {r.width}×{r.height}
            </span>
          </div>
          <StateBadge state={r.state} />
          <ProgressBar
            percent={r.state === "queued" ? 0 : r.state === "done" ? 100 : r.percent}
            label={`${r.name} encoding`}
            valueText={detail(r)}
            tone={tone(r)}
          />
          <span className="rendition__detail">{detail(r)}</span>
          {r.error && r.state !== "done" && (
            <p className={`message ${r.state === "failed" ? "message--error" : "message--warning"} rendition__error`}>
              {r.state === "failed" ? "Reason: " : "Last attempt failed: "}
              {r.error}
            </p>
          )}
        </li>
      ))}
    </ul>
  );
}
