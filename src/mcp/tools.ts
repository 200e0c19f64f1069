import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { openApiDocument } from '../http/openapi.ts';
import type { SchemaName } from '../http/validate.ts';

// The tools of /mcp, each one management route (design/mcp.md): the route decides everything
// (scope, org, validation, audit, answer); a tool only names it and where its arguments go.

export interface ToolDefinition {
  name: string;
  description: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** The route under /api/v1, with `{param}` filled from the argument of that name. */
  path: string;
  /** Where the other arguments go, validated by the route against this openapi.yaml schema. */
  input?: { in: 'body' | 'query'; schema: SchemaName };
  /** A body the tool always sends (suspend and reactivate are PATCHes of the status); then it takes no other arguments. */
  fixedBody?: Record<string, unknown>;
  /** What a 204 answer (no JSON) says. */
  noContent?: string;
  annotations: ToolAnnotations;
}

const READ: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };
const write = (hints: Omit<ToolAnnotations, 'readOnlyHint'>): ToolAnnotations => ({
  readOnlyHint: false,
  destructiveHint: false,
  openWorldHint: false,
  ...hints,
});

export const TOOLS: ToolDefinition[] = [
  {
    name: 'list_agents',
    description: "The agents of the caller's org, a page at a time (GET /api/v1/agents; scope agents:read).",
    method: 'GET',
    path: '/agents',
    input: { in: 'query', schema: 'AgentListQuery' },
    annotations: READ,
  },
  {
    name: 'get_agent',
    description: 'One agent (GET /api/v1/agents/{agentId}; scope agents:read).',
    method: 'GET',
    path: '/agents/{agentId}',
    annotations: READ,
  },
  {
    name: 'create_agent',
    description: 'Registers an agent, an OAuth client of this IdP; add a secret with create_credential (POST /api/v1/agents; scope agents:write).',
    method: 'POST',
    path: '/agents',
    input: { in: 'body', schema: 'CreateAgentRequest' },
    annotations: write({ idempotentHint: false }),
  },
  {
    name: 'update_agent',
    description: "Changes an agent's fields, or its status active | suspended (PATCH /api/v1/agents/{agentId}; scope agents:write).",
    method: 'PATCH',
    path: '/agents/{agentId}',
    input: { in: 'body', schema: 'UpdateAgentRequest' },
    annotations: write({ idempotentHint: true }),
  },
  {
    name: 'suspend_agent',
    description: 'Suspends an agent: it can get no token and its tokens stop working, until reactivated (PATCH status suspended; scope agents:write).',
    method: 'PATCH',
    path: '/agents/{agentId}',
    fixedBody: { status: 'suspended' },
    annotations: write({ idempotentHint: true }),
  },
  {
    name: 'reactivate_agent',
    description: 'Reactivates a suspended agent (PATCH status active; scope agents:write).',
    method: 'PATCH',
    path: '/agents/{agentId}',
    fixedBody: { status: 'active' },
    annotations: write({ idempotentHint: true }),
  },
  {
    name: 'decommission_agent',
    description: 'Decommissions an agent for good: revokes all its credentials and tokens (DELETE /api/v1/agents/{agentId}; scope agents:write).',
    method: 'DELETE',
    path: '/agents/{agentId}',
    noContent: 'the agent is decommissioned',
    annotations: write({ destructiveHint: true, idempotentHint: false }),
  },
  {
    name: 'list_credentials',
    description: "An agent's credentials, never a secret (GET /api/v1/agents/{agentId}/credentials; scope agents:read).",
    method: 'GET',
    path: '/agents/{agentId}/credentials',
    input: { in: 'query', schema: 'CredentialListQuery' },
    annotations: READ,
  },
  {
    name: 'create_credential',
    description: 'A new client secret for an agent, shown once in this result (POST /api/v1/agents/{agentId}/credentials; scope agents:write).',
    method: 'POST',
    path: '/agents/{agentId}/credentials',
    input: { in: 'body', schema: 'CreateCredentialRequest' },
    annotations: write({ idempotentHint: false }),
  },
  {
    name: 'rotate_credential',
    description:
      'A new secret for the same credential id, shown once; the old one works for gracePeriodSeconds (POST .../credentials/{credentialId}/rotate; scope agents:write).',
    method: 'POST',
    path: '/agents/{agentId}/credentials/{credentialId}/rotate',
    input: { in: 'body', schema: 'RotateCredentialRequest' },
    annotations: write({ idempotentHint: false }),
  },
  {
    name: 'revoke_credential',
    description: 'Revokes a credential at once; revoking it again changes nothing (DELETE .../credentials/{credentialId}; scope agents:write).',
    method: 'DELETE',
    path: '/agents/{agentId}/credentials/{credentialId}',
    noContent: 'the credential is revoked',
    annotations: write({ destructiveHint: true, idempotentHint: true }),
  },
  {
    name: 'query_audit',
    description: "The org's audit events, newest first; pass nextCursor as cursor for the next page (GET /api/v1/audit; scope audit:read).",
    method: 'GET',
    path: '/audit',
    input: { in: 'query', schema: 'AuditQuery' },
    annotations: READ,
  },
  {
    name: 'get_usage',
    description: "What the caller's org holds and has used, and its limits (GET /api/v1/usage; scope audit:read).",
    method: 'GET',
    path: '/usage',
    annotations: READ,
  },
  {
    name: 'list_keys',
    description: 'The signing keys, public halves only; operators of the service (GET /api/v1/keys; scope keys:read, root org).',
    method: 'GET',
    path: '/keys',
    annotations: READ,
  },
  {
    name: 'rotate_keys',
    description: 'Rotates the signing keys now: next → active, active → retired, a new next (POST /api/v1/keys/rotate; scope keys:write, root org).',
    method: 'POST',
    path: '/keys/rotate',
    annotations: write({ idempotentHint: false }),
  },
];

/** The `{param}` names of a tool's path. */
export function pathParams(tool: ToolDefinition): string[] {
  return [...tool.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
}

type JsonSchema = Record<string, unknown>;

/** A schema with every `#/components/schemas/...` reference replaced by its target: MCP clients read a tool's schema alone. */
function inlined(schema: unknown, schemas: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((s) => inlined(s, schemas));
  if (!schema || typeof schema !== 'object') return schema;
  const ref = (schema as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
    const { $ref: _, ...rest } = schema as JsonSchema;
    return { ...(inlined(schemas[ref.slice('#/components/schemas/'.length)], schemas) as JsonSchema), ...(inlined(rest, schemas) as JsonSchema) };
  }
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, inlined(value, schemas)]));
}

/** A tool's input schema: its path parameters, then the fields of its route's request schema in openapi.yaml. */
export function inputSchema(tool: ToolDefinition): JsonSchema {
  const schemas = openApiDocument().components.schemas;
  const part = tool.input ? (inlined(schemas[tool.input.schema], schemas) as JsonSchema) : { properties: {} };
  const params = pathParams(tool);
  const properties: Record<string, unknown> = Object.fromEntries(params.map((name) => [name, { type: 'string', format: 'uuid' }]));
  Object.assign(properties, part.properties);
  const required = [...params, ...((part.required as string[] | undefined) ?? [])];
  const { description, minProperties } = part;
  return {
    type: 'object',
    ...(description ? { description } : {}),
    properties,
    ...(required.length ? { required } : {}),
    // UpdateAgentRequest asks for one field at least: beside the path parameters, so one more.
    ...(typeof minProperties === 'number' ? { minProperties: minProperties + params.length } : {}),
    additionalProperties: false,
  };
}
