/** The benchmark's output: a table on stdout and bench/results.json. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface RowResult {
  row: number;
  what: string;
  /** the figure of the gateway */
  measured: string;
  /** the figure it is compared with, measured in the same run ("—" when there is none) */
  floor: string;
  target: string;
  /** null when the row could not be measured */
  met: boolean | null;
  /** the numbers behind the text, for results.json */
  data: Record<string, unknown>;
  /** lines printed under the table */
  notes?: string[];
  /** what broke (failed requests, a crash): the row is still shown, and the run exits 1 */
  error?: string;
}

export interface Results {
  cores: number;
  cpuModel: string;
  node: string;
  commit: string;
  /** uncommitted changes to tracked files when the benchmark ran */
  dirty: boolean;
  date: string;
  quick: boolean;
  durationSeconds: number;
  rows: RowResult[];
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): Pick<Results, 'cores' | 'cpuModel' | 'node' | 'commit' | 'dirty'> {
  const cpuList = cpus();
  return {
    cores: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    node: process.version,
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
  };
}

/** 12345.6 → "12,346"; 12.34 → "12.3"; 0.5 → "0.50" */
export function num(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return String(value);
  const fraction = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: fraction, maximumFractionDigits: fraction });
}

export function ms(value: number): string {
  return `${num(value, value >= 100 ? 0 : 1)} ms`;
}

export function percent(ratio: number): string {
  return `${num(ratio * 100, 0)} %`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table (it pastes into the README as is), columns padded for the terminal. */
export function formatTable(rows: RowResult[]): string {
  const header = ['#', 'what', 'measured', 'floor / compared with', 'target', 'met?'];
  const body = rows.map((row) => [
    String(row.row),
    row.what,
    row.error ? `${row.measured} ERROR: ${row.error.split('\n')[0]}`.trim() : row.measured,
    row.floor,
    row.target,
    row.met === null ? '—' : row.met ? 'yes' : 'no',
  ]);
  const cells = [header, ...body].map((line) => line.map(escapeCell));
  const widths = header.map((_, column) => Math.max(...cells.map((line) => line[column].length)));
  const format = (line: string[]) => `| ${line.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  const table = [format(cells[0]), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.slice(1).map(format)];
  const notes = rows.flatMap((row) => row.notes ?? []);
  return [...table, ...(notes.length ? ['', ...notes] : [])].join('\n');
}

export function writeResults(path: string, results: Results): void {
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}
