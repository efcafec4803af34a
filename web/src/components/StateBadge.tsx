import type { JobState, RenditionState } from "../api/types";

const labels: Record<JobState | RenditionState, string> = {
  queued: "Queued",
  processing: "Encoding",
  encoding: "Encoding",
  completed: "Done",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** The state as a coloured word; `data-state` keeps the server's own word for tests and styles. */
export function StateBadge({ state }: { state: JobState | RenditionState }) {
  return (
    <span className={`badge badge--${state}`} data-state={state}>
      {labels[state]}
    </span>
  );
}
