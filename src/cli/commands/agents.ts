import type { Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import { collect, globals, integer, managementApi, promptLine } from '../context.ts';
import { UsageError } from '../errors.ts';
import { list, localTime, note, printJson, printRecord, printTable, notePage } from '../output.ts';

type Agent = components['schemas']['Agent'];
type AgentList = components['schemas']['AgentList'];

interface AgentFlags {
  name?: string;
  scope?: string[];
  audience?: string[];
  description?: string;
  owner?: string;
  ttl?: number;
  requireDpop?: boolean;
  mayAct?: string[];
  federate?: string[];
  /** false with --no-federation (commander's negatable option). */
  federation?: boolean;
}

/** `--federate "ISSUER SUBJECT"`: an issuer URL holds no space, so the first one separates them. */
function federatedIdentity(value: string): { issuer: string; subject: string } {
  const at = value.indexOf(' ');
  if (at <= 0 || at === value.length - 1) throw new UsageError(`--federate takes "ISSUER SUBJECT" (one argument, a space between), got "${value}"`);
  return { issuer: value.slice(0, at), subject: value.slice(at + 1) };
}

function agentBody(flags: AgentFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (flags.name !== undefined) body.name = flags.name;
  if (flags.scope) body.scopes = flags.scope;
  if (flags.audience) body.audiences = flags.audience;
  if (flags.description !== undefined) body.description = flags.description;
  if (flags.owner !== undefined) body.owner = flags.owner;
  if (flags.ttl !== undefined) body.accessTokenTtlSeconds = flags.ttl;
  if (flags.requireDpop !== undefined) body.requireDpop = flags.requireDpop;
  if (flags.mayAct) body.mayAct = flags.mayAct;
  if (flags.federate) body.federatedIdentities = flags.federate.map(federatedIdentity);
  if (flags.federation === false) body.federatedIdentities = [];
  return body;
}

export function printAgent(agent: Agent): void {
  printRecord([
    ['agent id', agent.agentId],
    ['name', agent.name],
    ['status', agent.status],
    ['org', agent.orgId],
    ['scopes', list(agent.scopes)],
    ['audiences', list(agent.audiences)],
    ['description', agent.description],
    ['owner', agent.owner],
    ['token ttl', `${agent.accessTokenTtlSeconds} s`],
    ['token quota', agent.tokenQuota ? JSON.stringify(agent.tokenQuota) : null],
    ['require dpop', agent.requireDpop ? 'yes' : 'no'],
    ['may act for it', agent.mayAct.length ? list(agent.mayAct) : null],
    ['federated', agent.federatedIdentities.length ? agent.federatedIdentities.map((f) => `${f.issuer} ${f.subject}`).join(', ') : null],
    ['metadata', Object.keys(agent.metadata).length ? JSON.stringify(agent.metadata) : null],
    ['created', localTime(agent.createdAt)],
    ['updated', localTime(agent.updatedAt)],
  ]);
}

function withAgentFlags(command: Command): Command {
  return command
    .option('--scope <scope>', 'a scope the agent may request (repeat for several)', collect)
    .option('--audience <uri>', 'a resource (RFC 8707) the agent may get tokens for; the first is the default (repeat for several)', collect)
    .option('--description <text>', 'what the agent does')
    .option('--owner <owner>', 'who answers for the agent')
    .option('--ttl <seconds>', 'access token lifetime, 60 to 86400 seconds', integer(60, 86400))
    .option('--require-dpop', 'its tokens must be DPoP-bound (RFC 9449): /token without a DPoP proof is refused')
    .option('--no-require-dpop', 'its tokens may be plain bearer tokens (the default)')
    .option('--may-act <agent-id>', 'an agent of the org that may act for this one (RFC 8693 token exchange; repeat for several)', collect)
    .option(
      '--federate <"issuer subject">',
      "a JWT of this issuer with this sub gets the agent's tokens with no secret (jwt-bearer, RFC 7523); repeat for several; replaces the list",
      collect,
    );
}

export function registerAgents(program: Command): void {
  const agents = program.command('agents').description("the agents (OAuth clients) of the logged-in agent's org");

  agents
    .command('list')
    .description('list agents, a page at a time')
    .option('--status <status>', 'only agents in this status: active, suspended or decommissioned')
    .option('--page <n>', 'page number', integer(1), 1)
    .option('--limit <n>', 'agents per page (at most 100)', integer(1, 100), 20)
    .action(async (options: { status?: string; page: number; limit: number }, command: Command) => {
      const page = await managementApi(command).get<AgentList>('/agents', options);
      if (globals(command).json) return printJson(page);
      printTable(
        ['AGENT ID', 'NAME', 'STATUS', 'SCOPES', 'CREATED'],
        page.data.map((a) => [a.agentId, a.name, a.status, list(a.scopes), localTime(a.createdAt)]),
      );
      notePage(page, 'agents');
    });

  agents
    .command('get')
    .description('show one agent')
    .argument('<agent-id>')
    .action(async (agentId: string, _options: unknown, command: Command) => {
      const agent = await managementApi(command).get<Agent>(`/agents/${encodeURIComponent(agentId)}`);
      if (globals(command).json) return printJson(agent);
      printAgent(agent);
    });

  withAgentFlags(agents.command('create').description('register an agent (it has no secret yet: `credentials create` makes one)'))
    .requiredOption('--name <name>', "the agent's name")
    .action(async (options: AgentFlags, command: Command) => {
      const agent = await managementApi(command).request<Agent>('POST', '/agents', { body: agentBody(options) });
      if (globals(command).json) return printJson(agent);
      printAgent(agent);
    });

  withAgentFlags(agents.command('update').description('change the given fields of an agent; --scope, --audience and --federate replace the whole list'))
    .argument('<agent-id>')
    .option('--name <name>', "the agent's new name")
    .option('--no-federation', 'remove every federated identity')
    .action(async (agentId: string, options: AgentFlags, command: Command) => {
      const body = agentBody(options);
      if (!Object.keys(body).length)
        throw new UsageError(
          'nothing to change: give at least one of --name, --scope, --audience, --description, --owner, --ttl, --[no-]require-dpop, --may-act, --federate, --no-federation',
        );
      const agent = await managementApi(command).request<Agent>('PATCH', `/agents/${encodeURIComponent(agentId)}`, { body });
      if (globals(command).json) return printJson(agent);
      printAgent(agent);
    });

  for (const [name, status, description] of [
    ['suspend', 'suspended', 'stop an agent from getting tokens; its tokens introspect inactive at once'],
    ['reactivate', 'active', 'let a suspended agent get tokens again'],
  ] as const) {
    agents
      .command(name)
      .description(description)
      .argument('<agent-id>')
      .action(async (agentId: string, _options: unknown, command: Command) => {
        const agent = await managementApi(command).request<Agent>('PATCH', `/agents/${encodeURIComponent(agentId)}`, { body: { status } });
        if (globals(command).json) return printJson(agent);
        printAgent(agent);
      });
  }

  agents
    .command('decommission')
    .description('decommission an agent for good: revokes all its credentials and tokens; it cannot be undone')
    .argument('<agent-id>')
    .option('--yes', 'do not ask for confirmation (required when there is no terminal)')
    .action(async (agentId: string, options: { yes?: boolean }, command: Command) => {
      const api = managementApi(command);
      if (!options.yes) {
        if (!process.stdin.isTTY) throw new UsageError('decommissioning cannot be undone: pass --yes to confirm');
        const agent = await api.get<Agent>(`/agents/${encodeURIComponent(agentId)}`);
        const answer = await promptLine(`decommission ${agent.name} (${agent.agentId}) for good? type its name to confirm: `);
        if (answer !== agent.name) throw new UsageError('not confirmed; nothing was changed');
      }
      await api.request('DELETE', `/agents/${encodeURIComponent(agentId)}`);
      // 204: the API answers no JSON, so --json prints none either; the note goes to stderr.
      note(`agent ${agentId} decommissioned`);
    });
}
