import { spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** Opens the file, takes the write lock, says so, and gives it back when its stdin closes. */
const HOLDER = `
const db = new (require('better-sqlite3'))(process.argv[1], { fileMustExist: true });
db.exec('BEGIN EXCLUSIVE');
process.stdout.write('locked\\n');
process.stdin.resume();
process.stdin.once('end', () => {
  db.exec('COMMIT');
  db.close();
  process.exit(0);
});
`;

/** Locks still held when a test file ends (a failed test) are released then. */
const held = new Set<() => Promise<void>>();
afterAll(async () => {
  await Promise.all([...held].map((release) => release()));
});

export interface SqliteLock {
  /** commits the holder's empty transaction and waits for its process to exit */
  release(): Promise<void>;
}

/**
 * Another process holding SQLite's write lock on `file` (BEGIN EXCLUSIVE, as a backup
 * tool or a person in the sqlite3 shell would) until released: the database refuses the
 * gateway's writes once its busy timeout has passed.
 */
export function holdSqliteLock(file: string): Promise<SqliteLock> {
  const child = spawn(process.execPath, ['-e', HOLDER, file], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const release = async () => {
    child.stdin.end();
    await exited;
    held.delete(release);
  };
  held.add(release);
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').once('data', (chunk: string) => {
      if (chunk.startsWith('locked')) resolve({ release });
      else reject(new Error(`unexpected output of the lock holder: ${chunk}`));
    });
    void exited.then(() => reject(new Error(`the lock holder exited before locking: ${stderr}`)));
  });
}
