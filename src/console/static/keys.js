// Signing keys (operators): the list, a new next key, rotation, revocation, deletion of a revoked key.

import { call, can } from './api.js';
import { act, badge, code, field, h, pageHeader, problemSlot, replace, row, select, table, time } from './dom.js';

const ALGS = /** @type {[string, string][]} */ ([
  ['RS256', 'RS256'],
  ['PS256', 'PS256'],
  ['ES256', 'ES256'],
  ['EdDSA', 'EdDSA'],
]);

/** @param {HTMLElement} main */
export async function renderKeys(main) {
  const { data: keys } = await call('GET', '/keys');
  const writable = can('keys:write');
  const slot = problemSlot();
  const reload = () => renderKeys(main);
  const headings = ['Key ID', 'Algorithm', 'Status', 'Created', 'Activated', 'Retired', 'Revoked', ...(writable ? ['Actions'] : [])];
  const rows = keys.map((/** @type {any} */ k) =>
    row(headings, [
      code(k.kid),
      k.alg,
      badge(k.status),
      time(k.createdAt),
      time(k.activatedAt),
      time(k.retiredAt),
      time(k.revokedAt),
      ...(writable ? [keyActions(k, slot, reload)] : []),
    ]),
  );
  const panels = [
    pageHeader('Signing keys', 'next → active → retired, published in the JWKS until their tokens have expired; revoked keys are unpublished at once.'),
    h('section', { class: 'panel', 'aria-labelledby': 'keys-title' }, h('h2', { id: 'keys-title' }, 'Keys'), table('Signing keys', headings, rows), slot),
  ];
  if (writable) panels.push(keyForms(reload));
  replace(main, ...panels);
}

/** @param {any} k @param {HTMLElement} slot @param {() => Promise<void>} reload */
function keyActions(k, slot, reload) {
  const kid = encodeURIComponent(k.kid);
  if (k.status === 'revoked') {
    const remove = h('button', { type: 'button', 'aria-label': `Delete key ${k.kid}` }, 'Delete');
    remove.addEventListener('click', () =>
      act(/** @type {HTMLButtonElement} */ (remove), slot, async () => {
        await call('DELETE', `/keys/${kid}`);
        await reload();
      }),
    );
    return remove;
  }
  const revoke = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${k.kid}` }, 'Revoke');
  const confirm = h('span', { hidden: true });
  revoke.addEventListener('click', () => {
    revoke.hidden = true;
    const yes = h('button', { type: 'button', class: 'danger' }, 'Confirm revoke');
    const no = h('button', { type: 'button', class: 'link' }, 'Cancel');
    yes.addEventListener('click', () =>
      act(/** @type {HTMLButtonElement} */ (yes), slot, async () => {
        await call('POST', `/keys/${kid}/revoke`);
        await reload();
      }),
    );
    no.addEventListener('click', () => {
      confirm.hidden = true;
      revoke.hidden = false;
      revoke.focus();
    });
    replace(confirm, k.status === 'active' ? 'Tokens it signed stop working. ' : '', yes, ' ', no);
    confirm.hidden = false;
    yes.focus();
  });
  return h('div', {}, revoke, confirm);
}

/** @param {() => Promise<void>} reload */
function keyForms(reload) {
  const slot = problemSlot();
  const alg = select('alg', ALGS, 'RS256');
  const create = h('button', { type: 'submit' }, 'Create next key');
  const form = h('form', { class: 'inline-form' }, field('Algorithm of the new key', alg), create);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(/** @type {HTMLButtonElement} */ (create), slot, async () => {
      await call('POST', '/keys', { alg: /** @type {HTMLSelectElement} */ (alg).value });
      await reload();
    });
  });
  const rotate = h('button', { type: 'button', class: 'primary' }, 'Rotate now');
  rotate.addEventListener('click', () =>
    act(/** @type {HTMLButtonElement} */ (rotate), slot, async () => {
      await call('POST', '/keys/rotate');
      await reload();
    }),
  );
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': 'key-actions-title' },
    h('h2', { id: 'key-actions-title' }, 'Change keys'),
    h('p', {}, 'Rotating promotes the next key at once, retires the active one, and creates a new next key.'),
    h('div', { class: 'actions' }, rotate),
    form,
    slot,
  );
}
