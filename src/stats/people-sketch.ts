/**
 * Distinct people in a rollup bucket, mergeable and serialisable: the exact set of the
 * people's 48-bit hashes while it holds at most EXACT_LIMIT of them, then a HyperLogLog
 * of 2^14 registers (standard error 1.04/√16384 = 0.81 %, so 2 % is 2.5 standard
 * errors) read with Ertl's improved estimator ("New cardinality estimation algorithms for
 * HyperLogLog sketches", 2017), which needs no empirical bias tables. A union of exact sets
 * of at most EXACT_LIMIT people is exact; anything larger is estimated.
 *
 * Not a library: the HyperLogLog packages on npm (bloom-filters, hyperloglog-lite) have no
 * exact phase, which the contract requires up to 10,000 people, and estimate with the
 * original formula, biased between 2.5 and 5 × the registers. This file is small and tested
 * (test/unit/people-sketch.test.ts).
 */

/** Sets up to this many people stay exact (10,000: the contract's exactness bound). */
export const EXACT_LIMIT = 10_000;
/** log2 of the number of registers */
const PRECISION = 14;
const REGISTERS = 1 << PRECISION;
/** Bits of the person hash: PRECISION choose the register, the rest give its value. */
const HASH_BITS = 48;
const VALUE_BITS = HASH_BITS - PRECISION;
/** Bytes of one hash in the exact encoding. */
const HASH_BYTES = 6;

const EXACT = 1;
const DENSE = 2;

/**
 * The 48-bit hash of a person: a mix of every character of the stored sender hash. The
 * gateway's sender hashes are already HMACs, but data seeded or migrated from elsewhere
 * need not be uniform, and HyperLogLog depends on uniform hashes.
 */
export function personHash(senderHash: string): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let index = 0; index < senderHash.length; index += 1) {
    const c = senderHash.charCodeAt(index);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  a = fmix32(a ^ senderHash.length);
  b = fmix32(b + a);
  a = fmix32(a + b);
  return (a >>> 0) * 0x10000 + (b >>> 16);
}

/** MurmurHash3's finaliser: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The register of a hash and its value (1 + leading zeros of the remaining VALUE_BITS bits). */
function registerOf(hash: number): [index: number, value: number] {
  const high = Math.floor(hash / 2 ** VALUE_BITS);
  const rest = hash - high * 2 ** VALUE_BITS; // < 2^34
  const top = Math.floor(rest / 2 ** 32); // 2 bits
  const low = rest >>> 0;
  let zeros: number;
  if (top !== 0) zeros = Math.clz32(top) - 30;
  else if (low !== 0) zeros = 2 + Math.clz32(low);
  else zeros = VALUE_BITS;
  return [high, zeros + 1];
}

/** Writes a hash at `offset` in the exact encoding: 6 bytes, little-endian. */
function writeHash(bytes: Uint8Array, offset: number, hash: number): void {
  // Split at 32 bits (ToUint32 keeps the low ones): integer operations, where % and / by 2^24 were floating point.
  const low = hash >>> 0;
  const high = (hash - low) / 0x100000000;
  bytes[offset] = low & 0xff;
  bytes[offset + 1] = (low >>> 8) & 0xff;
  bytes[offset + 2] = (low >>> 16) & 0xff;
  bytes[offset + 3] = low >>> 24;
  bytes[offset + 4] = high & 0xff;
  bytes[offset + 5] = high >>> 8;
}

/** The hash written at `offset` by writeHash. */
function readHash(bytes: Uint8Array, offset: number): number {
  const low = bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16);
  const high = bytes[offset + 3] | (bytes[offset + 4] << 8) | (bytes[offset + 5] << 16);
  return high * 0x1000000 + low;
}

/** The sorted union of two sorted sets of hashes. */
function union(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length && j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x < y) {
      out[n++] = x;
      i += 1;
    } else if (y < x) {
      out[n++] = y;
      j += 1;
    } else {
      out[n++] = x;
      i += 1;
      j += 1;
    }
  }
  while (i < a.length) out[n++] = a[i++];
  while (j < b.length) out[n++] = b[j++];
  return n === out.length ? out : out.slice(0, n);
}

const NOBODY = new Float64Array(0);
/** addSerialized's copy of the registers it merges (word-aligned, reused: merging is synchronous). */
const SCRATCH = new Uint8Array(REGISTERS);

export class PeopleSketch {
  /** exact: the sorted, distinct hashes; undefined once dense */
  private sorted: Float64Array | undefined = NOBODY;
  /** exact: hashes added since `sorted` was last brought up to date (sorting once is cheaper than a set) */
  private pending: number[] = [];
  private registers: Uint8Array | undefined;
  /** estimate()'s answer until people are added (estimating reads every register) */
  private estimated: number | undefined;

