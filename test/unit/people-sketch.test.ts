import { createHash } from 'node:crypto';
import { EXACT_LIMIT, PeopleSketch, personHash } from '../../src/stats/people-sketch';

/** Sender hashes as the gateway stores them: hex SHA-256 of distinct PSIDs. */
function senders(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, index) =>
    createHash('sha256')
      .update(`psid-${from + index}`)
      .digest('hex'),
  );
}

function sketchOf(hashes: string[]): PeopleSketch {
  return PeopleSketch.fromHashes(hashes.map(personHash));
}

function relativeError(estimate: number, exact: number): number {
  return Math.abs(estimate - exact) / exact;
}

describe('PeopleSketch', () => {
  it('is exact at 100 and at 10,000 distinct people, repeats counted once', () => {
    for (const size of [100, EXACT_LIMIT]) {
      const people = senders(0, size);
      const sketch = sketchOf([...people, ...people.slice(0, size / 2)]);
      expect(sketch.isExact).toBe(true);
      expect(sketch.estimate()).toBe(size);
    }
  });

  it('is within 2 % above 10,000 distinct people', () => {
    for (const size of [EXACT_LIMIT + 1, 20_000, 50_000, 200_000]) {
      const sketch = sketchOf(senders(1_000_000, size));
      expect(sketch.isExact).toBe(false);
      expect(relativeError(sketch.estimate(), size)).toBeLessThan(0.02);
    }
  });

  it('merged equals the sketch of the union, exact and dense alike', () => {
    const cases: [number, number, number][] = [
      // [first, count of a, overlap with b]
      [0, 3_000, 1_000],
      [0, 6_000, 500],
      [0, 30_000, 10_000],
      [0, 40, 20],
    ];
    for (const [first, count, overlap] of cases) {
      const a = senders(first, count);
      const b = senders(first + count - overlap, count);
      const merged = sketchOf(a);
      merged.merge(sketchOf(b));
      const union = sketchOf([...a, ...b]);
      expect(merged.serialize().equals(union.serialize())).toBe(true);
      expect(merged.estimate()).toBe(union.estimate());
    }
    // a small exact set merged into a dense sketch, and a dense one into a small exact set
    const big = senders(0, 25_000);
    const small = senders(24_990, 50);
    const intoDense = sketchOf(big);
    intoDense.merge(sketchOf(small));
    const intoExact = sketchOf(small);
    intoExact.merge(sketchOf(big));
    const union = sketchOf([...big, ...small]);
    expect(intoDense.serialize().equals(union.serialize())).toBe(true);
    expect(intoExact.serialize().equals(union.serialize())).toBe(true);
  });

  it('survives a serialisation round trip; small sets stay small', () => {
    for (const size of [0, 1, 100, EXACT_LIMIT, 50_000]) {
      const sketch = sketchOf(senders(7, size));
      const bytes = sketch.serialize();
      const back = PeopleSketch.deserialize(bytes);
      expect(back.estimate()).toBe(sketch.estimate());
      expect(back.serialize().equals(bytes)).toBe(true);
      if (size <= EXACT_LIMIT) expect(bytes.length).toBe(1 + 6 * size);
    }
    expect(PeopleSketch.deserialize(null).estimate()).toBe(0);
  });

  it('answers whether an addition changed it', () => {
    const sketch = new PeopleSketch();
    const hash = personHash('a');
    expect(sketch.add(hash)).toBe(true);
    expect(sketch.add(hash)).toBe(false);
    expect(sketch.merge(sketchOf(['a']))).toBe(false);
    expect(sketch.merge(sketchOf(['b']))).toBe(true);
  });
});
