// An agent's credentials: create a secret or a key pair (the secret or private key shown once),
// rotate with a grace period, revoke. Lists never hold a secret (the API does not send one).

import { call, can, query } from './api.js';
import { act, badge, code, field, h, pager, problemSlot, replace, row, select, table, time } from './dom.js';

const LIMIT = 20;

const ALGS = /** @type {[string, string][]} */ ([
  ['ES256', 'ES256 (P-256)'],
  ['EdDSA', 'EdDSA (Ed25519)'],
  ['RS256', 'RS256 (RSA)'],
  ['PS256', 'PS256 (RSA-PSS)'],
]);

/**
 * The one time a secret or private key is shown: a read-only box, a copy button and a warning.
 * Closing it drops the value from the page.
 * @param {string} title
 * @param {{ label: string, value: string }[]} values
 * @param {() => void} onClose
 */
export function shownOnce(title, values, onClose) {
  const status = h('p', { class: 'copy-status', role: 'status' });
  const box = h(
    'section',
    { class: 'once', 'aria-labelledby': 'once-title' },
    h('h3', { id: 'once-title' }, title),
    h('p', { class: 'warning' }, 'Copy it now and keep it somewhere safe. It is shown only this once: the server keeps no copy it could show again.'),
    ...values.map(({ label, value }) => {
      const area = /** @type {HTMLTextAreaElement} */ (
        h('textarea', { readonly: true, rows: Math.min(10, value.split('\n').length + 1), spellcheck: 'false', class: 'secret' })
      );
      area.value = value;
      const copy = h('button', { type: 'button' }, `Copy ${label.toLowerCase()}`);
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(value);
          status.textContent = `${label} copied.`;
        } catch {
          // Clipboard access may be refused (permissions, insecure origin): select it for a manual copy.
          area.select();
          status.textContent = 'Press Ctrl+C (⌘C) to copy the selected text.';
        }
      });
      return h('div', { class: 'once-value' }, field(label, area), h('div', { class: 'actions' }, copy));
    }),
    status,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: close }, 'I have copied it')),
  );
  function close() {
    box.remove();
    onClose();
  }
  return box;
}

/** @typedef {{ title: string, created: any }} Shown  a credential just created or rotated, with its secret */

/**
 * @param {HTMLElement} container
 * @param {any} agent
 * @param {number} page
 * @param {Shown} [shown] shown once above the list, after the list is fetched again
 */
export async function renderCredentials(container, agent, page, shown) {
  const base = `/agents/${encodeURIComponent(agent.agentId)}/credentials`;
  const list = await call('GET', `${base}${query({ page, limit: LIMIT })}`);
  const writable = can('agents:write') && agent.status !== 'decommissioned';
  const onceSlot = h('div', {});
  const listSlot = problemSlot();
  /** @param {Shown} [next] */
  const reload = (next) => renderCredentials(container, agent, page, next);

  const headings = ['Credential', 'Type', 'Status', 'Created', 'Expires', 'Rotated', ...(writable ? ['Actions'] : [])];
  const rows = list.data.map((/** @type {any} */ c) =>
    row(headings, [
      h('div', {}, c.name ? h('strong', {}, c.name) : null, c.name ? h('br') : null, code(c.credentialId)),
      h(
        'div',
        {},
        c.type === 'private_key_jwt' ? 'Key pair' : 'Secret',
        c.alg ? h('small', { class: 'muted' }, ` ${c.alg}`) : null,
        c.kid ? h('div', {}, code(c.kid)) : null,
      ),
      c.revokedAt ? h('div', {}, badge(c.status), h('br'), h('small', { class: 'muted' }, time(c.revokedAt))) : badge(c.status),
      time(c.createdAt),
      time(c.expiresAt),
      c.rotatedAt
        ? h(
            'div',
            {},
            time(c.rotatedAt),
            c.previousSecretExpiresAt ? h('small', { class: 'muted' }, h('br'), 'old until ', time(c.previousSecretExpiresAt)) : null,
          )
        : time(null),
      ...(writable ? [c.status === 'active' ? credentialActions(base, c, listSlot, reload) : h('span', { class: 'muted' }, '—')] : []),
    ]),
  );
  replace(
    container,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'credentials-title' },
      h('h2', { id: 'credentials-title' }, 'Credentials'),
      onceSlot,
      rows.length ? table('Credentials', headings, rows) : h('p', { class: 'empty' }, 'No credentials.'),
      list.total > LIMIT ? pager(list, (p) => `#/agents/${encodeURIComponent(agent.agentId)}${query({ page: p > 1 ? p : undefined })}`, 'credentials') : null,
      listSlot,
      writable ? createCredentialForm(base, reload) : null,
    ),
  );
  if (shown) showSecret(onceSlot, shown.title, shown.created);
}

/**
 * Rotate (with a grace period) and revoke (after a second click) for one active credential.
 * @param {string} base @param {any} c @param {HTMLElement} slot @param {(shown?: Shown) => Promise<void>} reload
 */
