import { buildSchema, parse, type ExecutionResult } from 'graphql';
import { subscribeSharingResults } from '../../src/graphql/shared-subscription-execution';

/**
 * Subscribers that get the same event object share its execution when nothing that could
 * change the result differs between them. Counted here by the executions of a field resolver.
 */
const SDL = `
  type Tick { id: ID!, label(prefix: String): String! }
  type Query { unused: Int }
  type Subscription { ticks(after: String, channel: String): Tick! }
`;

interface Tick {
  id: string;
}

function setUp() {
  const schema = buildSchema(SDL);
  const events = [{ ticks: { id: 't1' } }, { ticks: { id: 't2' } }];
  const ticks = schema.getSubscriptionType()?.getFields().ticks;
  if (!ticks) throw new Error('no ticks field');
  // The same event objects to every subscriber, whatever its arguments, as the scan feed does.
  ticks.subscribe = async function* () {
    yield* events;
  };
  ticks.resolve = (event) => (event as { ticks: Tick }).ticks;
  let executions = 0;
  const tick = schema.getType('Tick') as unknown as { getFields(): Record<string, { resolve?: unknown }> };
  tick.getFields().label.resolve = (source: Tick, args: { prefix?: string | null }) => {
    executions += 1;
    return `${args.prefix ?? ''}${source.id}`;
  };
  return { schema, executions: () => executions };
}

async function collect(
  subscribe: ReturnType<typeof subscribeSharingResults>,
  schema: ReturnType<typeof buildSchema>,
  query: string,
  variableSets: Record<string, unknown>[],
): Promise<ExecutionResult[][]> {
  const document = parse(query);
  const streams = [];
  for (const variableValues of variableSets) {
    const stream = await subscribe({ schema, document, variableValues });
    if (!(Symbol.asyncIterator in stream)) throw new Error(JSON.stringify(stream));
    streams.push(stream[Symbol.asyncIterator]());
  }
  const results: ExecutionResult[][] = streams.map(() => []);
  for (let event = 0; event < 2; event += 1) {
    for (const [index, stream] of streams.entries()) results[index].push((await stream.next()).value as ExecutionResult);
  }
  return results;
}

const QUERY = 'subscription ($after: String, $channel: String) { ticks(after: $after, channel: $channel) { id label } }';

describe('subscribeSharingResults', () => {
  it('shares one execution per event between subscribers of the same operation and variables', async () => {
    const { schema, executions } = setUp();
    const results = await collect(subscribeSharingResults(), schema, QUERY, [{ after: 'x' }, { after: 'x' }]);
    expect(results[0]).toEqual(results[1]);
    expect(executions()).toBe(2);
  });

  it('executes per subscriber when variables differ and the field is not declared event-choosing', async () => {
    const { schema, executions } = setUp();
    await collect(subscribeSharingResults(), schema, QUERY, [{ after: 'x' }, { after: 'y' }]);
    expect(executions()).toBe(4);
  });

  it('shares across variables used only in the arguments of an event-choosing field', async () => {
    const { schema, executions } = setUp();
    const results = await collect(subscribeSharingResults(new Set(['ticks'])), schema, QUERY, [
      { after: 'x', channel: 'a' },
      { after: 'y', channel: 'b' },
      {},
    ]);
    expect(results[0]).toEqual([{ data: { ticks: { id: 't1', label: 't1' } } }, { data: { ticks: { id: 't2', label: 't2' } } }]);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(executions()).toBe(2);
  });

  it('does not share when such a variable is also used where it shapes the result', async () => {
    const { schema, executions } = setUp();
    const query = 'subscription ($after: String) { ticks(after: $after) { id label(prefix: $after) } }';
    const results = await collect(subscribeSharingResults(new Set(['ticks'])), schema, query, [{ after: 'x' }, { after: 'y' }]);
    expect(results[0][0]).toEqual({ data: { ticks: { id: 't1', label: 'xt1' } } });
    expect(results[1][0]).toEqual({ data: { ticks: { id: 't1', label: 'yt1' } } });
    expect(executions()).toBe(4);
  });

  it('does not share when the variable shapes the result through a fragment', async () => {
    const { schema, executions } = setUp();
    const query = `subscription ($after: String) { ticks(after: $after) { ...labelled } }
      fragment labelled on Tick { id label(prefix: $after) }`;
    const results = await collect(subscribeSharingResults(new Set(['ticks'])), schema, query, [{ after: 'x' }, { after: 'y' }]);
    expect(results[1][1]).toEqual({ data: { ticks: { id: 't2', label: 'yt2' } } });
    expect(executions()).toBe(4);
  });
});
