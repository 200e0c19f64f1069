import type { Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import { globals, integer, managementApi } from '../context.ts';
import { localTime, printJson, printRecord, printTable, SecretSink, notePage } from '../output.ts';

type OrgList = components['schemas']['OrgList'];
type OrgCreated = components['schemas']['OrgCreated'];
type Usage = components['schemas']['Usage'];

const limits = (l: Record<string, number | undefined>) =>
  Object.entries(l)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ') || 'none';

export function registerOrgs(program: Command): void {
  const orgs = program.command('orgs').description('tenants (operators of the root org only)');

  orgs
    .command('list')
    .description('list orgs, a page at a time')
    .option('--page <n>', 'page number', integer(1), 1)
    .option('--limit <n>', 'orgs per page (at most 100)', integer(1, 100), 20)
    .action(async (options: { page: number; limit: number }, command: Command) => {
      const page = await managementApi(command).get<OrgList>('/orgs', options);
      if (globals(command).json) return printJson(page);
      printTable(
        ['ORG ID', 'NAME', 'LIMITS', 'CREATED'],
        page.data.map((o) => [o.orgId, o.name, limits(o.limits), localTime(o.createdAt)]),
      );
      notePage(page, 'orgs');
    });

  orgs
    .command('create')
    .description("create an org and its first admin agent; the admin's secret is shown once")
    .requiredOption('--name <name>', "the org's name")
    .option('--out <file>', "write the admin's secret to this new file (mode 0600) instead of printing it")
    .action(async (options: { name: string; out?: string }, command: Command) => {
      const api = managementApi(command);
      const sink = new SecretSink(options.out);
      const created = await sink.around(() => api.request<OrgCreated>('POST', '/orgs', { body: { name: options.name } }));
      sink.deliver(created.admin.clientSecret);
      const { clientSecret, ...admin } = created.admin;
      if (globals(command).json) return printJson(sink.toFile ? { ...created, admin } : created);
      printRecord([
        ['org id', created.orgId],
        ['name', created.name],
        ['created', localTime(created.createdAt)],
        ['admin agent id', admin.agentId],
        ['admin client id', admin.clientId],
        ...(sink.toFile ? [] : [['admin client secret', clientSecret] as [string, string]]),
      ]);
    });
}

export function registerUsage(program: Command): void {
  program
    .command('usage')
    .description("what the logged-in agent's org holds and has used, and its limits")
    .action(async (_options: unknown, command: Command) => {
      const usage = await managementApi(command).get<Usage>('/usage');
      if (globals(command).json) return printJson(usage);
      printRecord([
        ['org', usage.orgId],
        ['active agents', usage.agents.active],
        ['suspended agents', usage.agents.suspended],
        ['active credentials', usage.credentials.active],
        ['tokens today (UTC)', usage.tokensIssued.today],
        ['tokens last 30 days', usage.tokensIssued.last30Days],
        ['limits', limits(usage.limits)],
      ]);
    });
}
