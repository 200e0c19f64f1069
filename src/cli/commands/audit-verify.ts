import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import { decodeProtectedHeader } from 'jose';
import { compareEvents, type Checkpoint, type PresentedEvent } from '../../audit/checkpoint-format.ts';
import { combine, jwksLookup, verifyChain, type VerifyResult } from '../../audit/checkpoint-verify.ts';
import { globals, managementApi } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { note, printJson, printTable } from '../output.ts';

// `agent-idp audit verify`: checks the audit log against its signed checkpoints on this machine,
// with the code the server uses (src/audit/checkpoint-verify.ts), so that an auditor need not
// trust the server's own verdict. Online it fetches the checkpoints, the export and the signers'
// public keys; offline (--export, --checkpoints, --jwks) it takes them from files and needs no
// server at all.

/** Exit code of a log that does not verify (design/cli-and-sdk.md: 1–3 are taken). */
export const NOT_VERIFIED_EXIT = 4;
/** An export starts a little after the retention start, which moves on while the CLI works. */
const RETENTION_MARGIN_MS = 60_000;

interface CheckpointsDocument {
  data: Checkpoint[];
  retainedFrom?: string;
}

function parseJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new UsageError(`${file} is not ${what}: ${(err as Error).message}`);
  }
}

function parseNdjson(text: string, file: string): PresentedEvent[] {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line, i) => {
      try {
        return JSON.parse(line) as PresentedEvent;
      } catch {
        throw new UsageError(`${file}: line ${i + 1} is not JSON`);
      }
    });
}

const overlaps = (c: Checkpoint, from?: string, to?: string) => (!from || c.to > from) && (!to || c.from < to);

/** Every chain in the checkpoints, verified against the events (grouped by their orgId). */
export async function verifyOffline(
  checkpoints: Checkpoint[],
  events: PresentedEvent[],
  keyOf: (kid: string) => Promise<JWK | undefined>,
  options: { retainedFrom: string; from?: string; to?: string },
): Promise<VerifyResult> {
  const chainKey = (orgId: string | null) => orgId ?? 'service';
  const byChain = new Map<string, Checkpoint[]>();
  for (const c of checkpoints) byChain.set(chainKey(c.orgId), [...(byChain.get(chainKey(c.orgId)) ?? []), c]);
  const eventsOf = new Map<string, PresentedEvent[]>();
  for (const e of events) eventsOf.set(chainKey(e.orgId), [...(eventsOf.get(chainKey(e.orgId)) ?? []), e]);
  const results: VerifyResult[] = [];
  for (const [chain, all] of byChain) {
    all.sort((a, b) => a.seq - b.seq);
    const selected = all.filter((c) => overlaps(c, options.from, options.to));
    if (!selected.length) continue;
    const linkOnly = all.find((c) => c.seq === selected[0].seq - 1);
    const chainEvents = (eventsOf.get(chain) ?? []).sort(compareEvents);
    results.push(await verifyChain(selected, chainEvents, keyOf, { retainedFrom: options.retainedFrom, linkOnly }));
  }
  return combine(results);
}

function report(result: VerifyResult, json: boolean): void {
  if (json) printJson(result);
  else if (result.verified) process.stdout.write(`verified: ${result.events} events in ${result.checkpoints} checkpoints\n`);
  else
    printTable(
      ['CHECKPOINT', 'REASON', 'DETAIL'],
      result.problems.map((p) => [p.checkpointId, p.reason, p.detail]),
    );
  if (!json && result.purged.length) note(`${result.purged.length} checkpoints cover windows dropped by retention (purged); their events were not checked`);
  if (!result.verified)
    throw new CliError(`the audit log does not verify: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`, NOT_VERIFIED_EXIT);
}

