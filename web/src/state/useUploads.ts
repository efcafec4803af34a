// Sends the files in the upload list, two at a time so each gets a meaningful speed and ETA.

import { useCallback, useEffect, useReducer, useRef } from "react";
import { api } from "../api/client";
import { ApiError, describeError } from "../api/errors";
import type { Job } from "../api/types";
import { uploadVideo, type UploadHandle } from "../api/upload";
import { nextRate, uploadsReducer, type UploadItem } from "./uploads";

const PARALLEL = 2;
const PROGRESS_EVERY_MS = 200;

export interface UploadOptions {
  renditions: string[];
  preset: string;
  /** The server's limit, when known: larger files are refused before a byte is sent. */
  maxUploadBytes?: number | undefined;
}

export function useUploads(onCreated: (job: Job) => void) {
  const [items, dispatch] = useReducer(uploadsReducer, []);
  const files = useRef(new Map<string, File>());
  const running = useRef(new Map<string, UploadHandle>());
  const created = useRef(onCreated);
  created.current = onCreated;
  const counter = useRef(0);

  const add = useCallback((picked: readonly File[], options: UploadOptions) => {
    const added: UploadItem[] = picked.map((file) => {
      counter.current += 1;
      const key = `${counter.current}-${file.name}`;
      const tooLarge = options.maxUploadBytes !== undefined && file.size > options.maxUploadBytes;
      if (!tooLarge) files.current.set(key, file);
      return {
        key,
        name: file.name,
        size: file.size,
        status: tooLarge ? "failed" : "waiting",
        loaded: 0,
        rate: 0,
        error: tooLarge ? describeError(new ApiError(413, "too_large", ""), { filename: file.name, maxUploadBytes: options.maxUploadBytes }) : "",
        renditions: options.renditions,
        preset: options.preset,
      };
    });
    dispatch({ type: "add", items: added });
  }, []);

  const start = useCallback((item: UploadItem) => {
    const file = files.current.get(item.key);
    if (file === undefined) return;
    const forget = () => {
      running.current.delete(item.key);
      files.current.delete(item.key);
    };
    dispatch({ type: "start", key: item.key });
    let last = { at: performance.now(), loaded: 0, rate: 0 };
    const handle = uploadVideo(api.uploadUrl(item.renditions, item.preset), file, (loaded, total) => {
      const now = performance.now();
      if (loaded >= total) {
        dispatch({ type: "sent", key: item.key });
        return;
      }
      if (now - last.at < PROGRESS_EVERY_MS) return;
      const rate = nextRate(last.rate, loaded - last.loaded, (now - last.at) / 1000);
      last = { at: now, loaded, rate };
      dispatch({ type: "progress", key: item.key, loaded, rate });
    });
    running.current.set(item.key, handle);
    handle.done.then(
      (job) => {
        forget();
        dispatch({ type: "remove", key: item.key });
        created.current(job);
      },
      (error: unknown) => {
        forget();
        if (error instanceof DOMException && error.name === "AbortError") {
          dispatch({ type: "cancel", key: item.key });
          return;
        }
        dispatch({ type: "fail", key: item.key, error: describeError(error, { filename: file.name }) });
      },
    );
  }, []);

  useEffect(() => {
    const busy = items.filter((i) => i.status === "uploading" || i.status === "checking").length;
    items
      .filter((i) => i.status === "waiting" && !running.current.has(i.key))
      .slice(0, Math.max(0, PARALLEL - busy))
      .forEach(start);
  }, [items, start]);

  useEffect(() => {
    const all = running.current;
    return () => all.forEach((handle) => handle.abort());
  }, []);

  const cancel = useCallback((key: string) => {
    const handle = running.current.get(key);
    if (handle) {
      handle.abort();
    } else {
      files.current.delete(key);
      dispatch({ type: "cancel", key });
    }
  }, []);

  const dismiss = useCallback((key: string) => dispatch({ type: "remove", key }), []);

  return { items, add, cancel, dismiss };
}
