import type { Config } from '../../config/index.ts';
import type { AgentsService } from '../agents/agents.service.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import type { OrgsService } from '../orgs/orgs.service.ts';
import type { TokensService } from '../oauth/tokens.service.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { KeysService } from '../keys/keys.service.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { AuditService } from '../audit/audit.service.ts';

/** What the management routes call. */
export interface Services {
  config: Config;
  agents: AgentsService;
  credentials: CredentialsService;
  orgs: OrgsService;
  tokens: TokensService;
  /** Agents as OAuth clients, for client authentication at our OAuth endpoints. */
  agentRows: AgentsRepository;
  keys: KeysService;
  auditWriter: AuditWriter;
  audit: AuditService;
}
