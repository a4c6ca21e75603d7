import { DateTime, IANAZone } from 'luxon';
import { registerEnumType } from 'type-graphql';
import { BadUserInputError } from '../errors';

export enum StatsInterval {
  HOUR = 'HOUR',
  DAY = 'DAY',
  WEEK = 'WEEK',
  MONTH = 'MONTH',
}

registerEnumType(StatsInterval, {
  name: 'StatsInterval',
  description: 'Buckets start at local boundaries: HOUR on the hour, DAY at midnight, WEEK on Monday, MONTH on the 1st.',
});

export const MAX_BUCKETS = 1000;

/** One bucket, clipped to the window: what it counts is [start, end). `label` is its local boundary. */
export interface Bucket {
  /** the bucket's boundary in the time zone (may be before `from` for the first bucket) */
  boundary: number;
  /** [start, end): the bucket clipped to [from, to) */
  start: number;
  end: number;
}

const UNIT = { HOUR: 'hour', DAY: 'day', WEEK: 'week', MONTH: 'month' } as const;

/** The IANA time zone, or BAD_USER_INPUT on `timeZone`. */
export function validTimeZone(timeZone: string): string {
  if (!IANAZone.isValidZone(timeZone)) {
    throw new BadUserInputError('timeZone', `Unknown time zone "${timeZone}": use an IANA name such as Europe/Berlin or UTC.`);
  }
  return timeZone;
}

/** The local boundary after `boundary` (Luxon's calendar math: a DST day lasts 23 or 25 hours). */
function nextBoundary(boundary: DateTime, interval: StatsInterval): DateTime {
  if (interval === StatsInterval.HOUR) {
    // Hours are stepped on the absolute clock, then snapped to the local hour: an hour
    // repeated or skipped by a DST change is one bucket of 60 minutes like any other.
    let next = DateTime.fromMillis(boundary.toMillis() + 3_600_000, { zone: boundary.zone }).startOf('hour');
    if (next.toMillis() <= boundary.toMillis()) next = DateTime.fromMillis(next.toMillis() + 3_600_000, { zone: boundary.zone });
    return next;
  }
  const unit = UNIT[interval];
  return boundary.plus({ [`${unit}s`]: 1 }).startOf(unit);
}

/**
 * The buckets of [from, to) by `interval` in `timeZone`, oldest first: the first contains
 * `from`, the last the instant before `to`. BAD_USER_INPUT on `to` when it is not after
 * `from`, on `timeZone` for an unknown zone, on `interval` beyond MAX_BUCKETS buckets.
 */
export function bucketsOf(from: Date, to: Date, interval: StatsInterval, timeZone: string): Bucket[] {
  const zone = validTimeZone(timeZone);
  if (!Object.values(StatsInterval).includes(interval))
    throw new BadUserInputError('interval', 'interval must be HOUR, DAY, WEEK or MONTH');
  const start = from.getTime();
  const end = to.getTime();
  if (!(end > start)) throw new BadUserInputError('to', 'to must be after from');
  const buckets: Bucket[] = [];
  let boundary = DateTime.fromMillis(start, { zone }).startOf(UNIT[interval]);
  while (boundary.toMillis() < end) {
    if (buckets.length === MAX_BUCKETS) {
      throw new BadUserInputError(
        'interval',
        `[from, to) spans more than ${MAX_BUCKETS} buckets of ${interval}: choose a larger interval or a shorter window`,
      );
    }
    const next = nextBoundary(boundary, interval);
    buckets.push({ boundary: boundary.toMillis(), start: Math.max(start, boundary.toMillis()), end: Math.min(end, next.toMillis()) });
    boundary = next;
  }
  return buckets;
}
