import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Two result files of `npm run bench`, scenario by scenario: agent-idp's req/s, p99, CPU ms per
// request and ratio to the reference, before → after.
//
//   node bench/compare.ts                      the two latest files in bench/results/
//   node bench/compare.ts old.json new.json

interface Measurement {
  rps: number;
  p99: number;
  cpuMsPerReq: number | null;
}

interface ScenarioResult {
  scenario: string;
  label: string;
  alg: string;
  agentIdp: Measurement;
  ratio?: number;
  cpuRatio?: number;
}

interface Report {
  runId: string;
  database: string;
  options: { duration: number; connections: number };
  git?: { commit?: string };
  scenarios: ScenarioResult[];
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
let [before, after] = process.argv.slice(2);
if (!before || !after) {
  const files = readdirSync(resultsDir)
    .filter((f) => /^\d{4}-.*Z\.json$/.test(f))
    .sort();
  if (files.length < 2) {
    process.stderr.write('usage: node bench/compare.ts [old.json new.json] (bench/results/ holds fewer than two runs)\n');
    process.exit(2);
  }
  [before, after] = files.slice(-2).map((f) => join(resultsDir, f));
}
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Report;
const a = read(before);
const b = read(after);

const change = (x: number | null | undefined, y: number | null | undefined) => {
  if (x === null || x === undefined || y === null || y === undefined) return '';
  if (x === 0) return '';
  const pct = ((y - x) / x) * 100;
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(0)}%`;
};
const num = (n: number | null | undefined, d = 2) => (n === null || n === undefined ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(d));

const lines = [
  `before: ${a.runId} (${a.database}, ${a.options.duration} s, ${a.options.connections} conn, ${a.git?.commit?.slice(0, 8) ?? '?'})`,
  `after:  ${b.runId} (${b.database}, ${b.options.duration} s, ${b.options.connections} conn, ${b.git?.commit?.slice(0, 8) ?? '?'})`,
  '',
  ['scenario'.padEnd(30), 'req/s'.padStart(17), 'Δ'.padStart(6), 'p99 ms'.padStart(15), 'CPU ms/req'.padStart(15), 'Δ'.padStart(6), 'ratio'.padStart(12)].join(
    ' ',
  ),
];
for (const y of b.scenarios) {
  const x = a.scenarios.find((s) => s.scenario === y.scenario && s.alg === y.alg);
  const pair = (p: number | null | undefined, q: number | null | undefined, d = 2) => `${num(p, d)} → ${num(q, d)}`;
  lines.push(
    [
      y.label.padEnd(30),
      pair(x?.agentIdp.rps, y.agentIdp.rps, 0).padStart(17),
      change(x?.agentIdp.rps, y.agentIdp.rps).padStart(6),
      pair(x?.agentIdp.p99, y.agentIdp.p99, 1).padStart(15),
      pair(x?.agentIdp.cpuMsPerReq, y.agentIdp.cpuMsPerReq, 2).padStart(15),
      change(x?.agentIdp.cpuMsPerReq, y.agentIdp.cpuMsPerReq).padStart(6),
      (y.ratio === undefined ? '' : pair(x?.ratio, y.ratio)).padStart(12),
    ].join(' '),
  );
}
process.stdout.write(lines.join('\n') + '\n');
