/**
 * Webhook bodies in the shapes Messenger really sends (from Meta's Messenger Platform
 * reference: messages, messaging_referrals, messaging_postbacks, message_deliveries,
 * message_reads, message_echoes, message_reactions, messaging_optins, standby, handover),
 * and a seeded, deterministic mutator that turns them into the malformed bodies a fuzzer
 * would: missing fields, wrong types, huge and negative numbers, NUL in strings, nested
 * garbage, ids as JSON numbers, timestamps in seconds, broken bytes.
 */
import { Prng } from './prng';

/** A JSON token written as is: numbers beyond a double (ids, 1e400, -0) that JSON.stringify cannot write. */
export class RawJson {
  constructor(readonly text: string) {}
}

export type Json = null | boolean | number | string | RawJson | Json[] | { [key: string]: Json };

/**
 * JSON text as Meta writes it when `metaEscaping`: `/` as `\/`, every non-ASCII UTF-16 unit
 * as \uXXXX (an emoji as its surrogate pair, é as \u00e9); RawJson tokens verbatim.
 */
export function toJsonText(value: Json, metaEscaping: boolean): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map((item) => toJsonText(item, metaEscaping)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, item]) => `${toJsonText(key, metaEscaping)}:${toJsonText(item, metaEscaping)}`)
      .join(',')}}`;
  }
  const text = JSON.stringify(value);
  if (!metaEscaping || typeof value !== 'string') return text;
  return text.replace(/\//g, '\\/').replace(/[\u007f-\uffff]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What each generated body needs to be unique: fresh senders and times, so only deliberate repeats are duplicates. */
export interface Identity {
  pageId: string;
  psid(): string;
  time(): number;
}

type Item = { [key: string]: Json };

const REFS = ['poster-a', 'flyer', 'caf\u00e9 \u{1F600}', 'https://example.com/a/b?c=d', 'orphan-ref', ''];
const TEXTS = [
  'hi',
  'caf\u00e9 cr\u00e8me',
  'emoji \u{1F44D}\u{1F3FD} \u2764\uFE0F',
  'slash a/b\\c',
  '\u05e9\u05dc\u05d5\u05dd \u4f60\u597d',
  'line\nbreak "quoted"',
];

const base = (id: Identity): Item => ({ sender: { id: id.psid() }, recipient: { id: id.pageId }, timestamp: id.time() });

/** The messaging items of the corpus, by kind: three are scans, the rest are not. */
const ITEMS: Record<string, (id: Identity, rng: Prng) => Item> = {
  referral: (id, rng) => ({
    ...base(id),
    referral: { ref: rng.pick(REFS), source: 'SHORTLINK', type: 'OPEN_THREAD' },
  }),
  postbackWithReferral: (id, rng) => ({
    ...base(id),
    postback: {
      title: 'Get Started',
      payload: 'GET_STARTED',
      mid: `m_${id.psid()}`,
      referral: { ref: rng.pick(REFS), source: 'SHORTLINK', type: 'OPEN_THREAD' },
    },
  }),
  messageWithReferral: (id, rng) => ({
    ...base(id),
    message: {
      mid: `m_${id.psid()}`,
      text: rng.pick(TEXTS),
      referral: {
        ref: rng.pick(REFS),
        source: 'ADS',
        type: 'OPEN_THREAD',
        ad_id: '6045246247433',
        ads_context_data: { ad_title: 'Caf\u00e9', photo_url: 'https://scontent.xx.fbcdn.net/v/t1/p.jpg' },
      },
    },
  }),
  message: (id, rng) => ({ ...base(id), message: { mid: `m_${id.psid()}`, text: rng.pick(TEXTS), quick_reply: { payload: 'YES' } } }),
  attachment: (id) => ({
    ...base(id),
    message: {
      mid: `m_${id.psid()}`,
      attachments: [{ type: 'image', payload: { url: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/a.png?_nc_cat=1&oh=00' } }],
    },
  }),
  echo: (id, rng) => ({
    ...base(id),
    message: { is_echo: true, app_id: 1517776481860111, metadata: 'x', mid: `m_${id.psid()}`, text: rng.pick(TEXTS) },
  }),
  postback: (id) => ({ ...base(id), postback: { title: 'Menu', payload: 'MENU', mid: `m_${id.psid()}` } }),
  delivery: (id) => ({
    sender: { id: id.psid() },
    recipient: { id: id.pageId },
    delivery: { mids: [`m_${id.psid()}`], watermark: id.time() },
  }),
  read: (id) => ({ ...base(id), read: { watermark: id.time() } }),
  reaction: (id) => ({ ...base(id), reaction: { reaction: 'love', emoji: '\u2764\uFE0F', action: 'react', mid: `m_${id.psid()}` } }),
  optin: (id, rng) => ({
    sender: { user_ref: `ur_${id.psid()}` },
    recipient: { id: id.pageId },
    timestamp: id.time(),
    optin: rng.chance(0.5)
      ? ({ ref: 'checkbox', user_ref: 'ur' } as Item)
      : { type: 'notification_messages', payload: 'p', notification_messages_token: 't' },
  }),
  handover: (id) => ({
    sender: { id: id.psid() },
    recipient: { id: id.pageId },
    timestamp: id.time(),
    pass_thread_control: { new_owner_app_id: '123456789', metadata: 'm' },
  }),
};
const KINDS = Object.keys(ITEMS);

/** A valid body: 1–3 entries (batched), each with 1–4 items in `messaging` or in `standby`. */
export function validBody(id: Identity, rng: Prng): { [key: string]: Json } {
  const entries = Array.from({ length: 1 + rng.int(3) }, () => {
    const items = Array.from({ length: 1 + rng.int(4) }, () => ITEMS[rng.pick(KINDS)](id, rng));
    return { id: id.pageId, time: id.time(), [rng.chance(0.25) ? 'standby' : 'messaging']: items };
  });
  return { object: 'page', entry: entries };
}

function nestedGarbage(rng: Prng, depth: number): Json {
  if (depth <= 0) return rng.pick<Json>([1, 'x', null, true, new RawJson('1e400')]);
  return rng.chance(0.5)
    ? [nestedGarbage(rng, depth - 1)]
    : { [rng.pick(['a', 'referral', 'ref', 'id', '__proto__'])]: nestedGarbage(rng, depth - 1) };
}

function garbage(rng: Prng): Json {
  const choices: (() => Json)[] = [
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1.5,
    () => '',
    () => '\u0000',
    () => `a\u0000b`,
    () => 'x'.repeat(3000),
    () => '\ud800',
    () => '\u{1F600}'.repeat(700),
    () => 'NaN',
    () => new RawJson('1e400'),
    () => new RawJson('-1e400'),
    () => new RawJson('9'.repeat(400)),
    () => new RawJson(`-${'9'.repeat(30)}`),
    () => new RawJson('12345678901234567890'),
    () => new RawJson('-0'),
    () => new RawJson('1458692752'),
    () => new RawJson('1458692752.5'),
    () => new RawJson('1E3'),
    () => [],
    () => ({}),
    () => nestedGarbage(rng, 1 + rng.int(60)),
    // Thousands deep: recursive parsers overflow their stack on these.
    () => {
      const depth = 2000 + rng.int(3000);
      return rng.chance(0.5)
        ? new RawJson(`${'['.repeat(depth)}${']'.repeat(depth)}`)
        : new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
    },
  ];
  return rng.pick(choices)();
}

/** Every container (object or array) of a JSON value, with the keys it holds. */
function containers(value: Json, found: (Json[] | { [key: string]: Json })[] = []): (Json[] | { [key: string]: Json })[] {
  if (value instanceof RawJson || value === null || typeof value !== 'object') return found;
  found.push(value);
  for (const item of Array.isArray(value) ? value : Object.values(value)) containers(item, found);
  return found;
}

/** Applies one mutation somewhere in `body` (in place). */
function mutate(body: { [key: string]: Json }, rng: Prng, id: Identity): void {
  const all = containers(body);
  const target = rng.pick(all);
  const keys = Array.isArray(target) ? target.map((_, index) => index) : Object.keys(target);
  if (keys.length === 0) return;
  const key = rng.pick<string | number>(keys);
  const get = () => (target as Record<string | number, Json>)[key];
  const set = (value: Json) => ((target as Record<string | number, Json>)[key] = value);
  const value = get();
  switch (rng.int(9)) {
    case 0: // a missing field (or an array element gone)
      if (Array.isArray(target)) target.splice(key as number, 1);
      else delete target[key as string];
      return;
    case 1:
    case 2: // a wrong type or an absurd value
      set(garbage(rng));
      return;
    case 3: // numbers as strings, digit strings as numbers (ids as JSON numbers)
      if (typeof value === 'number') set(String(value));
      else if (typeof value === 'string' && /^\d+$/.test(value)) set(new RawJson(value));
      else set(garbage(rng));
      return;
    case 4: // timestamps in seconds, or fractional
      if (typeof value === 'number') set(rng.chance(0.5) ? Math.floor(value / 1000) : value / 1000);
      else set(id.time());
      return;
    case 5: // NUL inside a string
      set(typeof value === 'string' ? `${value.slice(0, 2)}\u0000${value.slice(2)}` : '\u0000');
      return;
    case 6: // the same item twice in one body (a duplicate within one delivery)
      if (Array.isArray(target)) target.push(structuredCopy(value));
      else set(garbage(rng));
      return;
    case 7: // one more batched entry, a copy of one with its own id
      if (Array.isArray(body.entry) && body.entry.length > 0) body.entry.push(structuredCopy(rng.pick(body.entry)));
      return;
    default: // messaging as an object, an item as an array: containers of the wrong kind
      set(Array.isArray(value) ? { ...value } : [value]);
  }
}

function structuredCopy(value: Json): Json {
  if (value instanceof RawJson || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(structuredCopy);
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, structuredCopy(item)]));
}

/** Byte-level damage: what a broken proxy or a truncated body would deliver, still signed. */
function damageBytes(text: string, rng: Prng): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  switch (rng.int(4)) {
    case 0:
      return bytes.subarray(0, rng.int(bytes.length));
    case 1: {
      const copy = Buffer.from(bytes);
      copy[rng.int(copy.length)] = rng.pick([0x00, 0xff, 0xc3, 0x22, 0x5c, 0x7b]);
      return copy;
    }
    case 2:
      return Buffer.concat([bytes, Buffer.from(rng.pick([',', ']', '\u0000', ' \n', '{}']))]);
    default:
      return Buffer.from(text.replace(/"time":\d+/, `"time":${'1'.repeat(40)}`), 'utf8');
  }
}

/** One generated webhook: the bytes to sign and post. */
export interface GeneratedWebhook {
  bytes: Buffer;
  /** how it was made, for the message of a failing test */
  recipe: string;
  /** for a body left valid: the scans it carries (every item with a referral), each new */
  scans?: number;
}

/** Ids written as JSON numbers, as some clients and proxies do (in place). */
function idsAsNumbers(value: Json): void {
  if (value instanceof RawJson || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) return value.forEach(idsAsNumbers);
  for (const [key, item] of Object.entries(value)) {
    if (key === 'id' && typeof item === 'string' && /^[1-9]\d*$/.test(item)) value[key] = new RawJson(item);
    else idsAsNumbers(item);
  }
}

/** The items of a valid corpus body that are scans. */
function scansOf(body: { [key: string]: Json }): number {
  const isScan = (item: Json) => {
    const object = item as { [key: string]: { [key: string]: Json } };
    return object.referral !== undefined || object.postback?.referral !== undefined || object.message?.referral !== undefined;
  };
  return (body.entry as { [key: string]: Json[] }[]).reduce(
    (sum, entry) => sum + [...(entry.messaging ?? []), ...(entry.standby ?? [])].filter(isScan).length,
    0,
  );
}

/**
 * The `index`-th body of the run seeded `seed`: a valid corpus body, most of the time
 * mutated 1–3 times, serialized as Meta does (or plainly), sometimes damaged byte-wise.
 */
export function generateWebhook(seed: number, index: number, id: Identity): GeneratedWebhook {
  const rng = new Prng(seed * 1_000_003 + index);
  const body = validBody(id, rng);
  const mutations = rng.chance(0.2) ? 0 : 1 + rng.int(3);
  for (let n = 0; n < mutations; n++) mutate(body, rng, id);
  const scans = mutations === 0 ? scansOf(body) : undefined;
  const numericIds = rng.chance(0.2);
  if (numericIds) idsAsNumbers(body);
  const meta = rng.chance(0.8);
  let text = toJsonText(body, meta);
  // A key given twice is still JSON (the last one wins); an object cannot hold it, the text can.
  const repeated = rng.chance(0.1);
  if (repeated)
    text = text.replace(/"(ref|timestamp|id)":/, (key) => `${key}${rng.pick(['0', '"dup"', 'null', '12345678901234567890'])},${key}`);
  const damaged = rng.chance(0.1);
  return {
    bytes: damaged ? damageBytes(text, rng) : Buffer.from(text, 'utf8'),
    recipe: `seed ${seed}, body ${index}: ${mutations} mutations${numericIds ? ', ids as numbers' : ''}, ${meta ? 'Meta escaping' : 'plain JSON'}${repeated ? ', a repeated key' : ''}${damaged ? ', damaged bytes' : ''}`,
    ...(scans !== undefined && !damaged ? { scans } : {}),
  };
}

/**
 * The items a page webhook carries, counted the way Meta means them: every element of
 * `messaging` and `standby` of every entry that is an object. Undefined when the body is
 * not JSON or not a page webhook at all (the gateway refuses those whole, with a 400).
 */
export function itemsOf(bytes: Buffer): number | undefined {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject(body) || body.object !== 'page' || !Array.isArray(body.entry)) return undefined;
  let items = 0;
  for (const entry of body.entry) {
    if (!isObject(entry)) continue;
    for (const list of [entry.messaging, entry.standby]) if (Array.isArray(list)) items += list.length;
  }
  return items;
}
