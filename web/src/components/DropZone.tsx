import { useEffect, useId, useRef, useState } from "react";

interface Props {
  onFiles: (files: File[]) => void;
  hint: string;
}

const carriesFiles = (event: DragEvent) => event.dataTransfer?.types.includes("Files") ?? false;

/**
 * Files dropped anywhere on the page land here (so a near miss never makes the browser open the video
 * and leave the page), or are picked with the button, a label for the hidden file input.
 */
export function DropZone({ onFiles, hint }: Props) {
  const inputId = useId();
  const hintId = useId();
  const [over, setOver] = useState(false);
  const take = useRef(onFiles);
  take.current = onFiles;

  useEffect(() => {
    const onDragOver = (event: DragEvent) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
      setOver(true);
    };
    const onDragLeave = (event: DragEvent) => {
      if (event.relatedTarget === null) setOver(false); // left the window
    };
    const onDrop = (event: DragEvent) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      setOver(false);
      const files = Array.from(event.dataTransfer?.files ?? []);
      if (files.length > 0) take.current(files);
    };
    window.addEventListener("dragover", onDragOver);
    window.addEventListener("dragleave", onDragLeave);
    window.addEventListener("drop", onDrop);
    return () => {
      window.removeEventListener("dragover", onDragOver);
      window.removeEventListener("dragleave", onDragLeave);
      window.removeEventListener("drop", onDrop);
    };
  }, []);

  return (
    <div className={`dropzone${over ? " dropzone--over" : ""}`}>
      <svg className="dropzone__icon" viewBox="0 0 24 24" aria-hidden="true">
        <path d="M12 16V4m0 0-4.5 4.5M12 4l4.5 4.5M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3" />
      </svg>
      <p className="dropzone__title">{over ? "Drop to upload" : "Drop videos here"}</p>
      <p className="dropzone__or">or</p>
      <input
        id={inputId}
        className="visually-hidden"
        type="file"
        accept="video/*"
        multiple
        aria-describedby={hintId}
        onChange={(event) => {
          const files = Array.from(event.currentTarget.files ?? []);
          event.currentTarget.value = "";
          if (files.length > 0) onFiles(files);
        }}
      />
      <label htmlFor={inputId} className="button button--primary">
        Choose files
      </label>
      <p id={hintId} className="dropzone__hint">
        {hint}
      </p>
    </div>
  );
}
