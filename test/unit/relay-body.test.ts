import { createHmac } from 'node:crypto';
import { deliveriesOf, entryRanges, type RelayRequest } from '../../src/relay/relay-body';
import { retryDelayMs } from '../../src/relay/relay-worker';

const SECRET = 'unit-secret';
const sign = (algorithm: 'sha256' | 'sha1', body: Buffer | string) =>
  `${algorithm}=${createHmac(algorithm, SECRET).update(body).digest('hex')}`;

function requestOf(text: string, entryPageIds: (string | undefined)[], signature1?: string): RelayRequest {
  const raw = Buffer.from(text);
  return { raw, contentType: 'application/json', signature256: sign('sha256', raw), signature1, entryPageIds };
}

describe('entryRanges', () => {
  it('finds each element of entry, as written, whatever its strings, nesting and spacing hold', () => {
    const entries = [
      '{"id":"1","messaging":[{"message":{"text":"a ] } [ { , \\" \\\\"}}]}',
      '{ "id" : 2 , "x" : [ [ 1 , 2 ] , { } ] }',
      '"not an object"',
      '12345678901234567890',
      'null',
    ];
    const text = ` { "object" : "page" ,\n "entry" : [ ${entries.join(' ,\n ')} ] , "after": {"entry": []} } `;
    const ranges = entryRanges(Buffer.from(text)) as [number, number][];
    expect(ranges.map(([start, end]) => text.slice(start, end))).toEqual(entries);
  });

  it('reads the last entry key, as JSON.parse does, and an empty array as no entries', () => {
    expect(entryRanges(Buffer.from('{"entry":[1],"entry":[2,3]}'))?.length).toBe(2);
    expect(entryRanges(Buffer.from('{"object":"page","entry":[]}'))).toEqual([]);
  });

  it('counts bytes, not characters, in multi-byte text', () => {
    const text = '{"object":"page","entry":[{"t":"é✓😀"},{"id":"2"}]}';
    const raw = Buffer.from(text);
    const ranges = entryRanges(raw) as [number, number][];
    expect(ranges.map(([start, end]) => raw.subarray(start, end).toString())).toEqual(['{"t":"é✓😀"}', '{"id":"2"}']);
  });

  it('is undefined for a body that is not an object with an entry array', () => {
    for (const text of ['[]', '{"entry":{}}', '{"object":"page"}', '{"entry":[1,2']) expect(entryRanges(Buffer.from(text))).toBeUndefined();
  });
});

describe('deliveriesOf', () => {
  const text = '{"object":"page","entry":[{"id":"1","x":"\\u00e9\\/"},{"id":"2"},{"id":"1","y":1},{"id":"3"}]}';
  const bots: Record<string, string> = { '1': 'https://one.example/hook', '2': 'https://two.example/hook' };

  it('forwards the request as received when every entry goes to one bot', () => {
    const request = requestOf(text, ['1', '1'], 'sha1=abc');
    expect(deliveriesOf(request, () => 'https://all.example/', SECRET)).toEqual([
      {
        url: 'https://all.example/',
        body: request.raw,
        contentType: 'application/json',
        signature256: request.signature256,
        signature1: 'sha1=abc',
      },
    ]);
  });

  it('splits per bot, each body of its entries as written, signed with the app secret; entries without a bot go nowhere', () => {
    const request = requestOf(text, ['1', '2', '1', '3'], 'sha1=original');
    const deliveries = deliveriesOf(request, (pageId) => (pageId === undefined ? undefined : bots[pageId]), SECRET);
    const one = '{"object":"page","entry":[{"id":"1","x":"\\u00e9\\/"},{"id":"1","y":1}]}';
    const two = '{"object":"page","entry":[{"id":"2"}]}';
    expect(deliveries.map((delivery) => [delivery.url, delivery.body.toString()])).toEqual([
      [bots['1'], one],
      [bots['2'], two],
    ]);
    expect(deliveries.map((delivery) => [delivery.signature256, delivery.signature1])).toEqual([
      [sign('sha256', one), sign('sha1', one)],
      [sign('sha256', two), sign('sha1', two)],
    ]);
  });

  it('relays nothing when no entry has a bot; an empty batch goes to the default bot', () => {
    expect(deliveriesOf(requestOf(text, ['3', '3', '3', '3']), () => undefined, SECRET)).toEqual([]);
    const empty = requestOf('{"object":"page","entry":[]}', []);
    expect(deliveriesOf(empty, (pageId) => (pageId === undefined ? 'https://default.example/' : undefined), SECRET)).toHaveLength(1);
  });
});

describe('retryDelayMs', () => {
  it('doubles from the base up to the maximum, drawn between half and all of it', () => {
    expect([1, 2, 3, 4, 10].map((attempt) => retryDelayMs(attempt, 1000, 5000, () => 1))).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect([1, 2, 3].map((attempt) => retryDelayMs(attempt, 1000, 5000, () => 0))).toEqual([500, 1000, 2000]);
    expect(retryDelayMs(10_000, 1000, 5000, () => 1)).toBe(5000);
  });
});
