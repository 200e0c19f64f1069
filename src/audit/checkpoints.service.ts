import type { JWK } from 'jose';
import { ValidationFailed } from '../http/errors.ts';
import { combine, verifyChain, type VerifyResult } from './checkpoint-verify.ts';
import type { Checkpoint } from './checkpoint-format.ts';
import type { Chain, CheckpointsRepository } from './checkpoints.repository.ts';
import type { AuditReader } from './audit.service.ts';

// Reading and verifying the checkpoints: an org sees and verifies its own chain; the operators
// of the service (the root org) also the service's chain (events of no org).

export const CHECKPOINTS_LIMIT_DEFAULT = 100;

export interface CheckpointsQuery {
  from?: string;
  to?: string;
  cursor?: string;
  limit?: number;
}

function chainsOf(reader: AuditReader): Chain[] {
  return reader.isRoot ? [reader.orgId, null] : [reader.orgId];
}

function range(query: CheckpointsQuery): { from?: Date; to?: Date } {
  const from = query.from === undefined ? undefined : new Date(query.from);
  const to = query.to === undefined ? undefined : new Date(query.to);
  if (from && to && to < from) throw new ValidationFailed('to is earlier than from', [{ field: 'query/to', message: 'must not be earlier than from' }]);
  return { from, to };
}

export class CheckpointsService {
  readonly #repo: CheckpointsRepository;
  /** The oldest instant the audit log still keeps (retention): windows before it are purged, not tampered with. */
  readonly #retainedFrom: () => Date;

  constructor(repo: CheckpointsRepository, retainedFrom: () => Date) {
    this.#repo = repo;
    this.#retainedFrom = retainedFrom;
  }

  retainedFrom(): Date {
    return this.#retainedFrom();
  }

  page(reader: AuditReader, query: CheckpointsQuery): Promise<{ rows: Checkpoint[]; nextCursor: string | null }> {
    const { from, to } = range(query);
    return this.#repo.page(chainsOf(reader), from, to, query.limit ?? CHECKPOINTS_LIMIT_DEFAULT, query.cursor);
  }

  /** Every checkpoint of the reader's chains that meets [from, to), checked against its signature, its chain and the events. */
  async verify(reader: AuditReader, query: Pick<CheckpointsQuery, 'from' | 'to'>): Promise<VerifyResult> {
    const { from, to } = range(query);
    const retainedFrom = this.#retainedFrom();
    const keyOf = async (kid: string): Promise<JWK | undefined> => (await this.#repo.signer(kid))?.publicJwk;
    const results: VerifyResult[] = [];
    for (const chain of chainsOf(reader)) {
      const { before, checkpoints } = await this.#repo.forVerify(chain, from, to);
      if (!checkpoints.length) continue;
      const first = checkpoints[0];
      const last = checkpoints[checkpoints.length - 1];
      // From the retention start when the chain's first checkpoint is in range: an event before it was put in afterwards.
      const start = first.seq === 1 && retainedFrom.toISOString() < first.from ? retainedFrom : new Date(first.from);
      const events = this.#repo.events(chain, start, new Date(last.to));
      results.push(await verifyChain(checkpoints, events, keyOf, { retainedFrom: retainedFrom.toISOString(), linkOnly: before ?? undefined }));
    }
    return combine(results);
  }
}