  static fromHashes(hashes: Iterable<number>): PeopleSketch {
    const sketch = new PeopleSketch();
    for (const hash of hashes) sketch.add(hash);
    return sketch;
  }

  get isExact(): boolean {
    this.settle();
    return this.sorted !== undefined;
  }

  /** Adds one person by hash (personHash). */
  add(hash: number): void {
    this.estimated = undefined;
    if (this.sorted) {
      this.pending.push(hash);
      // Settled by batches larger than the limit: a sort per batch, never per addition.
      if (this.pending.length > EXACT_LIMIT) this.settle();
      return;
    }
    const [index, value] = registerOf(hash);
    const registers = this.registers as Uint8Array;
    if (registers[index] < value) registers[index] = value;
  }

  /** Adds everyone of `other` (this becomes the sketch of the union); answers whether this sketch changed. */
  merge(other: PeopleSketch): boolean {
    this.estimated = undefined;
    this.settle();
    other.settle();
    if (other.sorted) {
      if (other.sorted.length === 0) return false;
      if (this.sorted) {
        const before = this.sorted.length;
        this.setExact(this.sorted.length === 0 ? other.sorted : union(this.sorted, other.sorted));
        return this.sorted === undefined || this.sorted.length !== before;
      }
      let changed = false;
      const registers = this.registers as Uint8Array;
      for (const hash of other.sorted) {
        const [index, value] = registerOf(hash);
        if (registers[index] < value) {
          registers[index] = value;
          changed = true;
        }
      }
      return changed;
    }
    let changed = false;
    if (this.sorted) {
      changed = true;
      this.toDense(this.sorted);
    }
    return maxInto(this.registers as Uint8Array, other.registers as Uint8Array) || changed;
  }

  /**
   * Adds everyone of `other`, like merge, but without telling whether this changed: an
   * exact `other` is queued as additions (sorted once, later), so that folding many small
   * sketches into a large one costs their sizes, not a union over the large one each time.
   */
  addAll(other: PeopleSketch): void {
    other.settle();
    if (!other.sorted) {
      this.merge(other);
      return;
    }
    if (this.sorted?.length === 0 && this.pending.length === 0) {
      // Nobody here yet: the union is `other`'s sorted hashes, shared as merge shares them (never changed in place).
      this.estimated = undefined;
      this.sorted = other.sorted;
      return;
    }
    for (let index = 0; index < other.sorted.length; index += 1) this.add(other.sorted[index]);
  }

  /**
   * addAll of the sketch `serialize` wrote, without making it: a dense one into a dense
   * sketch is merged through one reused aligned copy (the statistics fold a few hundred of
   * them per query, and an array of its own for each was most of the cost).
   */
  addSerialized(bytes: Uint8Array | null | undefined): void {
    this.estimated = undefined;
    if (this.registers && bytes && bytes[0] === DENSE && bytes.length === 1 + REGISTERS) {
      SCRATCH.set(bytes.subarray(1));
      maxInto(this.registers, SCRATCH);
      return;
    }
    this.addAll(PeopleSketch.deserialize(bytes));
  }

  /** A sketch of the same people that changes independently of this one. */
  copy(): PeopleSketch {
    this.settle();
    const copy = new PeopleSketch();
    copy.sorted = this.sorted?.slice();
    if (this.registers) copy.registers = this.registers.slice();
    copy.estimated = this.estimated;
    return copy;
  }

  /** Bytes this sketch holds (its registers or its hashes), to bound caches of sketches. */
  get byteSize(): number {
    this.settle();
    return this.registers ? this.registers.byteLength : (this.sorted as Float64Array).byteLength;
  }

  /** The number of distinct people: exact while exact, else the HyperLogLog estimate. */
  estimate(): number {
    this.settle();
    if (this.sorted) return this.sorted.length;
    this.estimated ??= Math.round(ertlEstimate(this.registers as Uint8Array));
    return this.estimated;
  }

  /** Byte 0: the encoding; exact: the sorted hashes, 6 bytes each (little-endian); dense: one byte per register. */
  serialize(): Buffer {
    this.settle();
    if (this.sorted) {
      const hashes = this.sorted;
      const bytes = Buffer.allocUnsafe(1 + hashes.length * HASH_BYTES);
      bytes[0] = EXACT;
      for (let index = 0, offset = 1; index < hashes.length; index += 1, offset += HASH_BYTES) writeHash(bytes, offset, hashes[index]);
      return bytes;
    }
    const bytes = Buffer.allocUnsafe(1 + REGISTERS);
    bytes[0] = DENSE;
    bytes.set(this.registers as Uint8Array, 1);
    return bytes;
  }

