import type { KoaContextWithOIDC } from 'oidc-provider';
import type { TokenQuotas } from '../../throttling/token-quota.ts';
import type { AgentClient } from '../clients.ts';
import { clientAuthNotes } from '../client-auth/note.ts';
import { TooManyRequests } from '../hooks/auth-throttle.ts';

/**
 * The agent's token quota (design/operations.md), for every grant that issues it a token
 * (client_credentials, token exchange): decided from memory, before anything is signed.
 */
export function assertWithinQuota(ctx: KoaContextWithOIDC, client: AgentClient, quotas: Pick<TokenQuotas, 'refusal'>): void {
  const refusal = quotas.refusal(client.clientId, client.token_quota);
  if (!refusal) return;
  ctx.set('Retry-After', String(refusal.retryAfterSeconds));
  const note = clientAuthNotes.getStore();
  if (note) {
    note.reason = 'quota_exceeded';
    // Recorded once per agent and window, not per refused request.
    note.refused = !refusal.first;
  }
  const per = refusal.limit === 'perMinute' ? 'minute' : 'hour';
  throw new TooManyRequests(
    `this agent's quota of ${refusal.quota} tokens per ${per} is used up; try again in ${refusal.retryAfterSeconds} seconds (cache a token until it expires)`,
  );
}
