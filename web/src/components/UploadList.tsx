import { formatBytes, formatEta, formatRate } from "../format";
import { isActive, uploadEta, type UploadItem } from "../state/uploads";
import { ProgressBar } from "./ProgressBar";

interface Props {
  items: UploadItem[];
  onCancel: (key: string) => void;
  onDismiss: (key: string) => void;
}

function detail(item: UploadItem): string {
  switch (item.status) {
    case "waiting":
      return `Waiting · ${formatBytes(item.size)}`;
    case "uploading":
      return [`${formatBytes(item.loaded)} of ${formatBytes(item.size)}`, formatRate(item.rate), formatEta(uploadEta(item))]
        .filter(Boolean)
        .join(" · ");
    case "checking":
      return `${formatBytes(item.size)} sent · the server is checking the video…`;
    case "cancelled":
      return "Upload cancelled";
    case "failed":
      return "Upload failed";
  }
}

/** The files being sent (with bytes, speed and time left) and the ones that stopped, with why. */
export function UploadList({ items, onCancel, onDismiss }: Props) {
  if (items.length === 0) return null;
  return (
    <ul className="uploads" aria-label="Uploads">
      {items.map((item) => {
        const active = isActive(item);
        const percent = item.size > 0 ? (item.loaded / item.size) * 100 : 0;
        return (
          <li key={item.key} className={`upload upload--${item.status}`} data-status={item.status}>
            <div className="upload__head">
              <span className="upload__name" title={item.name}>
                {item.name}
              </span>
              {active ? (
                <button
                  type="button"
                  className="button button--small"
                  aria-label={`Cancel upload of ${item.name}`}
                  onClick={() => onCancel(item.key)}
                >
                  Cancel
                </button>
              ) : (
                <button
                  type="button"
                  className="button button--small button--quiet"
                  aria-label={`Dismiss ${item.name}`}
                  onClick={() => onDismiss(item.key)}
                >
                  Dismiss
                </button>
              )}
            </div>
            {item.status !== "failed" && (
              <ProgressBar
                percent={item.status === "checking" ? undefined : percent}
                label={`Upload of ${item.name}`}
                tone={item.status === "cancelled" ? "muted" : "active"}
              />
            )}
            <p className="upload__detail">{detail(item)}</p>
            {item.error && (
              <p className="message message--error" role="alert">
                {item.error}
              </p>
            )}
          </li>
        );
      })}
    </ul>
  );
}
