import { useCallback, useEffect, useMemo, useReducer, useState } from "react";
import { api } from "./api/client";
import { ApiError, describeError } from "./api/errors";
import { isTerminal, type Job, type JobEvent, type Presets } from "./api/types";
import { JobList } from "./components/JobList";
import { ThemeToggle } from "./components/ThemeToggle";
import { UploadPanel } from "./components/UploadPanel";
import type { Choice } from "./components/UploadOptions";
import { emptyJobs, eventVideoId, jobsReducer } from "./state/jobs";
import { useJobStream } from "./state/useJobStream";

/** The server serves at most this many jobs on one stream; the newest unfinished ones go first. */
const MAX_STREAM_JOBS = 100;

export function App() {
  const [presets, setPresets] = useState<Presets>();
  const [choice, setChoice] = useState<Choice>({ renditions: [], preset: "" });
  const [state, dispatch] = useReducer(jobsReducer, emptyJobs);
  const [loadError, setLoadError] = useState("");
  const [loadingMore, setLoadingMore] = useState(false);
  const [fresh, setFresh] = useState<ReadonlySet<string>>(new Set());
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let stale = false;
    setLoadError("");
    Promise.all([api.presets(), api.videos()]).then(
      ([presets, page]) => {
        if (stale) return;
        setPresets(presets);
        setChoice((c) => ({ ...c, preset: c.preset || presets.default_preset }));
        dispatch({ type: "page", page, append: false });
      },
      (error: unknown) => {
        if (!stale) setLoadError(describeError(error));
      },
    );
    return () => {
      stale = true;
    };
  }, [attempt]);

  const refresh = useCallback(async (id: string) => {
    try {
      dispatch({ type: "upsert", job: await api.video(id) });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) dispatch({ type: "remove", id });
    }
  }, []);

  const onEvent = useCallback(
    (event: JobEvent) => {
      dispatch({ type: "event", event });
      // The end of a job: read it back once for what events don't carry (download addresses).
      if (event.name === "completed" || event.name === "failed") void refresh(eventVideoId(event));
    },
    [refresh],
  );
  const onStreamClosed = useCallback(
    (ids: readonly string[]) => ids.forEach((id) => void refresh(id)),
    [refresh],
  );
  const activeIds = useMemo(
    () =>
      state.jobs
        .filter((j) => !isTerminal(j.state))
        .map((j) => j.id)
        .slice(0, MAX_STREAM_JOBS),
    [state.jobs],
  );
  const stream = useJobStream(activeIds, onEvent, onStreamClosed);

  // The tab says how many encodes are running, for a person working in another tab meanwhile.
  useEffect(() => {
    document.title = activeIds.length > 0 ? `(${activeIds.length}) framepress · encoding` : "framepress";
  }, [activeIds.length]);

  const onCreated = useCallback((job: Job) => {
    setFresh((ids) => new Set(ids).add(job.id));
    dispatch({ type: "upsert", job });
  }, []);

  const loadMore = async () => {
    setLoadingMore(true);
    try {
      dispatch({ type: "page", page: await api.videos(state.next), append: true });
    } catch (error) {
      setLoadError(describeError(error));
    } finally {
      setLoadingMore(false);
    }
  };

  const cancel = useCallback(
    async (id: string) => {
      try {
        dispatch({ type: "upsert", job: await api.cancel(id) });
      } catch (error) {
        void refresh(id);
        throw error;
      }
    },
    [refresh],
  );

  const remove = useCallback(async (id: string) => {
    try {
      await api.remove(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    dispatch({ type: "remove", id });
  }, []);

  return (
    <>
      <header className="topbar">
        <div className="topbar__inner">
          <a className="brand" href="/">
            <svg viewBox="0 0 32 32" aria-hidden="true" className="brand__mark">
              <rect width="32" height="32" rx="7" />
              <path d="M9 8h14v4H13v4h8v4h-8v6H9z" />
            </svg>
            framepress
          </a>
          <ThemeToggle />
        </div>
      </header>
      <main className="page">
        <h1 className="visually-hidden">framepress: compress videos</h1>
        {loadError && (
          <div className="message message--error banner" role="alert">
            <span>{loadError}</span>
            <button type="button" className="button button--small" onClick={() => setAttempt((n) => n + 1)}>
              Try again
            </button>
          </div>
        )}
        <UploadPanel presets={presets} choice={choice} onChoice={setChoice} onCreated={onCreated} />
        <JobList
          jobs={state.jobs}
          total={state.total}
          hasMore={state.next !== null}
          loadingMore={loadingMore}
          fresh={fresh}
          stream={stream}
          onLoadMore={() => void loadMore()}
          onCancel={cancel}
          onDelete={remove}
        />
      </main>
    </>
  );
}
