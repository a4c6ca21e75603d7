import { Code, CodeTracking, CodeType } from '../../src/codes/code.entity';
import { CODE_COLUMNS, codeFromRecord, codeFromRow, codeRecordFromRow, type CodeRecord, type CodeRow } from '../../src/codes/code.wire';
import { CodeProviderKind } from '../../src/images/image.types';

/** As better-sqlite3 returns it: integers as numbers. */
const sqliteRow: CodeRow = {
  id: '6f1c2d3e-0000-4000-8000-000000000001',
  page_id: '1234567890',
  type: 'STANDARD',
  ref: 'table-7',
  label: 'Table 7',
  provider: 'LOCAL',
  image_size: 1000,
  image_id: 'image-1',
  created_at: 1_700_000_000_000,
  scan_count: 3,
  last_scanned_at: 1_700_000_500_000,
  tracking: 'REDIRECT',
  slug: 'a1B2c3D4e5',
  visit_count: 12,
};

/** As pg returns it: bigint columns as strings (integer columns as numbers). */
const postgresRow: CodeRow = {
  ...sqliteRow,
  image_size: 1000,
  created_at: '1700000000000',
  scan_count: 3,
  last_scanned_at: '1700000500000',
};

const expectedRecord: CodeRecord = {
  id: '6f1c2d3e-0000-4000-8000-000000000001',
  pageId: '1234567890',
  type: CodeType.STANDARD,
  ref: 'table-7',
  label: 'Table 7',
  provider: CodeProviderKind.LOCAL,
  imageSize: 1000,
  imageId: 'image-1',
  createdAt: 1_700_000_000_000,
  scanCount: 3,
  lastScannedAt: 1_700_000_500_000,
  tracking: CodeTracking.REDIRECT,
  slug: 'a1B2c3D4e5',
  visitCount: 12,
};

describe('codeRecordFromRow', () => {
  it('maps a SQLite row (numbers)', () => {
    expect(codeRecordFromRow(sqliteRow)).toEqual(expectedRecord);
  });

  it('maps a PostgreSQL row (bigints as strings) to the same numbers', () => {
    const record = codeRecordFromRow(postgresRow);
    expect(record).toEqual(expectedRecord);
    expect(typeof record.createdAt).toBe('number');
    expect(typeof record.lastScannedAt).toBe('number');
  });

  it('maps every numeric column given as a string (any driver setting)', () => {
    const allStrings = { ...sqliteRow, image_size: '1000', created_at: '1700000000000', scan_count: '3', last_scanned_at: '1700000500000' };
    const record = codeRecordFromRow(allStrings);
    expect(record).toEqual(expectedRecord);
    expect([typeof record.imageSize, typeof record.scanCount]).toEqual(['number', 'number']);
  });

  it('the stored empty ref is the static code: ref null', () => {
    expect(codeRecordFromRow({ ...sqliteRow, ref: '' }).ref).toBeNull();
    expect(codeRecordFromRow({ ...postgresRow, ref: '' }).ref).toBeNull();
  });

  it('a ref that only looks empty is kept', () => {
    expect(codeRecordFromRow({ ...sqliteRow, ref: ' ' }).ref).toBe(' ');
    expect(codeRecordFromRow({ ...sqliteRow, ref: '0' }).ref).toBe('0');
  });

  it('last_scanned_at 0 means never: null, as a number or as a string', () => {
    expect(codeRecordFromRow({ ...sqliteRow, last_scanned_at: 0 }).lastScannedAt).toBeNull();
    expect(codeRecordFromRow({ ...postgresRow, last_scanned_at: '0' }).lastScannedAt).toBeNull();
  });

  it('a scan at 1 ms after the epoch is not "never"', () => {
    expect(codeRecordFromRow({ ...sqliteRow, last_scanned_at: 1 }).lastScannedAt).toBe(1);
    expect(codeRecordFromRow({ ...postgresRow, last_scanned_at: '1' }).lastScannedAt).toBe(1);
  });

  it('keeps a null label and a zero scan count', () => {
    const record = codeRecordFromRow({ ...sqliteRow, label: null, scan_count: 0, last_scanned_at: 0 });
    expect(record.label).toBeNull();
    expect(record.scanCount).toBe(0);
  });

  it('is plain JSON that survives a round trip (it travels through Redis)', () => {
    const record = codeRecordFromRow(postgresRow);
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });

  it('CODE_COLUMNS lists the columns of CodeRow, in order', () => {
    expect(CODE_COLUMNS.split(', ')).toEqual(Object.keys(sqliteRow));
  });
});

describe('codeFromRecord', () => {
  it('makes a Code entity with Dates', () => {
    const code = codeFromRecord(expectedRecord);
    expect(code).toBeInstanceOf(Code);
    expect(code.createdAt).toBeInstanceOf(Date);
    expect(code.createdAt.getTime()).toBe(1_700_000_000_000);
    expect(code.lastScannedAt).toEqual(new Date(1_700_000_500_000));
    expect(code).toMatchObject({
      id: expectedRecord.id,
      pageId: '1234567890',
      ref: 'table-7',
      label: 'Table 7',
      imageSize: 1000,
      imageId: 'image-1',
      scanCount: 3,
    });
  });

  it('never scanned stays null (not the epoch)', () => {
    expect(codeFromRecord({ ...expectedRecord, lastScannedAt: null }).lastScannedAt).toBeNull();
  });

  it('does not change the record', () => {
    const record = { ...expectedRecord };
    codeFromRecord(record);
    expect(record).toEqual(expectedRecord);
  });
});

describe('codeFromRow', () => {
  it('gives the same Code for a SQLite row and a PostgreSQL row', () => {
    const fromSqlite = codeFromRow(sqliteRow);
    expect(fromSqlite).toBeInstanceOf(Code);
    expect(codeFromRow(postgresRow)).toEqual(fromSqlite);
    expect(fromSqlite).toEqual(codeFromRecord(expectedRecord));
  });

  it('the static code never scanned: ref null, lastScannedAt null', () => {
    const code = codeFromRow({ ...postgresRow, ref: '', last_scanned_at: '0', scan_count: '0' });
    expect(code.ref).toBeNull();
    expect(code.lastScannedAt).toBeNull();
    expect(code.scanCount).toBe(0);
  });
});
