import { createHash } from 'node:crypto';
import { EXACT_LIMIT, fmix32, PeopleSketch, personHash } from '../../src/stats/people-sketch';

/**
 * The 48-bit hashes of people first..first+count-1, as personHash gives them (uniform),
 * made directly from the numbers: the sketch is under test here, and the suite stays fast.
 * personHash itself is tested on sender hashes below.
 */
function people(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, index) => {
    const person = first + index;
    return fmix32(person ^ 0x9e3779b9) * 0x10000 + (fmix32(person + 0x7f4a7c15) >>> 16);
  });
}

function relativeError(estimate: number, exact: number): number {
  return Math.abs(estimate - exact) / exact;
}

describe('PeopleSketch', () => {
  it('is exact at 100 and at 10,000 distinct people, repeats counted once', () => {
    for (const size of [100, EXACT_LIMIT]) {
      const hashes = people(0, size);
      const sketch = PeopleSketch.fromHashes([...hashes, ...hashes.slice(0, size / 2)]);
      expect(sketch.isExact).toBe(true);
      expect(sketch.estimate()).toBe(size);
    }
  });

  it('is within 2 % above 10,000 distinct people', () => {
    for (const size of [EXACT_LIMIT + 1, 20_000, 50_000, 200_000]) {
      const sketch = PeopleSketch.fromHashes(people(1_000_000, size));
      expect(sketch.isExact).toBe(false);
      expect(relativeError(sketch.estimate(), size)).toBeLessThan(0.02);
    }
  });

  it('hashes stored sender hashes (hex SHA-256) and short similar strings uniformly enough', () => {
    const count = 30_000;
    const hex = Array.from({ length: count }, (_, index) => createHash('sha256').update(`psid-${index}`).digest('hex'));
    const short = Array.from({ length: count }, (_, index) => `psid-${index}`);
    for (const senders of [hex, short]) {
      const hashes = senders.map(personHash);
      expect(new Set(hashes).size).toBe(count);
      expect(hashes.every((hash) => Number.isInteger(hash) && hash >= 0 && hash < 2 ** 48)).toBe(true);
      expect(relativeError(PeopleSketch.fromHashes(hashes).estimate(), count)).toBeLessThan(0.02);
    }
  });

  it('merged equals the sketch of the union, exact and dense alike', () => {
    const cases: [number, number][] = [
      // [people in each, overlap]
      [40, 20],
      [3_000, 1_000],
      [6_000, 500],
      [30_000, 10_000],
    ];
    for (const [count, overlap] of cases) {
      const a = people(0, count);
      const b = people(count - overlap, count);
      const merged = PeopleSketch.fromHashes(a);
      merged.merge(PeopleSketch.fromHashes(b));
      const union = PeopleSketch.fromHashes([...a, ...b]);
      expect(merged.serialize().equals(union.serialize())).toBe(true);
      expect(merged.estimate()).toBe(union.estimate());
    }
    // a small exact set merged into a dense sketch, and a dense one into a small exact set
    const big = people(0, 25_000);
    const small = people(24_990, 50);
    const intoDense = PeopleSketch.fromHashes(big);
    intoDense.merge(PeopleSketch.fromHashes(small));
    const intoExact = PeopleSketch.fromHashes(small);
    intoExact.merge(PeopleSketch.fromHashes(big));
    const union = PeopleSketch.fromHashes([...big, ...small]);
    expect(intoDense.serialize().equals(union.serialize())).toBe(true);
    expect(intoExact.serialize().equals(union.serialize())).toBe(true);
  });

  it('addAll gives the sketch merge gives, through serialised dense sketches too', () => {
    for (const [count, overlap] of [
      [40, 20],
      [6_000, 500],
      [30_000, 10_000],
    ]) {
      const a = people(0, count);
      const b = people(count - overlap, count);
      const added = PeopleSketch.deserialize(PeopleSketch.fromHashes(a).serialize());
      // many small sketches folded in, then a whole one (dense beyond the limit)
      for (let index = 0; index < b.length; index += 7) added.addAll(PeopleSketch.fromHashes(b.slice(index, index + 7)));
      added.addAll(PeopleSketch.deserialize(PeopleSketch.fromHashes(b).serialize()));
      const union = PeopleSketch.fromHashes([...a, ...b]);
      expect(added.serialize().equals(union.serialize())).toBe(true);
      expect(added.estimate()).toBe(union.estimate());
      // the same from the stored bytes, exact or dense on either side
      const stored = PeopleSketch.deserialize(PeopleSketch.fromHashes(a).serialize());
      stored.addSerialized(PeopleSketch.fromHashes(b.slice(0, 5)).serialize());
      stored.addSerialized(PeopleSketch.fromHashes(b).serialize());
      stored.addSerialized(null);
      expect(stored.serialize().equals(union.serialize())).toBe(true);
    }
  });

  it('survives a serialisation round trip; small sets stay small', () => {
    for (const size of [0, 1, 100, EXACT_LIMIT, 50_000]) {
      const sketch = PeopleSketch.fromHashes(people(7, size));
      const bytes = sketch.serialize();
      const back = PeopleSketch.deserialize(bytes);
      expect(back.estimate()).toBe(sketch.estimate());
      expect(back.serialize().equals(bytes)).toBe(true);
      if (size <= EXACT_LIMIT) expect(bytes.length).toBe(1 + 6 * size);
      else expect(bytes.length).toBe(1 + 2 ** 14);
    }
    expect(PeopleSketch.deserialize(null).estimate()).toBe(0);
    expect(() => PeopleSketch.deserialize(Buffer.from([9, 1, 2]))).toThrow(/unknown people sketch encoding/);
  });

  it('writes each hash as 6 bytes, little-endian, after the encoding byte; reads them back', () => {
    const edges = [0, 1, 0xff, 0x100, 0xffffff, 0x1000000, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, 2 ** 47, 2 ** 48 - 1];
    const hashes = [...edges, ...people(0, 3_000)];
    const bytes = PeopleSketch.fromHashes(hashes).serialize();
    // The encoding stored since the first rollups, byte by byte.
    const sorted = [...new Set(hashes)].sort((a, b) => a - b);
    const expected = Buffer.alloc(1 + 6 * sorted.length);
    expected[0] = 1;
    sorted.forEach((hash, index) => {
      let rest = hash;
      for (let byte = 0; byte < 6; byte += 1) {
        expected[1 + 6 * index + byte] = rest % 256;
        rest = Math.floor(rest / 256);
      }
    });
    expect(bytes.equals(expected)).toBe(true);
    const back = PeopleSketch.deserialize(expected);
    back.add(2 ** 48 - 1);
    expect(back.serialize().equals(expected)).toBe(true);
  });

  it('taken whole into an empty sketch, stays the same whatever is added to that one', () => {
    const first = PeopleSketch.fromHashes(people(0, 500));
    const bytes = first.serialize();
    const taken = new PeopleSketch();
    taken.addAll(first);
    expect(taken.serialize().equals(bytes)).toBe(true);
    taken.addAll(PeopleSketch.fromHashes(people(400, 300)));
    taken.add(people(5_000, 1)[0]);
    taken.merge(PeopleSketch.fromHashes(people(9_000, 20_000)));
    expect(first.serialize().equals(bytes)).toBe(true);
    expect(first.estimate()).toBe(500);
    expect(
      taken.serialize().equals(PeopleSketch.fromHashes([...people(0, 700), ...people(5_000, 1), ...people(9_000, 20_000)]).serialize()),
    ).toBe(true);
    // And the other way: the sketch it was taken from grows, the one that took it does not.
    const source = PeopleSketch.fromHashes(people(0, 50));
    const copy = new PeopleSketch();
    copy.addAll(source);
    source.addAll(PeopleSketch.fromHashes(people(50, 50)));
    source.add(people(100, 1)[0]);
    expect(copy.estimate()).toBe(50);
    expect(copy.serialize().equals(PeopleSketch.fromHashes(people(0, 50)).serialize())).toBe(true);
  });

  it('copies into a sketch of its own, and estimates again after people are added', () => {
    for (const size of [3, 20_000]) {
      const sketch = PeopleSketch.fromHashes(people(0, size));
      const before = sketch.estimate();
      const copy = sketch.copy();
      expect(copy.estimate()).toBe(before);
      // Added to each in every way there is: the other one does not change.
      copy.add(people(size, 1)[0]);
      copy.merge(PeopleSketch.fromHashes(people(size + 1, 2_000)));
      copy.addSerialized(PeopleSketch.fromHashes(people(size + 5_000, 2_000)).serialize());
      expect(sketch.estimate()).toBe(before);
      expect(copy.estimate()).toBe(PeopleSketch.fromHashes([...people(0, size + 2_001), ...people(size + 5_000, 2_000)]).estimate());
      sketch.addAll(PeopleSketch.fromHashes(people(size, 3_000)));
      expect(sketch.estimate()).toBeGreaterThan(before);
      expect(sketch.byteSize).toBe(size > EXACT_LIMIT ? 2 ** 14 : (size + 3_000) * 8);
    }
  });

  it('answers whether a merge changed it', () => {
    const sketch = PeopleSketch.fromHashes(people(0, 1));
    expect(sketch.merge(PeopleSketch.fromHashes(people(0, 1)))).toBe(false);
    expect(sketch.merge(PeopleSketch.fromHashes(people(1, 1)))).toBe(true);
    expect(sketch.merge(new PeopleSketch())).toBe(false);
    const dense = PeopleSketch.fromHashes(people(0, 20_000));
    expect(dense.merge(PeopleSketch.fromHashes(people(0, 100)))).toBe(false);
    expect(dense.merge(PeopleSketch.fromHashes(people(0, 20_000)))).toBe(false);
    expect(new PeopleSketch().merge(dense)).toBe(true);
  });
});
