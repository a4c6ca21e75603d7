import { ArgsType, Field, ID, Int, ObjectType } from 'type-graphql';
import { Code } from '../codes/code.entity';
import { StatsInterval } from './time-buckets';

@ObjectType()
export class ScanBucket {
  @Field(() => Date, { description: 'the local boundary the bucket starts at (before `from` for the first bucket)' })
  start!: Date;

  @Field(() => Int)
  total!: number;

  @Field(() => Int)
  firstTime!: number;

  @Field(() => Int)
  returning!: number;

  @Field(() => Int)
  uniquePeople!: number;

  @Field(() => Int)
  visits!: number;
}

@ObjectType()
export class SourceCount {
  @Field(() => String, { nullable: true, description: 'null: Messenger sent no source' })
  source!: string | null;

  @Field(() => Int)
  count!: number;
}

@ObjectType()
export class CodeCount {
  @Field(() => Code)
  code!: Code;

  @Field(() => Int)
  count!: number;
}

@ObjectType({ description: 'Scans (and visits of REDIRECT links) in [from, to), by bucket, source and code.' })
export class ScanStats {
  @Field(() => Date)
  from!: Date;

  @Field(() => Date)
  to!: Date;

  @Field(() => StatsInterval)
  interval!: StatsInterval;

  @Field(() => String)
  timeZone!: string;

  @Field(() => Int)
  total!: number;

  @Field(() => Int, { description: 'scans of kind POSTBACK: people who started a conversation through a code' })
  firstTime!: number;

  @Field(() => Int, { description: 'scans of kind REFERRAL' })
  returning!: number;

  @Field(() => Int, { description: 'distinct people (by hashed PSID) among the scans in [from, to)' })
  uniquePeople!: number;

  @Field(() => Int, { description: 'GETs of redirect links in [from, to) (see Tracking)' })
  visits!: number;

  @Field(() => [ScanBucket], { description: 'one per interval, oldest first, zeros included' })
  buckets!: ScanBucket[];

  @Field(() => [SourceCount], { description: 'largest first' })
  bySource!: SourceCount[];

  /** Resolved by topCodes(first) on demand: only a query asking for it pays for it. */
  topCodesOf!: (first: number) => Promise<CodeCount[]>;
}

/** The window and its division, shared by scanStats and Code.stats. */
@ArgsType()
export class StatsWindowArgs {
  @Field(() => Date)
  from!: Date;

  @Field(() => Date)
  to!: Date;

  @Field(() => StatsInterval, { nullable: true, defaultValue: StatsInterval.DAY })
  interval?: StatsInterval | null;

  @Field(() => String, { nullable: true, defaultValue: 'UTC', description: 'an IANA time zone, e.g. Europe/Berlin' })
  timeZone?: string | null;
}

@ArgsType()
export class ScanStatsFilterArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;

  @Field(() => ID, { nullable: true })
  codeId?: string | null;
}
