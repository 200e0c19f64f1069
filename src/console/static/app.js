// The console's shell: sign-in, navigation and the hash router. Each page is a module with a
// render(main, route) function; a page is offered only when the token's scopes allow it.

import { can, currentSession, isOperator, signIn, signOut, whenSignedOut } from './api.js';
import { act, field, h, pageHeader, problemSlot, replace, showProblem } from './dom.js';
import { renderOverview } from './overview.js';
import { renderAgents, renderAgent } from './agents.js';
import { renderAudit, renderAuditEvent } from './audit.js';
import { renderKeys } from './keys.js';
import { renderOrgs } from './orgs.js';

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
const sessionBox = /** @type {HTMLElement} */ (document.getElementById('session'));

/** @typedef {{ path: string[], params: URLSearchParams }} Route */

/** The pages, in the order of the navigation; `allowed` says whether the token's scopes offer it. */
const PAGES = [
  { href: '#/overview', label: 'Overview', key: 'overview', allowed: () => true },
  { href: '#/agents', label: 'Agents', key: 'agents', allowed: () => can('agents:read') },
  { href: '#/audit', label: 'Audit log', key: 'audit', allowed: () => can('audit:read') },
  { href: '#/keys', label: 'Keys', key: 'keys', allowed: () => can('keys:read') },
  { href: '#/orgs', label: 'Orgs', key: 'orgs', allowed: () => can('orgs:read') },
];

/** @returns {Route} */
function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = hash.split('?');
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

function renderSignIn(notice = '') {
  nav.hidden = true;
  sessionBox.hidden = true;
  const clientId = h('input', { name: 'clientId', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = h('input', { name: 'clientSecret', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const slot = problemSlot();
  const form = h(
    'form',
    { class: 'panel sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    h('p', { class: 'lead' }, 'With the client id and secret of an operator or an org admin agent. The token stays in this tab only; a reload signs out.'),
    notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
    field('Client ID', clientId),
    field('Client secret', secret),
    slot,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(/** @type {HTMLButtonElement} */ (button), slot, async () => {
      const id = /** @type {HTMLInputElement} */ (clientId).value.trim();
      const pass = /** @type {HTMLInputElement} */ (secret).value;
      // The secret leaves the field as soon as it is used: nothing on the page keeps it.
      /** @type {HTMLInputElement} */ (secret).value = '';
      await signIn(id, pass);
      if (!location.hash || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/overview';
      else void route();
    });
  });
  replace(main, h('div', { class: 'sign-in-wrap' }, form));
  clientId.focus();
}

function renderShell() {
  const session = currentSession();
  if (!session) return;
  const here = currentRoute().path[0] ?? 'overview';
  replace(
    nav,
    h(
      'ul',
      {},
      ...PAGES.filter((p) => p.allowed()).map((p) => h('li', {}, h('a', { href: p.href, 'aria-current': p.key === here ? 'page' : false }, p.label))),
    ),
  );
  replace(
    sessionBox,
    h(
      'span',
      { class: 'who', title: [...session.scopes].join(' ') },
      isOperator() ? 'Operator' : 'Org admin',
      ' · ',
      h('code', {}, session.clientId.slice(0, 8)),
    ),
    h('button', { type: 'button', class: 'link', onclick: () => signOut('Signed out.') }, 'Sign out'),
  );
  nav.hidden = false;
  sessionBox.hidden = false;
}

async function route() {
  if (!currentSession()) {
    renderSignIn();
    return;
  }
  renderShell();
  const r = currentRoute();
  const [page, id] = r.path;
  const entry = PAGES.find((p) => p.key === (page ?? 'overview'));
  if (!entry) {
    replace(main, pageHeader('Not found', 'No such page of the console.'));
    return;
  }
  if (!entry.allowed()) {
    replace(main, pageHeader(entry.label, 'This token’s scopes do not allow this page.'));
    return;
  }
  replace(main, h('p', { class: 'muted loading', role: 'status' }, 'Loading…'));
  try {
    if (entry.key === 'overview') await renderOverview(main);
    else if (entry.key === 'agents') await (id ? renderAgent(main, id, r.params) : renderAgents(main, r.params));
    else if (entry.key === 'audit') await (id ? renderAuditEvent(main, id) : renderAudit(main, r.params));
    else if (entry.key === 'keys') await renderKeys(main);
    else if (entry.key === 'orgs') await renderOrgs(main, r.params);
  } catch (err) {
    // A 401 has signed out already and shows the sign-in form: leave it there.
    if (!currentSession()) return;
    // A page that cannot load says why where its content would be.
    const slot = problemSlot();
    replace(main, pageHeader(entry.label), slot);
    showProblem(slot, err);
  }
  document.title = `${entry.label} · agent-idp console`;
}

whenSignedOut((reason) => {
  renderSignIn(reason);
});

window.addEventListener('hashchange', () => {
  void route().then(() => main.focus({ preventScroll: true }));
});
void route();
