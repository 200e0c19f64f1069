import type { Config } from '../../config/index.ts';
import type { AgentsService } from '../agents/agents.service.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import type { OrgsService } from '../orgs/orgs.service.ts';

/** What the management routes call. */
export interface Services {
  config: Config;
  agents: AgentsService;
  credentials: CredentialsService;
  orgs: OrgsService;
}
