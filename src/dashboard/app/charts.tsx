/** The charts of the dashboard, drawn by uPlot on canvas: daily sparklines and today by hour. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** The value of a custom property of the page's stylesheet (colors follow light/dark). */
function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function rootFontPx(): number {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}

const darkScheme = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : undefined;

/** Changes when the color scheme does, so charts are drawn again in the new colors. */
function useScheme(): boolean {
  const [dark, setDark] = useState(darkScheme?.matches ?? false);
  useEffect(() => {
    const onChange = (event: MediaQueryListEvent) => setDark(event.matches);
    darkScheme?.addEventListener('change', onChange);
    return () => darkScheme?.removeEventListener('change', onChange);
  }, []);
  return dark;
}

/**
 * One uPlot chart in a box sized by CSS: made when the box has a size, resized with it,
 * made again when the colors or the options change, fed new data without being remade.
 */
function useChart(build: (width: number, height: number) => uPlot.Options, data: uPlot.AlignedData, rebuildKey: string) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const dark = useScheme();
  const latest = useRef(data);
  latest.current = data;

  useEffect(() => {
    const element = box.current;
    if (!element) return undefined;
    const make = () => {
      chart.current?.destroy();
      const width = Math.max(10, Math.floor(element.clientWidth));
      const height = Math.max(10, Math.floor(element.clientHeight));
      const options = build(width, height);
      // What the chart last drew, uPlot's own data ([x in seconds, ...series]), on its box as
      // data-drawn: for tests and anyone inspecting the page.
      const drawn = (self: uPlot) => {
        element.dataset.drawn = JSON.stringify(self.data);
      };
      const hooks = { ...options.hooks, draw: [...(options.hooks?.draw ?? []), drawn] };
      chart.current = new uPlot({ ...options, hooks }, latest.current, element);
    };
    make();
    let fontPx = rootFontPx();
    const observer = new ResizeObserver(() => {
      // Axis labels are sized from the root font, which changes with the width (phone, TV).
      if (rootFontPx() !== fontPx) {
        fontPx = rootFontPx();
        make();
        return;
      }
      const width = Math.max(10, Math.floor(element.clientWidth));
      const height = Math.max(10, Math.floor(element.clientHeight));
      if (chart.current && (chart.current.width !== width || chart.current.height !== height)) chart.current.setSize({ width, height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.current?.destroy();
      chart.current = null;
    };
    // build is a fresh closure each render; rebuildKey says when its result would differ.
  }, [dark, rebuildKey]);

  useEffect(() => {
    chart.current?.setData(data);
  }, [data]);

  return box;
}

export interface SparklineProps {
  /** bucket starts, in milliseconds, oldest first */
  starts: readonly number[];
  values: readonly number[];
  label: string;
}

/** Scans per day over the last 30 days, one small area line per code. */
export function Sparkline({ starts, values, label }: SparklineProps) {
  // The same arrays until a scan changes them: the chart is not redrawn on every render of the page.
  const data = useMemo<uPlot.AlignedData>(() => [starts.map((start) => start / 1000), [...values]], [starts, values]);
  const box = useChart(
    (width, height) => ({
      width,
      height,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      padding: [3, 1, 1, 1],
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: true }, y: { range: (_chart, _min, max) => [0, Math.max(1, max)] } },
      series: [
        {},
        {
          stroke: cssVar('--accent'),
          fill: cssVar('--accent-soft'),
          width: 1.5,
          points: { show: false },
        },
      ],
    }),
    data,
    'sparkline',
  );
  const total = values.reduce((sum, value) => sum + value, 0);
  return <div class="sparkline" ref={box} role="img" aria-label={`${label}: ${total} scans in 30 days`} />;
}

export interface HourChartProps {
  /** hour starts of today, in milliseconds */
  starts: readonly number[];
  scans: readonly number[];
  visits: readonly number[];
  showVisits: boolean;
}

/** Today by hour: scans as bars, visits of redirect links as a line. */
export function HourChart({ starts, scans, visits, showVisits }: HourChartProps) {
  const data = useMemo<uPlot.AlignedData>(() => {
    const x = starts.map((start) => start / 1000);
    // Hours still to come have no visits yet, not zero visits: the line stops at the current hour.
    const now = Date.now();
    return showVisits ? [x, [...scans], visits.map((count, index) => (starts[index] > now ? null : count))] : [x, [...scans]];
  }, [starts, scans, visits, showVisits]);
  const box = useChart(
    (width, height) => {
      const font = `${Math.round(rootFontPx() * 0.75)}px system-ui, sans-serif`;
      const axisColor = cssVar('--muted');
      const grid = { stroke: cssVar('--grid'), width: 1 };
      const series: uPlot.Series[] = [
        {},
        {
          label: 'Scans',
          stroke: cssVar('--accent'),
          fill: cssVar('--accent'),
          width: 0,
          paths: uPlot.paths.bars?.({ size: [0.7, 48], gap: 1 }),
          points: { show: false },
        },
      ];
      if (showVisits) series.push({ label: 'Visits', stroke: cssVar('--visits'), width: 2, points: { show: false } });
      return {
        width,
        height,
        cursor: { show: false },
        legend: { show: false },
        select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        padding: [8, 8, 0, 0],
        scales: {
          // Half an hour either side, so the first and last bars are whole.
          x: { time: true, range: (_chart, min, max) => [min - 1800, max + 1800] },
          y: { range: (_chart, _min, max) => [0, Math.max(4, Math.ceil(max * 1.1))] },
        },
        axes: [
          {
            stroke: axisColor,
            font,
            grid: { show: false },
            ticks: { show: false },
            size: rootFontPx() * 1.75,
            gap: rootFontPx() * 0.25,
            space: rootFontPx() * 4,
            values: (_chart, splits) => splits.map((split) => new Date(split * 1000).toLocaleTimeString(undefined, { hour: 'numeric' })),
          },
          {
            stroke: axisColor,
            font,
            grid,
            ticks: { show: false },
            size: rootFontPx() * 2.5,
            space: rootFontPx() * 2,
            // The baseline speaks for itself, and its 0 would touch the first hour's label.
            values: (_chart, splits) => splits.map((split) => (split === 0 ? '' : String(split))),
          },
        ],
        series,
      };
    },
    data,
    `hours-${showVisits}`,
  );
  return <div class="hour-chart" ref={box} role="img" aria-label="Scans today, by hour" />;
}
