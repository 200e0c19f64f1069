import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Reads a V8 CPU profile (.cpuprofile, as written by `node --cpu-prof` or by the harness's
// --profile) and names where the time went: the functions with the most self time, and the
// packages (node_modules/<name>, node: internals, the project's own files) they belong to.
//
//   node bench/profile.ts bench/results/<run>-token-RS256.cpuprofile [top]

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of samples in which the process was idle (waiting for I/O). */
  idlePct: number;
  functions: ProfileEntry[];
  packages: { name: string; selfMs: number; selfPct: number }[];
  /** The project's own functions (src/, config/) by total time, their callees included. */
  ownInclusive: ProfileEntry[];
}

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const src = /\/(src|bench|config|migrations)\/(.*)$/.exec(url);
  return src ? `agent-idp ${src[1]}/` : url;
}

function shortWhere(url: string, line: number): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  const path =
    nm !== -1 ? url.slice(nm + '/node_modules/'.length) : (/\/((?:src|bench|config|migrations)\/.*)$/.exec(url)?.[1] ?? url.replace(/^file:\/\//, ''));
  return `${path}:${line + 1}`;
}

export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    // Each sample's time is the delta to the next sample.
    for (let i = 0; i < profile.samples.length; i++) {
      const delta = profile.timeDeltas[i + 1] ?? 0;
      selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + Math.max(0, delta));
    }
  } else {
    const total = profile.endTime - profile.startTime;
    const hits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
    for (const n of profile.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) * total) / hits);
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  let idleUs = 0;
  const functions = new Map<string, ProfileEntry & { us: number }>();
  const packages = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const key = `${name}@${url}:${lineNumber}`;
    const entry = functions.get(key) ?? { name, where: shortWhere(url, lineNumber), selfMs: 0, selfPct: 0, us: 0 };
    entry.us += us;
    functions.set(key, entry);
    const pkg = packageOf(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs || 1;

  // Inclusive time of the project's own functions: each sample counts once for every distinct
  // own function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame;
      if (!/\/(src|config)\//.test(url) || url.includes('/node_modules/')) continue;
      const key = `${functionName}@${url}:${lineNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = inclusive.get(key) ?? { name: functionName || '(anonymous)', where: shortWhere(url, lineNumber), us: 0 };
      entry.us += us;
      inclusive.set(key, entry);
    }
  }
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    totalMs: round(totalUs / 1000),
    idlePct: round((idleUs / totalUs) * 100),
    // Percentages of the busy (non-idle) time.
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ us, ...e }) => ({ ...e, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) })),
    packages: [...packages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) })),
    ownInclusive: [...inclusive.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ us, ...e }) => ({ ...e, selfMs: round(us / 1000), selfPct: round((us / busyUs) * 100) })),
  };
}

export function formatProfile(summary: ProfileSummary): string {
  const lines = [`profile: ${summary.totalMs} ms sampled, ${summary.idlePct}% idle; shares below are of the busy time`, '  top self time:'];
  for (const f of summary.functions) lines.push(`    ${f.selfPct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  lines.push('  self time by package:');
  for (const p of summary.packages) lines.push(`    ${p.selfPct.toFixed(1).padStart(5)}%  ${p.name}`);
  lines.push("  agent-idp's own functions, total time (callees included):");
  for (const f of summary.ownInclusive) lines.push(`    ${f.selfPct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node bench/profile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(formatProfile(summarizeProfile(profile, Number(process.argv[3] ?? 20))) + '\n');
}
