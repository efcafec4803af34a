import { useId, useRef, useState } from "react";
import { api, apiUrl } from "../api/client";
import type { Job, Rendition } from "../api/types";

/** A media fragment that makes the browser fetch and show a first picture instead of a black box. */
const withFirstFrame = (url: string) => `${url}#t=0.05`;

interface Props {
  job: Job;
  /** Finished renditions, smallest first. */
  done: Rendition[];
}

/**
 * A rendition beside the original. Switching rendition keeps the time position (and keeps playing);
 * with "Play together", play, pause and seeks on the rendition move the original along.
 */
export function ComparePlayer({ job, done }: Props) {
  const groupName = useId();
  // Until the person picks one, the largest finished rendition.
  const [chosen, setChosen] = useState<string | null>(null);
  const [together, setTogether] = useState(true);
  const [originalUnplayable, setOriginalUnplayable] = useState(false);
  const rendition = useRef<HTMLVideoElement>(null);
  const original = useRef<HTMLVideoElement>(null);
  const resume = useRef<{ time: number; playing: boolean } | null>(null);

  const current = done.find((r) => r.name === chosen) ?? done[done.length - 1];
  if (current === undefined || current.url === null) return null;

  const choose = (name: string) => {
    const video = rendition.current;
    if (video) resume.current = { time: video.currentTime, playing: !video.paused };
    setChosen(name);
  };
  const onLoadedMetadata = () => {
    const video = rendition.current;
    const at = resume.current;
    resume.current = null;
    if (!video || !at) return;
    video.currentTime = at.time;
    if (at.playing) void video.play().catch(() => undefined);
  };
  const follow = (action: (rendition: HTMLVideoElement, original: HTMLVideoElement) => void) => () => {
    if (together && rendition.current && original.current) action(rendition.current, original.current);
  };

  return (
    <section className="compare" aria-label={`Compare ${job.filename}`}>
      <div className="compare__controls">
        <fieldset className="segmented">
          <legend className="field__label">Play rendition</legend>
          {done.map((r) => (
            <label key={r.name} className="segmented__option">
              <input type="radio" name={groupName} value={r.name} checked={r.name === current.name} onChange={() => choose(r.name)} />
              <span>{r.name}</span>
            </label>
          ))}
        </fieldset>
        <label className="toggle">
          <input type="checkbox" checked={together} onChange={(event) => setTogether(event.currentTarget.checked)} />
          <span>Play together</span>
        </label>
      </div>
      <div className="compare__videos">
        <figure>
          <video
            ref={rendition}
            src={withFirstFrame(apiUrl(current.url))}
            controls
            preload="metadata"
            playsInline
            aria-label={`${current.name} rendition of ${job.filename}`}
            data-rendition={current.name}
            onLoadedMetadata={onLoadedMetadata}
            onPlay={follow((r, o) => {
              o.currentTime = r.currentTime;
              void o.play().catch(() => undefined);
            })}
            onPause={follow((_, o) => o.pause())}
            onSeeked={follow((r, o) => {
              o.currentTime = r.currentTime;
            })}
            onRateChange={follow((r, o) => {
              o.playbackRate = r.playbackRate;
            })}
          />
          <figcaption>
            {current.name} · {current.width}×{current.height}
          </figcaption>
        </figure>
        <figure>
          <video
            ref={original}
            src={withFirstFrame(api.sourceUrl(job.id))}
            controls
            preload="metadata"
            playsInline
            muted={together}
            aria-label={`Original of ${job.filename}`}
            data-original=""
            onError={() => setOriginalUnplayable(true)}
            onLoadedMetadata={() => setOriginalUnplayable(false)}
          />
          <figcaption>
            Original · {job.source.display_width || job.source.width}×{job.source.display_height || job.source.height}
            {together && " · muted"}
            {originalUnplayable && (
              <span className="compare__note">
                {" "}
                · this browser can’t play the original ({job.source.video_codec}); download it to compare.
              </span>
            )}
          </figcaption>
        </figure>
      </div>
    </section>
  );
}