export function registerAuditVerify(audit: Command): void {
  audit
    .command('verify')
    .description('check the audit log against its signed checkpoints, here (online, or offline from files with --export --checkpoints --jwks)')
    .option('--from <time>', 'checkpoints whose window ends after this time (ISO 8601)')
    .option('--to <time>', 'checkpoints whose window starts before this time (ISO 8601)')
    .option('--export <file>', 'offline: the NDJSON of `audit export` (GET /api/v1/audit/export)')
    .option('--checkpoints <file>', 'offline: the JSON of GET /api/v1/audit/checkpoints ({"data": [...], "retainedFrom"})')
    .option('--jwks <file>', 'offline: the public keys of the signers, {"keys": [...]} (GET /api/v1/keys/public/{kid} → jwk)')
    .action(async (options: { from?: string; to?: string; export?: string; checkpoints?: string; jwks?: string }, command: Command) => {
      const json = Boolean(globals(command).json);
      const from = options.from && new Date(options.from).toISOString();
      const to = options.to && new Date(options.to).toISOString();
      const files = [options.export, options.checkpoints, options.jwks].filter(Boolean).length;
      if (files > 0 && files < 3) throw new UsageError('offline verification needs all of --export, --checkpoints and --jwks');
      if (files === 3) {
        const document = parseJson<CheckpointsDocument | Checkpoint[]>(options.checkpoints!, 'the JSON of GET /api/v1/audit/checkpoints');
        const checkpoints = Array.isArray(document) ? document : document.data;
        // The export began at most a minute after retainedFrom (the README's recipe): windows before that are purged for this check.
        const retainedFrom = new Date(
          Date.parse((!Array.isArray(document) && document.retainedFrom) || new Date(0).toISOString()) + RETENTION_MARGIN_MS,
        ).toISOString();
        const events = parseNdjson(readFileSync(options.export!, 'utf8'), options.export!);
        const jwks = parseJson<{ keys: JWK[] }>(options.jwks!, 'a JWKS ({"keys": [...]})');
        return report(await verifyOffline(checkpoints, events, jwksLookup(jwks), { retainedFrom, from, to }), json);
      }

      const api = managementApi(command);
      const checkpoints: Checkpoint[] = [];
      let retainedFrom: string;
      let cursor: string | undefined;
      do {
        const page = await api.get<CheckpointsDocument & { nextCursor: string | null }>('/audit/checkpoints', { to, cursor, limit: 1000 });
        checkpoints.push(...page.data);
        retainedFrom = new Date(Date.parse(page.retainedFrom!) + RETENTION_MARGIN_MS).toISOString();
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      const selected = checkpoints.filter((c) => overlaps(c, from, to));
      if (!selected.length) return report({ verified: true, events: 0, checkpoints: 0, problems: [], purged: [] }, json);
      // From the retention start when a chain's first checkpoint is in range: an event before it was put in afterwards.
      const earliest = selected.some((c) => c.seq === 1) ? retainedFrom : selected.map((c) => c.from).sort()[0];
      const exportFrom = earliest > retainedFrom ? earliest : retainedFrom;
      const exportTo = selected.map((c) => c.to).sort()[selected.length - 1];
      const events =
        exportTo > exportFrom
          ? parseNdjson(await (await api.fetch('GET', '/audit/export', { query: { from: exportFrom, to: exportTo } })).text(), 'the export')
          : [];
      const keys = new Map<string, JWK | undefined>();
      const keyOf = async (kid: string) => {
        if (!keys.has(kid)) {
          const res = await fetch(`${api.profile.url}/api/v1/keys/public/${encodeURIComponent(kid)}`);
          keys.set(kid, res.ok ? ((await res.json()) as { jwk: JWK }).jwk : undefined);
        }
        return keys.get(kid);
      };
      // Every signer's key is fetched once, up front, so that a missing one is named as such.
      for (const c of selected) await keyOf(decodeProtectedHeader(c.signature).kid ?? '');
      report(await verifyOffline(checkpoints, events, keyOf, { retainedFrom, from, to }), json);
    });
}
