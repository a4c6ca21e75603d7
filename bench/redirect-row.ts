/**
 * Row 12: GETs of a REDIRECT code's link (`/s/<slug>`: look the slug up, count the visit,
 * answer 302), beside a bare node:http server answering 302 to the same requests, in
 * alternating rounds. After the rounds the code's visitCount must equal the GETs answered.
 */
import { join } from 'node:path';
import { HttpFloorServer } from './http-floor';
import type { Workload } from './protocol';
import { num, type RowResult } from './report';
import {
  cpuNote,
  Failures,
  graphql,
  httpRound,
  inRowDirectory,
  medianOf,
  withGateway,
  type BenchContext,
  type MeasuredRound,
} from './rows';

const sleep = (milliseconds: number) => new Promise<void>((resolve) => setTimeout(resolve, milliseconds));

export async function redirects(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const failures = new Failures();
  const floorServer = await HttpFloorServer.start(context.appSecret);
  try {
    return await inRowDirectory(context, 'row12', (directory) =>
      withGateway(context, 'row12', join(directory, 'bench.sqlite'), async (gateway) => {
        const { generateCode } = await graphql<{ generateCode: { id: string; link: string } }>(
          gateway,
          `
            mutation {
              generateCode(input: { data: { ref: "bench-door" }, tracking: REDIRECT, imageSize: 300 }) {
                id
                link
              }
            }
          `,
        );
        const workload: Workload = { kind: 'redirect', path: new URL(generateCode.link).pathname };
        const floorTarget = {
          url: floorServer.url,
          cpuMeter: () => floorServer.cpuMeter(),
          assertRunning: () => floorServer.assertRunning(),
        };
        const clients = scale.listingClients;
        let answered = 0;
        const warm = await httpRound(context, gateway, workload, clients, scale.warmupMs);
        failures.add(warm);
        answered += warm.requests;
        failures.add(await httpRound(context, floorTarget, workload, clients, scale.warmupMs));
        const measured: MeasuredRound[] = [];
        const floor: MeasuredRound[] = [];
        for (let round = 1; round <= scale.rounds; round += 1) {
          const ours = await httpRound(context, gateway, workload, clients, scale.roundMs);
          failures.add(ours);
          answered += ours.requests;
          measured.push(ours);
          const bare = await httpRound(context, floorTarget, workload, clients, scale.roundMs);
          failures.add(bare);
          floor.push(bare);
          context.log(
            `row 12 round ${round}: redirect ${num(ours.perSecond)}/s ${cpuNote(ours)}, node:http 302 ${num(bare.perSecond)}/s ${cpuNote(bare)}`,
          );
        }
        // Visits are written once a second.
        await sleep(2_000);
        const { code } = await graphql<{ code: { visitCount: number } }>(
          gateway,
          `
            query ($id: ID!) {
              code(id: $id) {
                visitCount
              }
            }
          `,
          {
            id: generateCode.id,
          },
        );
        if (code.visitCount !== answered) throw new Error(`visitCount is ${code.visitCount}, ${answered} redirects were answered`);
        const ours = medianOf(measured);
        const bare = medianOf(floor);
        const ratio = ours.perSecond / bare.perSecond;
        return {
          row: 12,
          what: `GET of a REDIRECT link (302, visit counted), ${clients} clients`,
          measured: `${num(ours.perSecond)}/s (p99 ${num(ours.p99, 1)} ms); ${num(answered, 0)} visits counted, every one; ratio ${num(ratio, 2)}`,
          floor: `a bare node:http 302: ${num(bare.perSecond)}/s (p99 ${num(bare.p99, 1)} ms)`,
          target: 'ratio ≥ 0.5',
          met: ratio >= 0.5,
          data: { measured: { ...ours, rounds: measured }, floor: { ...bare, rounds: floor }, visits: answered, ratio },
          ...(failures.error ? { error: failures.error } : {}),
        };
      }),
    );
  } finally {
    floorServer.stop();
  }
}
