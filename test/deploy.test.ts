import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

// docker-compose.yml and the Dockerfile, read as Compose and Docker read them (no engine runs
// here): the file must work with the Compose versions people have, and with the health and
// proxy settings of the service.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Service {
  build?: unknown;
  image?: string;
  environment?: Record<string, string> | string[];
  healthcheck?: { test?: string | string[] };
  volumes?: (string | { type?: string; source?: string })[];
  configs?: unknown;
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; configs?: Record<string, object> };
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
// The services that run agent-idp: those built from this repository.
const idpServices = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);

function environment(service: Service): Record<string, string> {
  if (!Array.isArray(service.environment)) return service.environment ?? {};
  return Object.fromEntries(service.environment.map((entry) => [entry.split('=')[0], entry.slice(entry.indexOf('=') + 1)]));
}

/** Host paths of the service's bind mounts (short syntax `./a:/b[:ro]`, or long syntax). */
function bindSources(service: Service): string[] {
  return (service.volumes ?? []).flatMap((volume) => {
    const source = typeof volume === 'string' ? volume.split(':')[0] : volume.type === 'bind' ? volume.source : undefined;
    // A name without a slash is a named volume.
    return source !== undefined && (source.startsWith('.') || isAbsolute(source)) ? [source] : [];
  });
}

describe('docker-compose.yml', () => {
  it('has no inline configs.content (Compose >= 2.23 only; podman-compose drops it)', () => {
    const inline = Object.entries(compose.configs ?? {}).filter(([, config]) => 'content' in config);
    expect(inline.map(([name]) => name)).toEqual([]);
  });

  it('bind-mounts only files that are in the repository', () => {
    const sources = Object.values(compose.services).flatMap(bindSources);
    expect(sources).toContain('./deploy/nginx.conf');
    // A missing source would be created by Docker as an empty directory, and nginx would start without its config.
    const missing = sources.filter((source) => !existsSync(join(ROOT, source)) || !statSync(join(ROOT, source)).isFile());
    expect(missing).toEqual([]);
  });

  it('runs two idp replicas, each trusting the one proxy in front and checked on /readyz', () => {
    expect(idpServices.map(([name]) => name)).toEqual(['idp-1', 'idp-2']);
    for (const [, service] of idpServices) {
      expect(environment(service).TRUST_PROXY).toBe('1');
      const test = [service.healthcheck?.test ?? []].flat().join(' ');
      expect(test).toMatch(/http:\/\/127\.0\.0\.1:3000\/readyz/);
    }
  });

  it('the nginx in front passes the client address on in X-Forwarded-For', () => {
    const nginx = readFileSync(join(ROOT, 'deploy/nginx.conf'), 'utf8');
    expect(nginx).toMatch(/^\s*proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/m);
    // Compose does not read this file: a `$$` escape would reach nginx as is.
    expect(nginx).not.toMatch(/\$\$/);
  });
});

describe('Dockerfile', () => {
  it('has a HEALTHCHECK on /healthz, run by node (node:24-slim has no curl)', () => {
    // The instruction with its continuation lines.
    const healthcheck = /^HEALTHCHECK\b((?:.*\\\n)*.*)/m.exec(dockerfile);
    expect(healthcheck).not.toBeNull();
    expect(healthcheck![1]).toMatch(/CMD \["node", "-e", ".*\/healthz/);
  });

  it('runs the server as npm start does: the same Node flags, and the variables npm start sets', () => {
    const start: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start;
    const parts = /^((?:\w+=\S*\s+)*)exec node((?:\s+--\S+)*)\s+src\/main\.ts$/.exec(start);
    expect(parts).not.toBeNull();
    const cmd = [...dockerfile.matchAll(/^CMD (\[.*\])$/gm)].at(-1);
    expect(JSON.parse(cmd![1])).toEqual(['node', ...parts![2].trim().split(/\s+/), 'src/main.ts']);
    // The image sets each variable itself (its own value: a path of the node user's, for the cache).
    const imageEnv = [...dockerfile.matchAll(/^ENV (.*)$/gm)].flatMap((m) => m[1].split(/\s+/).map((pair) => pair.split('=')[0]));
    for (const assignment of parts![1].trim().split(/\s+/).filter(Boolean)) expect(imageEnv).toContain(assignment.split('=')[0]);
  });
});
