// Agents: the list (status filter, pages), a create form, and an agent's page (edit, suspend,
// reactivate, decommission with a typed confirmation, and its credentials).

import { call, can, query } from './api.js';
import { act, badge, code, field, h, pageHeader, pager, problemSlot, replace, row, select, table, time, words } from './dom.js';
import { renderCredentials } from './credentials.js';

const LIMIT = 20;
const STATUSES = /** @type {[string, string][]} */ ([
  ['', 'All'],
  ['active', 'Active'],
  ['suspended', 'Suspended'],
  ['decommissioned', 'Decommissioned'],
]);

/** @param {{ status?: string, page?: number }} state */
function listHash(state) {
  return `#/agents${query({ status: state.status, page: state.page && state.page > 1 ? state.page : undefined })}`;
}

/** @param {HTMLElement} main @param {URLSearchParams} params */
export async function renderAgents(main, params) {
  const status = params.get('status') ?? '';
  const page = Math.max(1, Number(params.get('page') ?? 1) || 1);
  const list = await call('GET', `/agents${query({ status, page, limit: LIMIT })}`);
  const filter = select('status', STATUSES, status);
  filter.addEventListener('change', () => {
    location.hash = listHash({ status: /** @type {HTMLSelectElement} */ (filter).value });
  });
  const headings = ['Name', 'Status', 'Scopes', 'Owner', 'Created'];
  const rows = list.data.map((/** @type {any} */ a) =>
    row(headings, [
      h('a', { href: `#/agents/${encodeURIComponent(a.agentId)}` }, a.name),
      badge(a.status),
      a.scopes.length ? a.scopes.join(' ') : h('span', { class: 'muted' }, 'none'),
      a.owner ?? h('span', { class: 'muted' }, '—'),
      time(a.createdAt),
    ]),
  );
  replace(
    main,
    pageHeader('Agents', 'The OAuth clients of this org.'),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'agents-list-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'agents-list-title' }, 'All agents'), h('div', { class: 'filters' }, field('Status', filter))),
      rows.length ? table('Agents', headings, rows) : h('p', { class: 'empty' }, status ? `No ${status} agents.` : 'No agents yet.'),
      pager(list, (p) => listHash({ status, page: p }), 'agents'),
    ),
    can('agents:write') ? createAgentForm() : null,
  );
}

function agentFields(/** @type {any} */ agent = {}) {
  const inputs = {
    name: h('input', { name: 'name', required: true, maxlength: 100, value: agent.name ?? '' }),
    description: h('textarea', { name: 'description', rows: 2, maxlength: 1000 }),
    owner: h('input', { name: 'owner', maxlength: 200, value: agent.owner ?? '' }),
    scopes: h('input', { name: 'scopes', value: (agent.scopes ?? []).join(' '), spellcheck: 'false' }),
    audiences: h('input', { name: 'audiences', value: (agent.audiences ?? []).join(' '), spellcheck: 'false' }),
    ttl: h('input', { name: 'ttl', type: 'number', min: 60, max: 86400, value: agent.accessTokenTtlSeconds ?? '' }),
  };
  /** @type {HTMLTextAreaElement} */ (inputs.description).value = agent.description ?? '';
  const fields = h(
    'div',
    { class: 'grid' },
    field('Name', inputs.name),
    field('Owner', inputs.owner, 'A team or person to ask about it.'),
    h('div', { class: 'span-2' }, field('Description', inputs.description)),
    field('Scopes', inputs.scopes, 'Separated by spaces, e.g. orders:read'),
    field('Audiences', inputs.audiences, 'Resource URLs, separated by spaces; the first is the default.'),
    field('Access token TTL (seconds)', inputs.ttl, 'Empty: the service default.'),
  );
  const value = (/** @type {HTMLElement} */ el) => /** @type {HTMLInputElement} */ (el).value;
  return {
    fields,
    read() {
      const ttl = value(inputs.ttl).trim();
      return {
        name: value(inputs.name).trim(),
        description: value(inputs.description).trim() || null,
        owner: value(inputs.owner).trim() || null,
        scopes: words(value(inputs.scopes)),
        audiences: words(value(inputs.audiences)),
        accessTokenTtlSeconds: ttl ? Number(ttl) : null,
      };
    },
  };
}

function createAgentForm() {
  const { fields, read } = agentFields();
  const slot = problemSlot();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Create agent');
  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'create-agent-title' },
    h('h2', { id: 'create-agent-title' }, 'New agent'),
    fields,
    slot,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(/** @type {HTMLButtonElement} */ (button), slot, async () => {
      const input = read();
      /** @type {Record<string, unknown>} */
      const body = { name: input.name, scopes: input.scopes, audiences: input.audiences };
      if (input.description) body.description = input.description;
      if (input.owner) body.owner = input.owner;
      if (input.accessTokenTtlSeconds !== null) body.accessTokenTtlSeconds = input.accessTokenTtlSeconds;
      const agent = await call('POST', '/agents', body);
      location.hash = `#/agents/${encodeURIComponent(agent.agentId)}`;
    });
  });
  return form;
}

