// One upload: XMLHttpRequest, because fetch reports no upload progress.

import { errorFromResponse, unreachable } from "./errors";
import type { Job } from "./types";

export interface UploadHandle {
  /** The created job; rejects with an ApiError, or an AbortError after abort(). */
  done: Promise<Job>;
  abort: () => void;
}

export function uploadVideo(url: string, file: File, onProgress: (loaded: number, total: number) => void): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<Job>((resolve, reject) => {
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as Job);
        } catch {
          reject(errorFromResponse(xhr.status, ""));
        }
      } else {
        reject(errorFromResponse(xhr.status, xhr.responseText));
      }
    };
    xhr.onerror = () => reject(unreachable());
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
  });
  const body = new FormData();
  body.append("video", file, file.name);
  xhr.open("POST", url);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.send(body);
  return { done, abort: () => xhr.abort() };
}
