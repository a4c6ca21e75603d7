import { escapeLiteral } from 'pg';
import { jsonLiteral, sqlLiteral } from '../../src/scans/scan.store';

describe('sqlLiteral', () => {
  const samples = [
    '',
    'plain',
    "it's",
    "''",
    'a\\b',
    "\\'",
    "'\\",
    '\\\\',
    'emoji 🎉 and ünïcödé',
    '{"ref":"table\\"7","n":1}',
    'x'.repeat(50_000) + "'" + '\\',
  ];

  it.each(samples.map((sample) => [JSON.stringify(sample).slice(0, 40), sample]))(
    'writes %s exactly as pg.escapeLiteral',
    (_label, sample) => {
      expect(sqlLiteral(sample)).toBe(escapeLiteral(sample));
    },
  );

  it('agrees with pg.escapeLiteral on random strings of quotes, backslashes and letters', () => {
    const alphabet = ["'", '\\', 'a', 'é', '"', ' ', '\n', '🎉'];
    let state = 42;
    const random = () => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state / 2 ** 31;
    };
    for (let run = 0; run < 2_000; run += 1) {
      const length = Math.floor(random() * 20);
      const text = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      expect(sqlLiteral(text)).toBe(escapeLiteral(text));
    }
  });

  it('quotes the JSON of a value, a lone surrogate made well-formed', () => {
    expect(jsonLiteral({ ref: "o'clock\\" })).toBe(` E'{"ref":"o''clock\\\\\\\\"}'`);
    expect(jsonLiteral(['\ud800'])).toBe(`'["\ufffd"]'`);
  });
});
