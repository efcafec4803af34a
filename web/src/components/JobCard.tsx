import { useId, useState } from "react";
import { api } from "../api/client";
import { isTerminal, type Job } from "../api/types";
import { formatBytes, formatDate } from "../format";
import { ComparePlayer } from "./ComparePlayer";
import { JobActions } from "./JobActions";
import { RenditionProgress } from "./RenditionProgress";
import { ResultsTable } from "./ResultsTable";
import { SourceFacts } from "./SourceFacts";
import { StateBadge } from "./StateBadge";

interface Props {
  job: Job;
  defaultOpen: boolean;
  onCancel: (id: string) => Promise<void>;
  onDelete: (id: string) => Promise<void>;
}

function summary(job: Job): string {
  const done = job.renditions.filter((r) => r.state === "done");
  const count = `${job.renditions.length} rendition${job.renditions.length === 1 ? "" : "s"}`;
  if (done.length === 0) return count;
  const output = done.reduce((sum, r) => sum + r.size, 0);
  return `${count} · ${formatBytes(output)} in all`;
}

/** One video: its source, live progress per rendition, then results, player and downloads. */
export function JobCard({ job, defaultOpen, onCancel, onDelete }: Props) {
  const [open, setOpen] = useState(defaultOpen);
  const titleId = useId();
  const bodyId = useId();
  const ended = isTerminal(job.state);
  const done = job.renditions.filter((r) => r.state === "done");
  // While the job runs every rendition shows its bar; once it has ended the finished ones move to the
  // results table and only the failed or cancelled ones stay, with why.
  const progress = ended ? job.renditions.filter((r) => r.state !== "done") : job.renditions;

  return (
    <article className="job" aria-labelledby={titleId} data-job-id={job.id} data-state={job.state}>
      <header className="job__head">
        <div className="job__heading">
          <h3 id={titleId} className="job__title" title={job.filename}>
            {job.filename}
          </h3>
          <p className="job__meta">
            <time dateTime={job.created_at}>{formatDate(job.created_at)}</time> · {job.preset} · {summary(job)}
          </p>
        </div>
        <div aria-live="polite" className="job__state">
          <StateBadge state={job.state} />
        </div>
      </header>

      {job.error && (
        <p className="message message--error">
          <strong>Failed:</strong> {job.error}
        </p>
      )}

      {open && (
        <div id={bodyId} className="job__body">
          <SourceFacts source={job.source} />
          {progress.length > 0 && <RenditionProgress renditions={progress} />}
          {done.length > 0 && (
            <>
              <ResultsTable job={job} done={done} />
              <ComparePlayer job={job} done={done} />
            </>
          )}
        </div>
      )}

      <footer className="job__foot">
        <button
          type="button"
          className="button button--small button--quiet"
          aria-expanded={open}
          {...(open ? { "aria-controls": bodyId } : {})}
          aria-label={`${open ? "Hide" : "Show"} details of ${job.filename}`}
          onClick={() => setOpen(!open)}
        >
          {open ? "Hide details" : "Show details"}
        </button>
        <a
          className="button button--small button--quiet"
          href={api.sourceUrl(job.id)}
          download={job.filename}
          aria-label={`Download the original of ${job.filename}`}
        >
          Original
        </a>
        <JobActions
          filename={job.filename}
          canCancel={!ended}
          onCancel={() => onCancel(job.id)}
          onDelete={() => onDelete(job.id)}
        />
      </footer>
    </article>
  );
}
