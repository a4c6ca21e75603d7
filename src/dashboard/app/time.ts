/**
 * Days and hours as the person at the screen lives them: the browser's time zone, which is
 * also the `timeZone` the statistics are asked in, so buckets and labels agree.
 */

export const SPARKLINE_DAYS = 30;

export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Local midnight of `date` plus `days` (Date handles the daylight-saving days). */
export function localMidnight(date: Date, days = 0): Date {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
}

export interface Window {
  from: string;
  to: string;
}

/** Today, from local midnight to the next. */
export function todayWindow(now: Date): Window {
  return { from: localMidnight(now).toISOString(), to: localMidnight(now, 1).toISOString() };
}

/** The last 30 days, today included. */
export function sparklineWindow(now: Date): Window {
  return { from: localMidnight(now, 1 - SPARKLINE_DAYS).toISOString(), to: localMidnight(now, 1).toISOString() };
}

/** Which bucket (by start, oldest first) an instant falls in; -1 before the first one or past the window. */
export function bucketIndex(starts: readonly number[], at: number, windowEnd: number): number {
  if (at >= windowEnd) return -1;
  for (let index = starts.length - 1; index >= 0; index -= 1) {
    if (starts[index] <= at) return index;
  }
  return -1;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 30],
  ['month', 12],
  ['year', Infinity],
];

/** "12 sec. ago", "3 hr. ago", "yesterday": how long ago `iso` was, as of `now`. */
export function ago(iso: string, now: number): string {
  let amount = Math.round((Date.parse(iso) - now) / 1000);
  if (Math.abs(amount) < 5) return relative.format(0, 'second');
  for (const [unit, size] of STEPS) {
    if (Math.abs(amount) < size) return relative.format(amount, unit);
    amount = Math.round(amount / size);
  }
  return relative.format(amount, 'year');
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayAndClock = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** The time of a feed entry: the clock today, else with the date. */
export function feedTime(iso: string, now: Date): string {
  const at = new Date(iso);
  return at >= localMidnight(now) ? clock.format(at) : dayAndClock.format(at);
}

const longDate = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
export function todayLabel(now: Date): string {
  return longDate.format(now);
}
