// Every migration, in order. TypeORM runs the ones a database has not seen yet.
import { CreateOrgs1763769600000 } from './1763769600000-CreateOrgs.ts';
import { CreateAgents1763769600100 } from './1763769600100-CreateAgents.ts';
import { CreateCredentials1763769600200 } from './1763769600200-CreateCredentials.ts';
import { CreateSigningKeys1763769600300 } from './1763769600300-CreateSigningKeys.ts';
import { CreateRevokedTokens1763769600400 } from './1763769600400-CreateRevokedTokens.ts';
import { CreateAuditEvents1763769600500 } from './1763769600500-CreateAuditEvents.ts';
import { CreateStateNotifications1763769600600 } from './1763769600600-CreateStateNotifications.ts';
import { UnstoreManagementAudience1763769600700 } from './1763769600700-UnstoreManagementAudience.ts';
import { CreateAuthFailures1763769600800 } from './1763769600800-CreateAuthFailures.ts';
import { AddLimitsAndQuotas1763769600900 } from './1763769600900-AddLimitsAndQuotas.ts';
import { CreateTokenCounts1763769601000 } from './1763769601000-CreateTokenCounts.ts';
import { AddKeyCredentials1763769601100 } from './1763769601100-AddKeyCredentials.ts';
import { CreateWebhooks1763769601200 } from './1763769601200-CreateWebhooks.ts';
import { CreateAuditCheckpoints1763769601300 } from './1763769601300-CreateAuditCheckpoints.ts';
import { AddAgentMayAct1763769601400 } from './1763769601400-AddAgentMayAct.ts';
import { CreateFederatedIdentities1763769601500 } from './1763769601500-CreateFederatedIdentities.ts';
import { NotifyFederatedIdentityPreviousAgent1763769601600 } from './1763769601600-NotifyFederatedIdentityPreviousAgent.ts';

export const migrations = [
  CreateOrgs1763769600000,
  CreateAgents1763769600100,
  CreateCredentials1763769600200,
  CreateSigningKeys1763769600300,
  CreateRevokedTokens1763769600400,
  CreateAuditEvents1763769600500,
  CreateStateNotifications1763769600600,
  UnstoreManagementAudience1763769600700,
  CreateAuthFailures1763769600800,
  AddLimitsAndQuotas1763769600900,
  CreateTokenCounts1763769601000,
  AddKeyCredentials1763769601100,
  CreateWebhooks1763769601200,
  CreateAuditCheckpoints1763769601300,
  AddAgentMayAct1763769601400,
  CreateFederatedIdentities1763769601500,
  NotifyFederatedIdentityPreviousAgent1763769601600,
];
