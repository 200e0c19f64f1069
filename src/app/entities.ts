import { OrgEntity } from '../orgs/org.entity.ts';
import { AgentEntity } from '../agents/agent.entity.ts';
import { CredentialEntity } from '../credentials/credential.entity.ts';
import { SigningKeyEntity } from '../keys/signing-key.entity.ts';

/** The TypeORM schemas of the domains' tables (the audit log and revocations are plain SQL). */
export const ENTITIES = [OrgEntity, AgentEntity, CredentialEntity, SigningKeyEntity];
