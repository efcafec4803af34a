import { useEffect, useRef, useState } from "react";
import { describeError } from "../api/errors";

interface Props {
  filename: string;
  canCancel: boolean;
  onCancel: () => Promise<void>;
  onDelete: () => Promise<void>;
}

/** Cancel (the job stays, cancelled) and delete (after a second, explicit yes). */
export function JobActions({ filename, canCancel, onCancel, onDelete }: Props) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const confirmButton = useRef<HTMLButtonElement>(null);
  const deleteButton = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);

  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
    else if (wasConfirming.current) deleteButton.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError("");
    try {
      await action();
    } catch (e) {
      setError(describeError(e));
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="job__actions">
      {canCancel && (
        <button
          type="button"
          className="button button--small"
          aria-label={`Cancel ${filename}`}
          disabled={busy}
          onClick={() => void run(onCancel)}
        >
          Cancel
        </button>
      )}
      {confirming ? (
        <span className="confirm" role="group" aria-label={`Delete ${filename}?`}>
          <span className="confirm__text">Delete it and every rendition?</span>
          <button
            ref={confirmButton}
            type="button"
            className="button button--small button--danger"
            disabled={busy}
            onClick={() => void run(onDelete)}
          >
            Yes, delete
          </button>
          <button type="button" className="button button--small button--quiet" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </span>
      ) : (
        <button
          ref={deleteButton}
          type="button"
          className="button button--small button--quiet"
          aria-label={`Delete ${filename}`}
          onClick={() => setConfirming(true)}
        >
          Delete
        </button>
      )}
      {error && (
        <p className="message message--error job__action-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
