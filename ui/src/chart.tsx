/** A small live line chart (uPlot): time on x, one line per series, labelled for screen readers. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

export interface ChartProps {
  readonly title: string;
  /** Unit shown on the y axis, e.g. `ms`, `tokens/s`. */
  readonly unit: string;
  readonly times: readonly number[];
  readonly series: readonly Series[];
  readonly height?: number;
}

/** Colour-blind-safe palette (Okabe–Ito), dark enough for contrast on white. */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000'];

export function Chart({ title, unit, times, series, height = 180 }: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const shape = series.map((s) => s.label).join('\u0000');

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height,
      // Labels only: the values under the cursor add nothing to a glance.
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] },
      },
      axes: [
        {
          stroke: '#333',
          grid: { stroke: '#e3e3e3' },
          values: (_u, splits) =>
            splits.map((s) => new Date(s * 1000).toLocaleTimeString(undefined, { hour12: false })),
        },
        { stroke: '#333', grid: { stroke: '#e3e3e3' }, label: unit, size: 60 },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length] ?? '#000',
          width: 2,
          spanGaps: false,
          points: { show: false },
        })),
      ],
    };
    const u = new uPlot(opts, [[], ...series.map(() => [])], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(280, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = undefined;
    };
    // The chart is rebuilt only when its series change; new points go through setData.
  }, [shape, unit, height]);

  useEffect(() => {
    plot.current?.setData([times as number[], ...series.map((s) => s.values as (number | null)[])]);
  }, [times, series]);

  const latest = series
    .map((s) => {
      const v = s.values.at(-1);
      return `${s.label}: ${v === null || v === undefined ? 'no data' : `${fmt(v)} ${unit}`}`;
    })
    .join('; ');
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={host} role="img" aria-label={`${title}, latest values: ${latest || 'no data'}`} />
    </figure>
  );
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (Math.abs(v) >= 100) return Math.round(v).toString();
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