/** @param {HTMLElement} main @param {string} agentId @param {URLSearchParams} [params] `page` is the credentials' page */
export async function renderAgent(main, agentId, params = new URLSearchParams()) {
  const agent = await call('GET', `/agents/${encodeURIComponent(agentId)}`);
  const writable = can('agents:write') && agent.status !== 'decommissioned';
  const credentials = h('div', {});
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/agents' }, 'Agents'), ' / ', agent.name),
    h(
      'div',
      { class: 'page-header' },
      h('h1', {}, agent.name, ' ', badge(agent.status)),
      agent.description ? h('p', { class: 'lead' }, agent.description) : null,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'agent-facts-title' },
      h('h2', { id: 'agent-facts-title' }, 'Details'),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Client ID'),
        h('dd', {}, code(agent.clientId)),
        h('dt', {}, 'Owner'),
        h('dd', {}, agent.owner ?? '—'),
        h('dt', {}, 'Scopes'),
        h('dd', {}, agent.scopes.join(' ') || '—'),
        h('dt', {}, 'Audiences'),
        h('dd', {}, agent.audiences.join(' ') || '—'),
        h('dt', {}, 'Token lifetime'),
        h('dd', {}, `${agent.accessTokenTtlSeconds} s`),
        h('dt', {}, 'Created'),
        h('dd', {}, time(agent.createdAt)),
        h('dt', {}, 'Updated'),
        h('dd', {}, time(agent.updatedAt)),
      ),
    ),
    // Credentials first: they are what an agent's page is opened for most.
    credentials,
    writable ? editAgentForm(agent) : null,
    writable ? statusPanel(agent) : null,
    h('p', {}, h('a', { href: `#/audit?agentId=${encodeURIComponent(agent.agentId)}` }, 'This agent’s audit events')),
  );
  await renderCredentials(credentials, agent, Math.max(1, Number(params.get('page') ?? 1) || 1));
}

/** @param {any} agent */
function editAgentForm(agent) {
  const { fields, read } = agentFields(agent);
  const slot = problemSlot();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Save changes');
  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'edit-agent-title' },
    h('h2', { id: 'edit-agent-title' }, 'Edit'),
    fields,
    slot,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(/** @type {HTMLButtonElement} */ (button), slot, async () => {
      const input = read();
      // Only what changed is sent: the list fields compare as text, the TTL shown is the effective one.
      /** @type {Record<string, unknown>} */
      const body = {};
      if (input.name !== agent.name) body.name = input.name;
      if (input.description !== (agent.description ?? null)) body.description = input.description;
      if (input.owner !== (agent.owner ?? null)) body.owner = input.owner;
      if (input.scopes.join(' ') !== agent.scopes.join(' ')) body.scopes = input.scopes;
      if (input.audiences.join(' ') !== agent.audiences.join(' ')) body.audiences = input.audiences;
      if (input.accessTokenTtlSeconds !== agent.accessTokenTtlSeconds) body.accessTokenTtlSeconds = input.accessTokenTtlSeconds;
      if (Object.keys(body).length === 0) return;
      await call('PATCH', `/agents/${encodeURIComponent(agent.agentId)}`, body);
      await renderAgent(/** @type {HTMLElement} */ (document.getElementById('main')), agent.agentId);
    });
  });
  return form;
}

/** Suspend or reactivate, and decommission once the agent's name is typed. @param {any} agent */
function statusPanel(agent) {
  const path = `/agents/${encodeURIComponent(agent.agentId)}`;
  const reload = () => renderAgent(/** @type {HTMLElement} */ (document.getElementById('main')), agent.agentId);
  const slot = problemSlot();
  const toggle = h('button', { type: 'button' }, agent.status === 'active' ? 'Suspend' : 'Reactivate');
  toggle.addEventListener('click', () =>
    act(/** @type {HTMLButtonElement} */ (toggle), slot, async () => {
      await call('PATCH', path, { status: agent.status === 'active' ? 'suspended' : 'active' });
      await reload();
    }),
  );
  const confirmInput = h('input', { name: 'confirm', autocomplete: 'off', spellcheck: 'false' });
  const decommission = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'danger', disabled: true }, 'Decommission'));
  confirmInput.addEventListener('input', () => {
    decommission.disabled = /** @type {HTMLInputElement} */ (confirmInput).value !== agent.name;
  });
  const decommissionForm = h(
    'form',
    { class: 'danger-zone' },
    h('p', {}, 'Decommissioning revokes every credential and token of this agent, for good.'),
    field(`Type “${agent.name}” to confirm`, confirmInput),
    h('div', { class: 'actions' }, decommission),
  );
  decommissionForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (/** @type {HTMLInputElement} */ (confirmInput).value !== agent.name) return;
    void act(decommission, slot, async () => {
      await call('DELETE', path);
      await reload();
    });
  });
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': 'status-title' },
    h('h2', { id: 'status-title' }, 'Status'),
    h(
      'p',
      {},
      agent.status === 'active' ? 'A suspended agent gets no tokens and its tokens introspect inactive, until it is reactivated.' : 'This agent is suspended.',
      ' ',
    ),
    h('div', { class: 'actions' }, toggle),
    decommissionForm,
    slot,
  );
}
