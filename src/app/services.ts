import type { Config } from '../../config/index.ts';
import type { AgentsService } from '../agents/agents.service.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import type { OrgsService } from '../orgs/orgs.service.ts';
import type { ClientStore } from '../oauth/client-store.ts';
import type { RevocationsRepository } from '../oauth/revocations.repository.ts';
import type { KeysService } from '../keys/keys.service.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { AuditService } from '../audit/audit.service.ts';

/** What the management routes call. */
export interface Services {
  config: Config;
  agents: AgentsService;
  credentials: CredentialsService;
  orgs: OrgsService;
  /** Agents as OAuth clients, for client authentication at our OAuth endpoints. */
  clients: ClientStore;
  revocations: RevocationsRepository;
  keys: KeysService;
  auditWriter: AuditWriter;
  audit: AuditService;
}