  static deserialize(bytes: Uint8Array | null | undefined): PeopleSketch {
    const sketch = new PeopleSketch();
    if (!bytes || bytes.length === 0) return sketch;
    if (bytes[0] === EXACT) {
      const hashes = new Float64Array(Math.floor((bytes.length - 1) / HASH_BYTES));
      for (let index = 0, offset = 1; index < hashes.length; index += 1, offset += HASH_BYTES) hashes[index] = readHash(bytes, offset);
      sketch.sorted = hashes;
      return sketch;
    }
    if (bytes[0] === DENSE && bytes.length === 1 + REGISTERS) {
      sketch.sorted = undefined;
      // Copied into an array of its own: aligned for maxInto's word view (the bytes are at an odd offset).
      const registers = new Uint8Array(REGISTERS);
      registers.set(bytes.subarray(1));
      sketch.registers = registers;
      return sketch;
    }
    throw new Error(`unknown people sketch encoding ${bytes[0]} (${bytes.length} bytes)`);
  }

  /** Sorts the pending hashes into `sorted` (dense beyond EXACT_LIMIT). */
  private settle(): void {
    if (!this.sorted || this.pending.length === 0) return;
    // The constructor copies a plain array directly; from() goes through its iterator.
    const added = new Float64Array(this.pending).sort();
    this.pending = [];
    let n = 0;
    for (let index = 0; index < added.length; index += 1) if (n === 0 || added[index] !== added[n - 1]) added[n++] = added[index];
    const fresh = added.subarray(0, n);
    if (this.sorted.length > 0) this.setExact(union(this.sorted, fresh));
    // `added` is this sketch's own: kept as it is when nothing repeated, else copied to its length.
    else this.setExact(n === added.length ? added : fresh.slice());
  }

  private setExact(hashes: Float64Array): void {
    if (hashes.length > EXACT_LIMIT) this.toDense(hashes);
    else this.sorted = hashes;
  }

  private toDense(hashes: Float64Array): void {
    const registers = new Uint8Array(REGISTERS);
    for (const hash of hashes) {
      const [index, value] = registerOf(hash);
      if (registers[index] < value) registers[index] = value;
    }
    this.sorted = undefined;
    this.pending = [];
    this.registers = registers;
  }
}

/**
 * mine[i] = max(mine[i], theirs[i]) for every register, four at a time (the statistics
 * merge a few hundred dense sketches per query); answers whether any register rose.
 * Register values are below 128, so in (x | 0x80808080) - y no byte borrows from the
 * next, and each byte's high bit tells whether x's byte is at least y's.
 */
function maxInto(mine: Uint8Array, theirs: Uint8Array): boolean {
  if (mine.byteOffset % 4 !== 0 || theirs.byteOffset % 4 !== 0) {
    let rose = false;
    for (let index = 0; index < REGISTERS; index += 1) {
      if (theirs[index] > mine[index]) {
        mine[index] = theirs[index];
        rose = true;
      }
    }
    return rose;
  }
  const a = new Uint32Array(mine.buffer, mine.byteOffset, REGISTERS / 4);
  const b = new Uint32Array(theirs.buffer, theirs.byteOffset, REGISTERS / 4);
  let rose = 0;
  for (let index = 0; index < a.length; index += 1) {
    const x = a[index];
    const y = b[index];
    const atLeast = ((x | 0x80808080) - y) & 0x80808080;
    const keep = (atLeast >>> 7) * 0xff;
    const max = (x & keep) | (y & ~keep);
    rose |= max ^ x;
    a[index] = max;
  }
  return rose !== 0;
}

/** Ertl's improved estimator over the register values 0..VALUE_BITS + 1. */
function ertlEstimate(registers: Uint8Array): number {
  const counts = new Array<number>(VALUE_BITS + 2).fill(0);
  for (let index = 0; index < REGISTERS; index += 1) counts[registers[index]] += 1;
  const m = REGISTERS;
  let z = m * tau(1 - counts[VALUE_BITS + 1] / m);
  for (let k = VALUE_BITS; k >= 1; k -= 1) z = 0.5 * (z + counts[k]);
  z += m * sigma(counts[0] / m);
  return (m * m) / (2 * Math.LN2 * z);
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  let previous: number;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (z !== previous);
  return z;
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let previous: number;
  do {
    x = Math.sqrt(x);
    previous = z;
    y *= 0.5;
    z -= (1 - x) ** 2 * y;
  } while (z !== previous);
  return z / 3;
}
