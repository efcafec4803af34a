import type { Job, Presets } from "../api/types";
import { formatBytes } from "../format";
import { useUploads } from "../state/useUploads";
import { DropZone } from "./DropZone";
import { UploadList } from "./UploadList";
import { UploadOptions, type Choice } from "./UploadOptions";

interface Props {
  presets: Presets | undefined;
  choice: Choice;
  onChoice: (choice: Choice) => void;
  onCreated: (job: Job) => void;
}

/** Choose renditions and quality, then drop or pick files: each gets its own progress row. */
export function UploadPanel({ presets, choice, onChoice, onCreated }: Props) {
  const uploads = useUploads(onCreated);
  const limit = presets?.limits.max_upload_bytes;
  const hint = `Several at once. MP4, MOV, MKV, WebM and more${limit ? `, up to ${formatBytes(limit)} each` : ""}.`;

  return (
    <section className="panel" aria-labelledby="upload-heading">
      <div className="panel__head">
        <h2 id="upload-heading">Upload</h2>
      </div>
      <div className="upload-grid">
        <DropZone
          hint={hint}
          onFiles={(files) =>
            uploads.add(files, { ...choice, maxUploadBytes: limit })
          }
        />
        <UploadOptions presets={presets} choice={choice} onChange={onChoice} />
      </div>
      <UploadList items={uploads.items} onCancel={uploads.cancel} onDismiss={uploads.dismiss} />
    </section>
  );
}
