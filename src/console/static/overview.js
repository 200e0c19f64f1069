// Overview: the org's usage (GET /api/v1/usage), tokens per day, and for operators the signing keys.

import { call, can, currentSession } from './api.js';
import { code, h, pageHeader, replace, time } from './dom.js';
import { tokensPerDayChart } from './chart.js';

/** @param {string} label @param {number | string} value @param {string} [note] */
function stat(label, value, note) {
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', {}, h('span', { class: 'stat-value' }, String(value)), note ? h('small', {}, note) : null));
}

/** @param {HTMLElement} main */
export async function renderOverview(main) {
  const sections = [pageHeader('Overview', 'What this org holds and has used.')];
  if (can('audit:read')) {
    const usage = await call('GET', '/usage');
    const limits = Object.entries(usage.limits ?? {});
    sections.push(
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'usage-title' },
        h('h2', { id: 'usage-title' }, 'Usage'),
        h(
          'dl',
          { class: 'stats' },
          stat('Active agents', usage.agents.active),
          stat('Suspended agents', usage.agents.suspended),
          stat('Active credentials', usage.credentials.active),
          stat('Tokens today', usage.tokensIssued.today, 'UTC day'),
          stat('Tokens, 30 days', usage.tokensIssued.last30Days),
        ),
        h(
          'p',
          { class: 'muted' },
          'Org ',
          code(usage.orgId),
          limits.length ? ` · limits: ${limits.map(([k, v]) => `${k} ${v}`).join(', ')}` : ' · no limits set',
        ),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'chart-heading' },
        h('h2', { id: 'chart-heading' }, 'Tokens issued per day'),
        usage.tokensIssued.perDay ? tokensPerDayChart(usage.tokensIssued.perDay) : h('p', { class: 'muted' }, 'This server does not report tokens per day.'),
      ),
    );
  } else {
    sections.push(h('p', { class: 'panel muted' }, 'Usage needs the audit:read scope, which this token does not hold.'));
  }
  if (can('keys:read')) {
    const { data: keys } = await call('GET', '/keys');
    /** @param {string} status */
    const byStatus = (status) => keys.filter((/** @type {{ status: string }} */ k) => k.status === status);
    const active = byStatus('active')[0];
    const next = byStatus('next')[0];
    sections.push(
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'keys-state-title' },
        h('h2', { id: 'keys-state-title' }, 'Signing keys'),
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Active'),
          h('dd', {}, active ? [code(active.kid), ` ${active.alg} since `, time(active.activatedAt)] : 'none'),
          h('dt', {}, 'Next'),
          h('dd', {}, next ? [code(next.kid), ` ${next.alg}, published `, time(next.createdAt)] : 'none'),
          h('dt', {}, 'Retired, still published'),
          h('dd', {}, String(byStatus('retired').length)),
          h('dt', {}, 'Revoked'),
          h('dd', {}, String(byStatus('revoked').length)),
        ),
        h('p', {}, h('a', { href: '#/keys' }, 'Manage keys')),
      ),
    );
  }
  sections.push(h('p', { class: 'muted small' }, 'Signed in as ', code(currentSession()?.clientId), '.'));
  replace(main, ...sections);
}
