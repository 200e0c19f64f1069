// Audit log: filters (action, outcome, agent, time), keyset pages (newest first), an event's detail.

import { call, query } from './api.js';
import { act, badge, code, field, h, pageHeader, problemSlot, replace, row, select, table, time } from './dom.js';

const LIMIT = 50;

// The actions the server records (src/audit/audit-event.ts AUDIT_ACTIONS); the filter also takes
// any other `area.verb` typed in, so a newer server's actions stay reachable.
const ACTIONS = [
  'org.created',
  'org.updated',
  'agent.created',
  'agent.updated',
  'agent.suspended',
  'agent.reactivated',
  'agent.decommissioned',
  'credential.created',
  'credential.rotated',
  'credential.revoked',
  'token.issued',
  'token.exchanged',
  'token.denied',
  'token.introspected',
  'token.revoked',
  'key.created',
  'key.rotated',
  'key.revoked',
  'key.deleted',
  'admin.denied',
  'auth.throttled',
  'audit.retention_purged',
  'audit.partitions_created',
];

// The cursors of the pages before this one, for "Newer": keyset pages only link forwards. Kept in
// memory for the filters they belong to; other filters, or the first page, start afresh.
/** @type {string[]} */
let previousCursors = [];
let lastFilters = '';

/** A datetime-local value (local time) as ISO 8601, or undefined. @param {string} value */
function isoOf(value) {
  return value ? new Date(value).toISOString() : undefined;
}

/** An ISO instant as a datetime-local value in local time. @param {string | null} iso */
function localInputOf(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** @param {{ type: string, id: string | null }} who */
function party(who) {
  return h('span', {}, h('span', { class: 'muted' }, `${who.type} `), who.id ? code(who.id) : null);
}

/** @param {HTMLElement} main @param {URLSearchParams} params */
export async function renderAudit(main, params) {
  const filters = {
    action: params.get('action') ?? '',
    outcome: params.get('outcome') ?? '',
    agentId: params.get('agentId') ?? '',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
  };
  const cursor = params.get('cursor') ?? undefined;
  const key = JSON.stringify(filters);
  if (key !== lastFilters || !cursor) previousCursors = [];
  lastFilters = key;

  const action = h('input', { name: 'action', list: 'audit-actions', value: filters.action, spellcheck: 'false', placeholder: 'any' });
  const actions = h('datalist', { id: 'audit-actions' }, ...ACTIONS.map((a) => h('option', { value: a })));
  const outcome = select(
    'outcome',
    [
      ['', 'Any'],
      ['success', 'Success'],
      ['failure', 'Failure'],
    ],
    filters.outcome,
  );
  const agentId = h('input', { name: 'agentId', value: filters.agentId, spellcheck: 'false', placeholder: 'agent id' });
  const from = h('input', { name: 'from', type: 'datetime-local', value: localInputOf(filters.from) });
  const to = h('input', { name: 'to', type: 'datetime-local', value: localInputOf(filters.to) });
  const slot = problemSlot();
  const apply = h('button', { type: 'submit', class: 'primary' }, 'Apply filters');
  const reset = h('a', { href: '#/audit', class: 'button' }, 'Clear');
  const form = h(
    'form',
    { class: 'panel filters-form', 'aria-label': 'Audit filters' },
    h(
      'div',
      { class: 'grid grid-5' },
      field('Action', action),
      actions,
      field('Outcome', outcome),
      field('Agent ID', agentId),
      field('From (local time)', from),
      field('To (local time)', to),
    ),
    h('div', { class: 'actions' }, apply, reset),
  );
  /** @param {HTMLElement} el */
  const v = (el) => /** @type {HTMLInputElement} */ (el).value.trim();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/audit${query({ action: v(action), outcome: v(outcome), agentId: v(agentId), from: isoOf(v(from)), to: isoOf(v(to)) })}`;
  });

  const results = h('section', { class: 'panel', 'aria-labelledby': 'audit-results-title' }, h('h2', { id: 'audit-results-title' }, 'Events'), slot);
  replace(main, pageHeader('Audit log', 'Security events of this org, newest first. Kept for 90 days.'), form, results);

  await act(null, slot, async () => {
    const page = await call('GET', `/audit${query({ ...filters, limit: LIMIT, cursor })}`);
    const headings = ['Time', 'Action', 'Outcome', 'Actor', 'Target', 'Event'];
    const rows = page.data.map((/** @type {any} */ e) =>
      row(headings, [
        time(e.occurredAt),
        h('code', { class: 'action' }, e.action),
        badge(e.outcome),
        party(e.actor),
        party(e.target),
        h('a', { href: `#/audit/${encodeURIComponent(e.eventId)}`, 'aria-label': `Details of ${e.action} at ${e.occurredAt}` }, 'Details'),
      ]),
    );
    /** @param {string | undefined} at */
    const pageHash = (at) => `#/audit${query({ ...filters, cursor: at })}`;
    const newer = h('button', { type: 'button', disabled: !cursor }, 'Newer');
    newer.addEventListener('click', () => {
      // The page before this one: its cursor was kept when "Older" left it ('' = the first page).
      location.hash = pageHash(previousCursors.pop() || undefined);
    });
    const older = h('button', { type: 'button', disabled: !page.nextCursor }, 'Older');
    older.addEventListener('click', () => {
      previousCursors.push(cursor ?? '');
      location.hash = pageHash(page.nextCursor);
    });
    results.append(
      rows.length ? table('Audit events', headings, rows) : h('p', { class: 'empty' }, 'No events match.'),
      h('nav', { class: 'pager', 'aria-label': 'Audit pages' }, newer, h('span', { class: 'muted' }, `${page.data.length} events on this page`), older),
    );
  });
}

/** @param {HTMLElement} main @param {string} eventId */
export async function renderAuditEvent(main, eventId) {
  const e = await call('GET', `/audit/${encodeURIComponent(eventId)}`);
  const facts = [
    ['Event ID', code(e.eventId)],
    ['Time', time(e.occurredAt)],
    ['Action', h('code', {}, e.action)],
    ['Outcome', badge(e.outcome)],
    ['Actor', party(e.actor)],
    ['Target', party(e.target)],
    ['Org', code(e.orgId)],
    ['Request ID', code(e.requestId)],
    ['IP address', e.ip ?? '—'],
    ['User agent', e.userAgent ?? '—'],
  ];
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/audit' }, 'Audit log'), ' / ', e.action),
    pageHeader(e.action, 'One audit event.'),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'event-facts-title' },
      h('h2', { id: 'event-facts-title' }, 'Event'),
      h('dl', { class: 'facts' }, ...facts.flatMap(([label, value]) => [h('dt', {}, /** @type {string} */ (label)), h('dd', {}, /** @type {any} */ (value))])),
      h('h3', {}, 'Details'),
      h('pre', { class: 'json', tabindex: 0, 'aria-label': 'Event details (JSON)' }, JSON.stringify(e.details ?? {}, null, 2)),
    ),
  );
}
