// Small DOM helpers. Everything that came from the API reaches the page as text nodes or
// attribute values set through the DOM, never as markup, so no value can inject anything.

/**
 * An element with attributes (`on*` keys are listeners, `class` the class name, `false`/`null`/
 * `undefined` leave an attribute off) and children (strings become text nodes).
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Node | string | number | null | undefined | false | Array<Node | string>)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (key === 'class') el.className = String(value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** @param {Element} el @param {unknown[]} children */
function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. @param {Element} el @param {...unknown} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let nextId = 0;
/** A unique id, to tie a label to its control. @param {string} prefix */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * A labelled form control: the label names it for screen readers and for getByLabel.
 * @param {string} label
 * @param {HTMLElement} control
 * @param {string} [hint]
 */
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h('small', { class: 'hint', id: `${id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** A <select> of [value, label] pairs. @param {string} name @param {[string, string][]} options @param {string} [selected] */
export function select(name, options, selected = '') {
  return h('select', { name }, ...options.map(([value, label]) => h('option', { value, selected: value === selected }, label)));
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A timestamp in the browser's local time, with the ISO value on hover. @param {string | null | undefined} iso */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: iso }, dateFormat.format(new Date(iso)));
}

/** A status as a coloured badge (the colour is a class, the word is the text). @param {string} status */
export function badge(status) {
  return h('span', { class: `badge badge-${status}` }, status);
}

/** Where a problem (RFC 9457) or a network failure is told, next to the control that caused it. */
export function problemSlot() {
  return h('div', { class: 'problem', role: 'alert', hidden: true });
}

/**
 * Shows an error in its slot: the problem's title and detail, and each invalid field.
 * @param {HTMLElement} slot
 * @param {unknown} err
 */
export function showProblem(slot, err) {
  const problem = /** @type {{ title?: string, detail?: string, status?: number, errors?: { field?: string, message?: string, path?: string }[] }} */ (
    err && typeof err === 'object' && 'problem' in err ? err.problem : { title: 'Error', detail: err instanceof Error ? err.message : String(err) }
  );
  const items = (problem.errors ?? []).map((e) => h('li', {}, [e.field ?? e.path, e.message].filter(Boolean).join(': ')));
  replace(
    slot,
    h('strong', {}, problem.title ?? 'Error', problem.status ? ` (${problem.status})` : ''),
    // A 400's detail repeats its field errors; the list says them one per line.
    problem.detail && !items.length ? h('span', {}, ` ${problem.detail}`) : null,
    items.length ? h('ul', {}, items) : null,
  );
  slot.hidden = false;
}

/** @param {HTMLElement} slot */
export function clearProblem(slot) {
  slot.replaceChildren();
  slot.hidden = true;
}

/**
 * Runs an action from a control: disables the button meanwhile, shows a failure in the slot.
 * @param {HTMLButtonElement | null} button
 * @param {HTMLElement} slot
 * @param {() => Promise<void>} action
 */
export async function act(button, slot, action) {
  clearProblem(slot);
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    showProblem(slot, err);
  } finally {
    if (button) button.disabled = false;
  }
}

/** A table with a caption (for screen readers) and header cells. @param {string} caption @param {string[]} headings @param {HTMLElement[]} rows */
export function table(caption, headings, rows) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, ...headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows),
    ),
  );
}

/** A table row; each cell carries its column's heading for the stacked layout of narrow screens. @param {string[]} headings @param {unknown[]} cells */
export function row(headings, cells) {
  return h('tr', {}, ...cells.map((c, i) => h('td', { 'data-label': headings[i] }, /** @type {any} */ (c))));
}

/** A page's heading and the short line under it. @param {string} title @param {string} [lead] */
export function pageHeader(title, lead) {
  return h('div', { class: 'page-header' }, h('h1', {}, title), lead ? h('p', { class: 'lead' }, lead) : null);
}

/** A short code-like value (an id, a kid). @param {string | null | undefined} value */
export function code(value) {
  return value ? h('code', { class: 'id' }, value) : h('span', { class: 'muted' }, '—');
}

/** Splits a list typed with spaces, commas or newlines. @param {string} text */
export function words(text) {
  return text
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter(Boolean);
}

/**
 * Previous / next page links and where the list stands.
 * @param {{ total: number, page: number, limit: number }} list
 * @param {(page: number) => string} hashOf
 * @param {string} noun
 */
export function pager(list, hashOf, noun) {
  const pages = Math.max(1, Math.ceil(list.total / list.limit));
  const link = (/** @type {number} */ page, /** @type {string} */ label, /** @type {boolean} */ enabled) =>
    enabled ? h('a', { href: hashOf(page), class: 'button' }, label) : h('span', { class: 'button disabled', 'aria-disabled': 'true' }, label);
  return h(
    'nav',
    { class: 'pager', 'aria-label': `${noun} pages` },
    link(list.page - 1, 'Previous', list.page > 1),
    h('span', { class: 'muted' }, `Page ${list.page} of ${pages} · ${list.total} ${noun}`),
    link(list.page + 1, 'Next', list.page < pages),
  );
}
