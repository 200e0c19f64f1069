import type { LogLevel } from '../../config/index.ts';
import { REDACTED, SECRET_KEY, redactString } from './redaction.ts';

// JSON lines on stdout. Fields that may carry a secret are redacted wherever they appear,
// however deep, so that a careless log call cannot leak one.

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error) {
    return { name: value.name, message: redactString(value.message), code: (value as { code?: string }).code, stack: value.stack && redactString(value.stack) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Whether lines of this level are written (lets callers skip work for lines nobody reads). */
  enabled?(level: Exclude<LogLevel, 'silent'>): boolean;
}

/**
 * `base`: fields every line carries, after time and level (the pid of each process of a
 * cluster, so that the lines of its workers can be told apart).
 */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  base: Record<string, unknown> = {},
): Logger {
  const min = LEVELS[level];
  const log = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    const record = { time: new Date().toISOString(), level: lvl, ...base, msg: redactString(msg), ...(redact(fields ?? {}) as object) };
    write(JSON.stringify(record));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), enabled: (lvl) => LEVELS[lvl] >= min };
}
