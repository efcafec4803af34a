import { useId } from "react";
import { apiUrl } from "../api/client";
import type { Job, Rendition } from "../api/types";
import { formatBitrate, formatBytes, formatRatio } from "../format";

/** The finished renditions: what each weighs against the source, and a download for each. */
export function ResultsTable({ job, done }: { job: Job; done: Rendition[] }) {
  const captionId = useId();
  return (
    <div className="table-scroll" role="region" aria-labelledby={captionId} tabIndex={0}>
      <table className="results">
        <caption id={captionId}>Results of {job.filename}</caption>
        <thead>
          <tr>
            <th scope="col">Rendition</th>
            <th scope="col">Dimensions</th>
            <th scope="col">Size</th>
            <th scope="col">Bitrate</th>
            <th scope="col">Against the source</th>
            <th scope="col">
              <span className="visually-hidden">Download</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {done.map((r) => (
            <tr key={r.name} data-rendition={r.name}>
              <th scope="row">{r.name}</th>
              <td>
                {r.width}×{r.height}
              </td>
              <td>{formatBytes(r.size)}</td>
              <td>{formatBitrate(r.bit_rate)}</td>
              <td>{formatRatio(job.source.size, r.size)}</td>
              <td>
                {r.url && (
                  <a
                    className="button button--small"
                    href={apiUrl(r.url)}
                    download={downloadName(job.filename, r.name)}
                    aria-label={`Download ${r.name}`}
                  >
                    Download
                  </a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** "holiday.mov" at 720p → "holiday-720p.mp4" (the server's Content-Disposition wins when it sends one). */
function downloadName(filename: string, rendition: string): string {
  const stem = filename.replace(/\.[^.]+$/, "") || "video";
  return `${stem}-${rendition}.mp4`;
}
