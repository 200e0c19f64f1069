// Orgs (operators): the tenants, paged, and a new org with its first admin (its secret shown once).

import { call, can, query } from './api.js';
import { act, code, field, h, pageHeader, pager, problemSlot, replace, row, table, time } from './dom.js';
import { shownOnce } from './credentials.js';

const LIMIT = 20;

/**
 * @param {HTMLElement} main
 * @param {URLSearchParams} params
 * @param {any} [created] an org just created: its admin's secret is shown once
 */
export async function renderOrgs(main, params, created) {
  const page = Math.max(1, Number(params.get('page') ?? 1) || 1);
  const list = await call('GET', `/orgs${query({ page, limit: LIMIT })}`);
  const headings = ['Name', 'Org ID', 'Limits', 'Created'];
  const rows = list.data.map((/** @type {any} */ o) =>
    row(headings, [
      o.name,
      code(o.orgId),
      Object.entries(o.limits ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || h('span', { class: 'muted' }, 'none'),
      time(o.createdAt),
    ]),
  );
  const onceSlot = h('div', {});
  replace(
    main,
    pageHeader('Orgs', 'The tenants of this service.'),
    onceSlot,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'orgs-title' },
      h('h2', { id: 'orgs-title' }, 'All orgs'),
      table('Orgs', headings, rows),
      pager(list, (p) => `#/orgs${query({ page: p > 1 ? p : undefined })}`, 'orgs'),
    ),
    can('orgs:write') ? createOrgForm(main) : null,
  );
  if (created) {
    const admin = [
      { label: 'Admin client ID', value: created.admin.clientId },
      { label: 'Admin client secret', value: created.admin.clientSecret },
    ];
    replace(
      onceSlot,
      shownOnce(`Admin of ${created.name}`, admin, () => onceSlot.replaceChildren()),
    );
  }
}

/** @param {HTMLElement} main */
function createOrgForm(main) {
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const slot = problemSlot();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Create org');
  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'create-org-title' },
    h('h2', { id: 'create-org-title' }, 'New org'),
    h('p', { class: 'muted' }, 'It comes with its first admin agent (agents:read agents:write audit:read), whose secret is shown once.'),
    field('Org name', name),
    slot,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(/** @type {HTMLButtonElement} */ (button), slot, async () => {
      const org = await call('POST', '/orgs', { name: /** @type {HTMLInputElement} */ (name).value.trim() });
      await renderOrgs(main, new URLSearchParams(), org);
    });
  });
  return form;
}
