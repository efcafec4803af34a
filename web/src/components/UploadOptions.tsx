import { useId } from "react";
import type { Presets } from "../api/types";

export interface Choice {
  renditions: string[];
  preset: string;
}

interface Props {
  presets: Presets | undefined;
  choice: Choice;
  onChange: (choice: Choice) => void;
}

const sentence = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** The renditions (none ticked: the server picks every rung up to the source) and the quality preset. */
export function UploadOptions({ presets, choice, onChange }: Props) {
  const selectId = useId();
  const hintId = useId();
  if (presets === undefined) return null;

  const toggle = (name: string, on: boolean) => {
    const chosen = new Set(choice.renditions);
    if (on) chosen.add(name);
    else chosen.delete(name);
    // Keep the ladder's order, smallest first.
    onChange({ ...choice, renditions: presets.ladder.map((r) => r.name).filter((n) => chosen.has(n)) });
  };
  const selectedPreset = presets.presets.find((p) => p.name === choice.preset);

  return (
    <div className="options">
      <div className="field">
        <label htmlFor={selectId} className="field__label">
          Quality
        </label>
        <select
          id={selectId}
          value={choice.preset}
          onChange={(event) => onChange({ ...choice, preset: event.currentTarget.value })}
        >
          {presets.presets.map((p) => (
            <option key={p.name} value={p.name}>
              {p.name === presets.default_preset ? `${p.name} (default)` : p.name}
            </option>
          ))}
        </select>
        {selectedPreset && (
          <p className="field__hint">
            {sentence(selectedPreset.description)} · {selectedPreset.video_codec} {selectedPreset.preset}, CRF{" "}
            {selectedPreset.crf}
          </p>
        )}
      </div>
      <fieldset className="field" aria-describedby={hintId}>
        <legend className="field__label">Renditions</legend>
        <div className="chips">
          {presets.ladder.map((rung) => (
            <label key={rung.name} className="chip">
              <input
                type="checkbox"
                checked={choice.renditions.includes(rung.name)}
                onChange={(event) => toggle(rung.name, event.currentTarget.checked)}
              />
              <span>{rung.name}</span>
            </label>
          ))}
        </div>
        <p id={hintId} className="field__hint">
          {choice.renditions.length === 0
            ? `None ticked: every size up to the source’s own, at most ${presets.max_resolution}p.`
            : `Only ${choice.renditions.join(", ")}; each must be no larger than the source.`}
        </p>
      </fieldset>
    </div>
  );
}
