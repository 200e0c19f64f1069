import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The shape of src/ (design/architecture.md): dependencies between its folders run one way,
// app → domains and oauth → policies → http, db → config, and no two folders import each other
// through any path. Type-only imports are left aside: they are erased before the code runs.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Each folder's layer; a folder may import from lower layers only (domains also from each other, without a cycle). */
const LAYER: Record<string, number> = {
  config: 0,
  migrations: 0,
  lib: 0,
  http: 1,
  db: 1,
  // Instrumentation: prom-client and the metric names; reads the domains through their types only.
  metrics: 1,
  coherence: 2,
  policies: 2,
  agents: 3,
  credentials: 3,
  orgs: 3,
  keys: 3,
  audit: 3,
  throttling: 3,
  usage: 3,
  health: 3,
  // The admin console: its static files and the router that serves them; the page itself calls
  // the public API over HTTP, so the folder imports no domain.
  console: 3,
  // Webhooks: a domain; its outbox follows the audit writer through audit's AuditFollower
  // interface (audit never imports webhooks), its secrets use keys/key-encryption.ts.
  webhooks: 3,
  oauth: 4,
  // The MCP server: its paths and audience come from oauth/paths.ts; app hands it the management routes.
  mcp: 4.5,
  app: 5,
  // Entry points: the process (src/main.ts) and the CLI.
  '.': 6,
  cli: 6,
};
const DOMAIN_LAYER = 3;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

/** The folder of src/ a path belongs to ('.' for src/ itself), or the top folder outside src/ (config, migrations). */
function folderOf(path: string): string {
  const fromSrc = relative(SRC, path);
  if (!fromSrc.startsWith('..')) return fromSrc.includes('/') ? fromSrc.split('/')[0] : '.';
  return relative(ROOT, path).split('/')[0];
}

/** The relative modules a file imports or re-exports for their values. */
function valueImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const out: string[] = [];
  for (const statement of source.statements) {
    let specifier: ts.Expression | undefined;
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.isTypeOnly) continue;
      const bindings = clause?.namedBindings;
      const onlyTypes = clause && !clause.name && bindings && ts.isNamedImports(bindings) && bindings.elements.every((e) => e.isTypeOnly);
      if (onlyTypes) continue;
      specifier = statement.moduleSpecifier;
    } else if (ts.isExportDeclaration(statement) && !statement.isTypeOnly) {
      specifier = statement.moduleSpecifier;
    }
    if (specifier && ts.isStringLiteral(specifier) && specifier.text.startsWith('.')) {
      out.push(normalize(join(dirname(file), specifier.text)));
    }
  }
  return out;
}

function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    for (const target of valueImports(file)) {
      const to = folderOf(target);
      if (to === from) continue;
      const edges = graph.get(from) ?? new Map<string, string>();
      // One example import per edge, to name in a failure.
      if (!edges.has(to)) edges.set(to, `${relative(ROOT, file)} imports ${relative(ROOT, target)}`);
      graph.set(from, edges);
    }
  }
  return graph;
}

/** Every cycle of the graph, each named once (from its smallest folder). */
function findCycles(graph: Map<string, Map<string, string>>): string[] {
  const cycles: string[] = [];
  const visit = (folder: string, path: string[]) => {
    for (const next of graph.get(folder)?.keys() ?? []) {
      if (next === path[0]) cycles.push([...path, next].join(' → '));
      else if (!path.includes(next) && next > path[0]) visit(next, [...path, next]);
    }
  };
  for (const folder of graph.keys()) visit(folder, [folder]);
  return cycles;
}

describe('the folders of src/', () => {
  const graph = folderGraph();

  it('each sit in a layer', () => {
    const folders = new Set([...graph.keys(), ...[...graph.values()].flatMap((edges) => [...edges.keys()])]);
    expect([...folders].filter((f) => !(f in LAYER))).toEqual([]);
  });

  it('import only from lower layers (domains also from each other)', () => {
    const wrong: string[] = [];
    for (const [from, edges] of graph) {
      for (const [to, example] of edges) {
        const sideways = LAYER[from] === DOMAIN_LAYER && LAYER[to] === DOMAIN_LAYER;
        if (!(LAYER[to] < LAYER[from]) && !sideways) wrong.push(example);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('import each other through no cycle', () => {
    expect(findCycles(graph)).toEqual([]);
  });

  it('would show a cycle (the check itself, on a planted one)', () => {
    const planted = new Map([
      ['agents', new Map([['credentials', 'x']])],
      [
        'credentials',
        new Map([
          ['http', 'x'],
          ['agents', 'x'],
        ]),
      ],
    ]);
    expect(findCycles(planted)).toEqual(['agents → credentials → agents']);
  });
});
