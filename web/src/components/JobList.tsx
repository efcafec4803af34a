import { isTerminal, type Job } from "../api/types";
import type { StreamStatus } from "../state/useJobStream";
import { JobCard } from "./JobCard";

interface Props {
  jobs: Job[];
  total: number;
  hasMore: boolean;
  loadingMore: boolean;
  /** Jobs uploaded in this visit: shown open whatever their state. */
  fresh: ReadonlySet<string>;
  stream: StreamStatus;
  onLoadMore: () => void;
  onCancel: (id: string) => Promise<void>;
  onDelete: (id: string) => Promise<void>;
}

const streamText: Record<StreamStatus, string> = {
  idle: "",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
};

/** Every job, newest first, paged from the server; live ones update through one event stream. */
export function JobList({ jobs, total, hasMore, loadingMore, fresh, stream, onLoadMore, onCancel, onDelete }: Props) {
  return (
    <section className="panel" aria-labelledby="videos-heading">
      <div className="panel__head">
        <h2 id="videos-heading">Videos</h2>
        <span className="muted">{total === 1 ? "1 video" : `${total} videos`}</span>
        <span className={`stream stream--${stream}`} role="status">
          {streamText[stream]}
        </span>
      </div>
      {jobs.length === 0 ? (
        <p className="empty">No videos yet. Upload one above: its renditions will appear here as they are encoded.</p>
      ) : (
        <div className="jobs">
          {jobs.map((job, index) => (
            <JobCard
              key={job.id}
              job={job}
              defaultOpen={index === 0 || fresh.has(job.id) || !isTerminal(job.state)}
              onCancel={onCancel}
              onDelete={onDelete}
            />
          ))}
        </div>
      )}
      {hasMore && (
        <button type="button" className="button load-more" onClick={onLoadMore} disabled={loadingMore}>
          {loadingMore ? "Loading…" : "Show older videos"}
        </button>
      )}
    </section>
  );
}
