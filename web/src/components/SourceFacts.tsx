import type { SourceInfo } from "../api/types";
import { formatBitrate, formatBytes, formatDuration } from "../format";

/** What ffprobe found in the original: the facts a person checks before trusting the output. */
export function SourceFacts({ source }: { source: SourceInfo }) {
  const width = source.display_width || source.width;
  const height = source.display_height || source.height;
  const facts: [string, string][] = [
    ["Resolution", `${width}×${height}${source.rotation ? ` (rotated ${source.rotation}°)` : ""}`],
    ["Duration", formatDuration(source.duration)],
    ["Codec", source.video_codec],
    ["Frame rate", source.frame_rate ? `${Math.round(source.frame_rate * 100) / 100} fps` : "–"],
    ["Size", formatBytes(source.size)],
    ["Bitrate", formatBitrate(source.bit_rate)],
    ["Audio", source.audio ? `${source.audio.codec}, ${source.audio.channels} ch` : "none"],
  ];
  return (
    <dl className="facts">
      {facts.map(([term, value]) => (
        <div key={term} className="facts__item">
          <dt>{term}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
