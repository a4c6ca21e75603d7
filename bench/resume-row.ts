/**
 * Row 17: dashboards resuming after an outage. One gateway on a SQLite file, 1,000
 * graphql-ws subscribers (each on one of 50 codes, as a dashboard of one code), a steady
 * 200 signed single-scan webhooks per second over those codes. Every subscriber's socket
 * is cut (30 s; 3 s with --quick) while scans keep coming, then all resubscribe at once with
 * `after:` their last `streamCursor`. Measured per subscriber: from the start of its
 * resubscription until it holds every scan of its code stored before then (catch-up);
 * checked: every subscriber received every scan of its code stored (compared by id with
 * the database), once, in storage order. A connection the gateway closes (say 4408, its
 * connection_init read too late) is opened again a second later, as graphql-ws clients do,
 * and counted; catch-up times include it. The work is done by resume-load.ts, in a process
 * of its own.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { track } from './children';
import type { ResumeAnswer, ResumeParams, ResumeResult } from './resume-load';
import { ms, num, type RowResult } from './report';
import { databaseWithCodes, inRowDirectory, QUICK, withGateway, type BenchContext } from './rows';
import { benchRef } from './seed';

interface ResumeScale {
  subscribers: number;
  refs: number;
  rate: number;
  beforeMs: number;
  outageMs: number;
  afterMs: number;
}

const FULL_RESUME: ResumeScale = { subscribers: 1_000, refs: 50, rate: 200, beforeMs: 10_000, outageMs: 30_000, afterMs: 10_000 };
const QUICK_RESUME: ResumeScale = { subscribers: 200, refs: 50, rate: 200, beforeMs: 2_000, outageMs: 3_000, afterMs: 3_000 };

const TARGET_P99_MS = 5_000;

function runResumeLoad(params: ResumeParams): Promise<ResumeResult> {
  const child = track(
    fork(join(__dirname, 'resume-load.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: ['--max-old-space-size=4096'],
    }),
  );
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new Error(`the resume load process exited (${code ?? signal}) without an answer`));
    child.once('exit', onExit);
    child.once('message', (answer: ResumeAnswer) => {
      child.off('exit', onExit);
      if (answer.ok) resolve(answer.result);
      else reject(new Error(`resume load process: ${answer.error}`));
    });
    child.send(params);
  });
}

function closeCodes(result: ResumeResult): string {
  return Object.entries(result.closeCodes)
    .map(([code, count]) => `${count} × ${code}`)
    .join(', ');
}

export async function resumeAfterOutage(context: BenchContext): Promise<RowResult> {
  const scale = context.scale === QUICK ? QUICK_RESUME : FULL_RESUME;
  return inRowDirectory(context, 'row17', async (directory) => {
    const path = await databaseWithCodes(context, directory, scale.refs);
    const measured = await withGateway(context, 'row17', path, async (gateway) => {
      const cpu = gateway.cpuMeter();
      const result = await runResumeLoad({
        baseUrl: gateway.url,
        databasePath: path,
        appSecret: context.appSecret,
        pageId: context.pageId,
        refs: Array.from({ length: scale.refs }, (_, k) => benchRef(k)),
        subscribers: scale.subscribers,
        rate: scale.rate,
        beforeMs: scale.beforeMs,
        outageMs: scale.outageMs,
        afterMs: scale.afterMs,
      });
      return { result, gatewayCpu: cpu() };
    });
    const { result } = measured;
    context.log(
      `row 17: ${num(result.scansSent, 0)} scans sent (${num(result.achievedRate)}/s), ${num(result.storedDuringOutage, 0)} stored during the outage; ` +
        `catch-up p50 ${ms(result.catchUp.p50)}, p99 ${ms(result.catchUp.p99)}, max ${ms(result.catchUp.max)} over ${num(result.catchUp.count, 0)} subscribers ` +
        `(${num(result.catchUpScansMedian, 0)} scans each); connected p99 ${ms(result.connected.p99)}; lost ${result.lost}, duplicates ${result.duplicates}, ` +
        `out of order ${result.outOfOrder}, ${result.reconnects} reconnections (CPU: gateway ${num(measured.gatewayCpu, 2)}, load ${num(result.loadCpu, 2)} cores)`,
    );
    const intact = result.lost === 0 && result.duplicates === 0 && result.unexpected === 0 && result.outOfOrder === 0;
    const everyoneCaughtUp = result.catchUp.count === result.subscribers;
    const problems = [
      result.webhookFailures > 0 ? `${num(result.webhookFailures, 0)} webhooks failed; first: ${result.firstWebhookFailure ?? '?'}` : '',
      result.clientFailures > 0 ? `${num(result.clientFailures, 0)} subscriber failures; first: ${result.firstClientFailure ?? '?'}` : '',
    ].filter((text) => text !== '');
    return {
      row: 17,
      what:
        `${num(scale.subscribers, 0)} graphql-ws subscribers (${scale.refs} codes, SQLite) resuming at once with after: ` +
        `after a ${scale.outageMs / 1000} s outage, ${scale.rate} scans/s throughout`,
      measured:
        `catch-up p50 ${ms(result.catchUp.p50)} / p99 ${ms(result.catchUp.p99)} / max ${ms(result.catchUp.max)} ` +
        `(${num(result.catchUpScansMedian, 0)} scans each, ${num(result.storedDuringOutage, 0)} stored in the outage); ` +
        `lost ${num(result.lost, 0)}, duplicated ${num(result.duplicates, 0)}, out of order ${num(result.outOfOrder, 0)} of ${num(result.expectedDeliveries, 0)}` +
        (result.reconnects > 0
          ? `; ${num(result.reconnects, 0)} connections closed by the gateway and retried (${closeCodes(result)})`
          : ''),
      floor: `the reconnection alone (socket to connection_ack): p50 ${ms(result.connected.p50)} / p99 ${ms(result.connected.p99)}`,
      target: `p99 < ${TARGET_P99_MS / 1000} s, none lost or duplicated`,
      met: result.catchUp.p99 < TARGET_P99_MS && intact && everyoneCaughtUp,
      data: { ...result, gatewayCpu: measured.gatewayCpu, scale },
      ...(problems.length > 0 ? { error: problems.join('; ') } : {}),
    };
  });
}
