// One EventSource for every unfinished job on screen (GET /api/events?ids=…), so the browser's six
// connections per host never run out. EventSource reconnects by itself and resumes every job with the
// Last-Event-ID cursor; a new stream (with fresh snapshots) is opened only when a job joins the set.

import { useEffect, useMemo, useRef, useState } from "react";
import { api } from "../api/client";
import { JOB_EVENT_NAMES, type JobEvent } from "../api/types";

export type StreamStatus = "idle" | "connecting" | "live" | "reconnecting";

/** How long to wait before a new stream once the server closed one for good. */
export const RETRY_MS = 3000;

/**
 * Streams the events of `activeIds` to `onEvent`. When the server closes the stream for good (204 once
 * every job on it has ended, or an error status), `onClosed` gets the ids it carried so the caller can
 * fetch their state, and a new stream opens after RETRY_MS for the jobs still unfinished by then.
 */
export function useJobStream(
  activeIds: readonly string[],
  onEvent: (event: JobEvent) => void,
  onClosed: (ids: readonly string[]) => void,
): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>("idle");
  const [streamIds, setStreamIds] = useState<readonly string[]>([]);
  const latest = useRef({ onEvent, onClosed, activeIds });
  latest.current = { onEvent, onClosed, activeIds };

  const key = activeIds.join(",");
  const ids = useMemo(() => (key ? key.split(",") : []), [key]);

  // The open stream goes on for jobs that end (the server sends their last events, then drops them), so
  // it is replaced only when a job joins, and closed when every job on screen has ended.
  useEffect(() => {
    setStreamIds((open) => {
      if (ids.length === 0) return [];
      return ids.every((id) => open.includes(id)) ? open : ids;
    });
  }, [ids]);

  useEffect(() => {
    if (streamIds.length === 0) {
      setStatus("idle");
      return;
    }
    setStatus("connecting");
    const source = new EventSource(api.eventsUrl(streamIds));
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    source.onopen = () => setStatus("live");
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        setStatus("reconnecting");
        return;
      }
      setStatus("idle");
      latest.current.onClosed(streamIds);
      retryTimer = setTimeout(() => setStreamIds([...latest.current.activeIds]), RETRY_MS);
    };
    for (const name of JOB_EVENT_NAMES) {
      source.addEventListener(name, (message: MessageEvent<string>) => {
        let data: unknown;
        try {
          data = JSON.parse(message.data);
        } catch {
          return; // not an event of ours
        }
        latest.current.onEvent({ name, data } as JobEvent);
      });
    }
    return () => {
      source.close();
      clearTimeout(retryTimer);
    };
  }, [streamIds]);

  return status;
}
