import bcrypt from 'bcrypt';
import { secretDigest, generateSecret } from '../src/credentials/secrets.ts';
import { randomUUID } from 'node:crypto';

// How long one bcrypt compare takes here, the way agent-idp does it (SHA-256 digest of a
// client secret against a hash of cost BCRYPT_COST). The harness runs this on the servers' core
// while they are idle: 1000 / ms is what one core can verify per second, the bound of the cold
// /token path. Prints JSON: {cost, samples, medianMs, minMs}.

const cost = Number(process.argv[2] ?? 10);
const samples = Number(process.argv[3] ?? 12);
const digest = secretDigest(generateSecret(randomUUID()));
const hash = await bcrypt.hash(digest, cost);
const times: number[] = [];
for (let i = 0; i < samples; i++) {
  const started = performance.now();
  if (!(await bcrypt.compare(digest, hash))) throw new Error('bcrypt compare failed');
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const round = (n: number) => Math.round(n * 100) / 100;
process.stdout.write(JSON.stringify({ cost, samples, medianMs: round(times[Math.floor(times.length / 2)]), minMs: round(times[0]) }) + '\n');
