interface Props {
  /** 0–100; undefined for "working, amount unknown". */
  percent: number | undefined;
  label: string;
  /** Read out instead of the bare percent, e.g. "47%, 8 s left". */
  valueText?: string;
  tone?: "active" | "done" | "failed" | "muted";
}

export function ProgressBar({ percent, label, valueText, tone = "active" }: Props) {
  const clamped = percent === undefined ? undefined : Math.min(100, Math.max(0, percent));
  return (
    <div
      className={`progress progress--${tone}${clamped === undefined ? " progress--indeterminate" : ""}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      {...(clamped === undefined ? {} : { "aria-valuenow": Math.round(clamped) })}
      {...(valueText ? { "aria-valuetext": valueText } : {})}
      data-percent={clamped === undefined ? "" : clamped.toFixed(1)}
    >
      <div className="progress__fill" style={clamped === undefined ? undefined : { width: `${clamped}%` }} />
    </div>
  );
}