function credentialActions(base, c, slot, reload) {
  const label = c.name ?? c.credentialId.slice(0, 8);
  const grace = h('input', { type: 'number', min: 0, max: 604800, value: 3600, name: 'grace', class: 'narrow' });
  const rotate = h('button', { type: 'button' }, 'Rotate');
  rotate.addEventListener('click', () =>
    act(/** @type {HTMLButtonElement} */ (rotate), slot, async () => {
      const value = /** @type {HTMLInputElement} */ (grace).value;
      const rotated = await call('POST', `${base}/${c.credentialId}/rotate`, { gracePeriodSeconds: value === '' ? 0 : Number(value) });
      await reload({ title: 'New secret after rotation', created: rotated });
    }),
  );
  const revoke = h('button', { type: 'button', class: 'danger' }, 'Revoke');
  const confirm = h('span', { class: 'confirm', hidden: true });
  revoke.addEventListener('click', () => {
    revoke.hidden = true;
    const yes = h('button', { type: 'button', class: 'danger' }, 'Confirm revoke');
    const no = h('button', { type: 'button', class: 'link' }, 'Cancel');
    yes.addEventListener('click', () =>
      act(/** @type {HTMLButtonElement} */ (yes), slot, async () => {
        await call('DELETE', `${base}/${c.credentialId}`);
        await reload();
      }),
    );
    no.addEventListener('click', () => {
      confirm.hidden = true;
      revoke.hidden = false;
      revoke.focus();
    });
    replace(confirm, `Revoke ${label} now? `, yes, ' ', no);
    confirm.hidden = false;
    yes.focus();
  });
  return h(
    'div',
    { class: 'row-actions' },
    h('div', { class: 'inline-field' }, field(`Grace period for ${label} (seconds)`, grace), rotate),
    h('div', {}, revoke, confirm),
  );
}

/** @param {HTMLElement} onceSlot @param {string} title @param {any} created */
function showSecret(onceSlot, title, created) {
  /** @type {{ label: string, value: string }[]} */
  const values = [];
  if (created.clientSecret) values.push({ label: 'New client secret', value: created.clientSecret });
  if (created.privateKeyPem) values.push({ label: 'Private key (PEM)', value: created.privateKeyPem });
  if (created.privateJwk) values.push({ label: 'Private key (JWK)', value: JSON.stringify(created.privateJwk, null, 2) });
  const facts = [h('p', {}, 'Client ID ', code(created.clientId), created.kid ? [' · key id ', code(created.kid)] : null)];
  const box = shownOnce(title, values, () => onceSlot.replaceChildren());
  box.insertBefore(h('div', {}, ...facts), box.children[2]);
  replace(onceSlot, box);
  box.querySelector('textarea')?.focus();
}

/** @param {string} base @param {(shown?: Shown) => Promise<void>} reload */
function createCredentialForm(base, reload) {
  const typeSecret = h('input', { type: 'radio', name: 'type', value: 'secret', checked: true, id: 'type-secret' });
  const typeKey = h('input', { type: 'radio', name: 'type', value: 'private_key_jwt', id: 'type-key' });
  const name = h('input', { name: 'name', maxlength: 100, placeholder: 'e.g. prod-signer' });
  const alg = select('alg', ALGS, 'ES256');
  const algField = field('Key algorithm', alg);
  algField.hidden = true;
  const expires = h('input', { name: 'expiresAt', type: 'datetime-local' });
  const slot = problemSlot();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Create secret');
  const isKey = () => /** @type {HTMLInputElement} */ (typeKey).checked;
  const sync = () => {
    algField.hidden = !isKey();
    button.textContent = isKey() ? 'Create key pair' : 'Create secret';
  };
  typeSecret.addEventListener('change', sync);
  typeKey.addEventListener('change', sync);
  const form = h(
    'form',
    { class: 'subform', 'aria-labelledby': 'new-credential-title' },
    h('h3', { id: 'new-credential-title' }, 'New credential'),
    h(
      'fieldset',
      { class: 'choice' },
      h('legend', {}, 'Type'),
      h('label', { for: 'type-secret' }, typeSecret, ' Client secret'),
      h('label', { for: 'type-key' }, typeKey, ' Key pair (private_key_jwt)'),
    ),
    h('div', { class: 'grid' }, field('Credential name (optional)', name), algField, field('Expires (optional, local time)', expires)),
    slot,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(/** @type {HTMLButtonElement} */ (button), slot, async () => {
      /** @type {Record<string, unknown>} */
      const body = {};
      // A secret is the default type: no `type` member is sent for it, so servers that know only secrets accept the request.
      if (isKey()) Object.assign(body, { type: 'private_key_jwt', alg: /** @type {HTMLSelectElement} */ (alg).value });
      const nameValue = /** @type {HTMLInputElement} */ (name).value.trim();
      if (nameValue) body.name = nameValue;
      const expiresValue = /** @type {HTMLInputElement} */ (expires).value;
      if (expiresValue) body.expiresAt = new Date(expiresValue).toISOString();
      const created = await call('POST', base, body);
      await reload({ title: created.privateKeyPem ? 'New key pair' : 'New client secret', created });
    });
  });
  return form;
}
