import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import Table from 'cli-table3';
import { UsageError } from './errors.ts';

// What a person reads: borderless aligned tables (cli-table3 measures display width) and dates
// in local time. What a script reads: with --json, the API's JSON and nothing else on stdout.

const PLAIN = {
  chars: {
    top: '',
    'top-mid': '',
    'top-left': '',
    'top-right': '',
    bottom: '',
    'bottom-mid': '',
    'bottom-left': '',
    'bottom-right': '',
    left: '',
    'left-mid': '',
    mid: '',
    'mid-mid': '',
    right: '',
    'right-mid': '',
    middle: '  ',
  },
  // No colours: the output is often piped, and escape codes would break grep and cut.
  style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
};

export type Cell = string | number | boolean | null | undefined;

function text(cell: Cell): string {
  return cell === null || cell === undefined || cell === '' ? '-' : String(cell);
}

/** The table's lines, without the trailing spaces cli-table3 pads its last column with. */
function render(table: Table.Table): string {
  return (
    table
      .toString()
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n') + '\n'
  );
}

export function printTable(head: string[], rows: Cell[][]): void {
  const table = new Table({ head, ...PLAIN });
  table.push(...rows.map((row) => row.map(text)));
  process.stdout.write(render(table));
}

/** One object as `field  value` lines. */
export function printRecord(fields: [string, Cell][]): void {
  const table = new Table(PLAIN);
  table.push(...fields.map(([name, value]) => [name, text(value)]));
  process.stdout.write(render(table));
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function note(message: string): void {
  process.stderr.write(message + '\n');
}

/** On stderr, when a page of a list is not all of it: how many are shown and how to get the next page. */
export function notePage(page: { data: unknown[]; total: number; page: number; limit: number }, noun: string): void {
  const shown = (page.page - 1) * page.limit + page.data.length;
  if (shown < page.total) note(`${page.data.length} of ${page.total} ${noun} shown; --page ${page.page + 1} for more`);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** An ISO instant in the local time zone, `2026-12-01 14:02:11`; null stays null. */
export function localTime(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function list(values: readonly string[] | undefined): string {
  return values && values.length ? values.join(' ') : '-';
}

/**
 * Where a new secret goes. With --out FILE, the file is created (mode 0600, never over an
 * existing one) before the server makes the secret, so a bad path costs no orphan secret.
 */
export class SecretSink {
  private fd?: number;
  readonly path?: string;

  constructor(path: string | undefined) {
    this.path = path;
    if (!path) return;
    try {
      this.fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(code === 'EEXIST' ? `${path} exists; --out writes a new file only` : `cannot create ${path}: ${(err as Error).message}`);
    }
  }

  get toFile(): boolean {
    return this.path !== undefined;
  }

  /** Writes the secret to the file, or warns that the secret about to be printed is shown once. */
  deliver(secret: string, noun = 'secret'): void {
    if (this.fd === undefined) {
      note(`warning: the ${noun} below is shown once and cannot be retrieved again; store it now.`);
      return;
    }
    // A PEM ends with its own newline; a secret gets one.
    writeSync(this.fd, secret.endsWith('\n') ? secret : secret + '\n');
    closeSync(this.fd);
    this.fd = undefined;
    note(`the ${noun} was written to ${this.path} (mode 0600); it cannot be retrieved again.`);
  }

  /** The request failed: the empty file goes. */
  discard(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    unlinkSync(this.path!);
  }

  async around<T>(make: () => Promise<T>): Promise<T> {
    try {
      return await make();
    } catch (err) {
      this.discard();
      throw err;
    }
  }
}
