import { createWriteStream, unlinkSync, type WriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import type { ManagementApi, Query } from '../api.ts';
import { globals, instant, integer, managementApi } from '../context.ts';
import { UsageError } from '../errors.ts';
import { localTime, note, printJson, printTable } from '../output.ts';
import { registerAuditVerify } from './audit-verify.ts';

type AuditEvent = components['schemas']['AuditEvent'];
type AuditPage = components['schemas']['AuditPage'];

interface Filters {
  agent?: string;
  action?: string;
  outcome?: string;
  actor?: string;
  from?: string;
  to?: string;
}

const query = (f: Filters): Query => ({ agentId: f.agent, action: f.action, outcome: f.outcome, actorId: f.actor, from: f.from, to: f.to });

function withFilters(command: Command): Command {
  return command
    .option('--agent <agent-id>', 'only events about this agent')
    .option('--action <action>', 'only this action, e.g. token.issued')
    .option('--outcome <outcome>', 'success or failure')
    .option('--actor <actor-id>', 'only events by this actor')
    .option('--from <time>', 'events at or after this time (ISO 8601)', instant)
    .option('--to <time>', 'events before this time (ISO 8601)', instant);
}

const who = (x: { type: string; id: string | null }) => (x.id ? `${x.type}:${x.id}` : x.type);

function printEvents(events: AuditEvent[]): void {
  printTable(
    ['TIME', 'ACTION', 'OUTCOME', 'ACTOR', 'TARGET', 'EVENT ID'],
    events.map((e) => [localTime(e.occurredAt), e.action, e.outcome, who(e.actor), who(e.target), e.eventId]),
  );
}

/** Every event matching the query, newest first, following the cursors. */
async function* pages(api: ManagementApi, q: Query): AsyncGenerator<AuditPage> {
  let cursor: string | undefined;
  do {
    const page = await api.get<AuditPage>('/audit', { ...q, cursor });
    yield page;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}

// Events are read by `from` with an overlap, since an event may be stored a little after the
// instant it records; ids already printed are remembered for that long and skipped.
const FOLLOW_OVERLAP_MS = 10_000;

function printLine(e: AuditEvent, json: boolean): void {
  process.stdout.write(
    json ? JSON.stringify(e) + '\n' : `${localTime(e.occurredAt)}  ${e.action}  ${e.outcome}  ${who(e.actor)}  ${who(e.target)}  ${e.eventId}\n`,
  );
}

/** Polls for events newer than `since` until SIGINT or SIGTERM, printing each once, oldest first. */
async function follow(api: ManagementApi, filters: Filters, since: string, intervalMs: number, json: boolean): Promise<void> {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  const seen = new Map<string, number>();
  let latest = Date.parse(since);
  const poll = async (print: boolean) => {
    const fresh: AuditEvent[] = [];
    for await (const page of pages(api, { ...query(filters), from: new Date(latest - FOLLOW_OVERLAP_MS).toISOString(), limit: 200 })) {
      fresh.push(...page.data.filter((e) => !seen.has(e.eventId)));
    }
    for (const e of fresh.reverse()) {
      seen.set(e.eventId, Date.parse(e.occurredAt));
      latest = Math.max(latest, Date.parse(e.occurredAt));
      if (print) printLine(e, json);
    }
    for (const [id, at] of seen) if (at < latest - FOLLOW_OVERLAP_MS) seen.delete(id);
  };
  // The overlap window before `since` was shown already (or was older than what was asked for).
  await poll(false);
  while (!stop.signal.aborted) {
    try {
      await sleep(intervalMs, undefined, { signal: stop.signal });
    } catch {
      break;
    }
    await poll(true);
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description("the audit log of the logged-in agent's org");
  registerAuditVerify(audit);

  withFilters(audit.command('list'))
    .description('list events, newest first; --all follows every page')
    .option('--limit <n>', 'events per page (at most 200)', integer(1, 200), 50)
    .option('--cursor <cursor>', 'the page after this cursor (printed at the end of the previous one)')
    .option('--all', 'follow the cursors to the last page; with --json, one document {"data": [...], "nextCursor": null}')
    .action(async (options: Filters & { limit: number; cursor?: string; all?: boolean }, command: Command) => {
      const api = managementApi(command);
      const json = globals(command).json;
      const q = { ...query(options), limit: options.limit };
      if (options.all) {
        const all: AuditEvent[] = [];
        for await (const page of pages(api, { ...q, cursor: options.cursor })) all.push(...page.data);
        return json ? printJson({ data: all, nextCursor: null }) : printEvents(all);
      }
      const page = await api.get<AuditPage>('/audit', { ...q, cursor: options.cursor });
      if (json) return printJson(page);
      printEvents(page.data);
      if (page.nextCursor) note(`more: --cursor ${page.nextCursor} (or --all)`);
    });

  withFilters(audit.command('tail'))
    .description('the latest events, oldest first; --follow prints new ones as they come until Ctrl-C')
    .option('-n, --lines <n>', 'how many of the latest events to show first', integer(1, 200), 10)
    .option('-f, --follow', 'keep polling for new events (with --json: one event per line, NDJSON)')
    .option('--interval <seconds>', 'seconds between polls with --follow', integer(1, 3600), 2)
    .action(async (options: Filters & { lines: number; follow?: boolean; interval: number }, command: Command) => {
      const api = managementApi(command);
      const json = Boolean(globals(command).json);
      const started = new Date().toISOString();
      const page = await api.get<AuditPage>('/audit', { ...query(options), limit: options.lines });
      const latest = [...page.data].reverse();
      if (json && !options.follow) return printJson(page);
      if (json) for (const e of latest) process.stdout.write(JSON.stringify(e) + '\n');
      else printEvents(latest);
      if (!options.follow) return;
      await follow(api, options, page.data[0]?.occurredAt ?? started, options.interval * 1000, json);
    });

  withFilters(audit.command('export'))
    .description('every matching event as NDJSON (one event per line), to stdout or --out; progress on stderr')
    .option('--out <file>', 'write to this new file (mode 0600) instead of stdout')
    .action(async (options: Filters & { out?: string }, command: Command) => {
      if (!options.from || !options.to) throw new UsageError('audit export needs --from and --to');
      const api = managementApi(command);
      let out: NodeJS.WritableStream = process.stdout;
      if (options.out) {
        out = createWriteStream(options.out, { flags: 'wx', mode: 0o600 });
        await new Promise<void>((resolve, reject) =>
          (out as WriteStream).once('open', () => resolve()).once('error', (err) => reject(new UsageError(`cannot create ${options.out}: ${err.message}`))),
        );
      }
      let response: Response;
      try {
        response = await api.fetch('GET', '/audit/export', { query: query(options) });
      } catch (err) {
        // Refused before any event came: the new, empty file goes.
        if (out !== process.stdout) {
          (out as WriteStream).destroy();
          unlinkSync(options.out!);
        }
        throw err;
      }
      const started = Date.now();
      let events = 0;
      let lastReport = started;
      const report = (final: boolean) => {
        const seconds = (Date.now() - started) / 1000;
        const rate = Math.round(events / Math.max(seconds, 0.001));
        const line = `${events} events, ${rate} events/s`;
        if (final) process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}exported ${line} in ${seconds.toFixed(1)} s\n`);
        else if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
        else process.stderr.write(line + '\n');
      };
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        for (const byte of chunk) if (byte === 0x0a) events++;
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        if (Date.now() - lastReport >= 1000) {
          lastReport = Date.now();
          report(false);
        }
      }
      if (out !== process.stdout) await new Promise((resolve) => (out as WriteStream).end(resolve));
      report(true);
    });
}
