import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { browserRequired, chromiumPath } from './helpers/browser.ts';
import { createOrg, operatorToken, requestToken } from './factories.ts';
import { api } from './helpers/api.ts';
import { DAY_MS } from '../src/lib/time.ts';
import { CONSOLE_CSP } from '../src/console/console.routes.ts';

// The admin console (design/console.md) in a real headless Chromium against a real server on a
// real database: sign-in, agents, a secret shown once and used at /token, its revocation, the
// audit log, the operators' pages, a phone-sized screen and the keyboard. Each test opens its
// own browser context (its own memory, so its own sign-in) in the one browser of this file.

// What the functions that page.evaluate runs use of the page's globals (the suite is typed for Node).
interface PageElement {
  tagName: string;
  textContent: string | null;
  outerHTML: string;
  labels?: { length: number } | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelectorAll(selector: string): unknown;
  cookie: string;
  activeElement: PageElement | null;
  documentElement: { scrollWidth: number };
};
declare const localStorage: { length: number };
declare const sessionStorage: { length: number };

const SCREENSHOTS = fileURLToPath(new URL('../test-artifacts/console/', import.meta.url));
const executablePath = chromiumPath();

if (!executablePath) {
  const reason = `console browser test: no Chromium found (set CHROMIUM_PATH, or apt-get install chromium)${browserRequired ? '; REQUIRE_BROWSER=1, so this fails' : '; skipped'}`;
  console.warn(reason);
  if (browserRequired) {
    it('finds a Chromium (REQUIRE_BROWSER=1)', () => {
      throw new Error(reason);
    });
  }
}

const describeWithBrowser = executablePath ? describe : describe.skip;

describeWithBrowser('the console at /console', () => {
  let idp: TestIdp;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    [idp, browser] = await Promise.all([
      startTestIdp(),
      // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
      chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] }),
    ]);
    // Tokens of the days before today, as the counters hold them, so that the chart has a history to draw.
    const rootOrgId = idp.idp.bootstrap.rootOrg.id;
    for (const [daysAgo, tokens] of [
      [1, 42],
      [2, 37],
      [3, 51],
      [5, 12],
      [8, 66],
      [12, 20],
      [20, 8],
    ]) {
      const day = new Date(Date.now() - daysAgo * DAY_MS).toISOString().slice(0, 10);
      await idp.idp.database.dataSource.query('INSERT INTO org_token_counts (org_id, day, tokens) VALUES ($1, $2, $3)', [rootOrgId, day, tokens]);
    }
  });
  afterAll(async () => {
    await browser?.close();
    await idp?.close();
  });

  /**
   * A new context and page, with the page's uncaught errors and console errors collected. The
   * browser's own "Failed to load resource" lines are filed apart, with their URL, so a test can
   * allow exactly the refusals it provoked.
   */
  async function openPage(viewport = { width: 1280, height: 800 }) {
    const context: BrowserContext = await browser.newContext({ viewport, baseURL: idp.url });
    context.setDefaultTimeout(20_000);
    const page = await context.newPage();
    const pageErrors: string[] = [];
    const consoleErrors: string[] = [];
    const failedLoads: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg: ConsoleMessage) => {
      if (msg.type() !== 'error') return;
      if (msg.text().startsWith('Failed to load resource')) failedLoads.push(`${msg.text()} ${msg.location().url}`);
      else consoleErrors.push(msg.text());
    });
    return {
      context,
      page,
      /** No uncaught error, no console error, and no failed load but those expected. */
      async clean(expectedFailedLoads: RegExp[] = []) {
        expect(pageErrors).toEqual([]);
        expect(consoleErrors).toEqual([]);
        expect(failedLoads.filter((line) => !expectedFailedLoads.some((re) => re.test(line)))).toEqual([]);
        expect(failedLoads).toHaveLength(expectedFailedLoads.length);
        await context.close();
      },
    };
  }

  async function signIn(page: Page, clientId: string, clientSecret: string) {
    await page.goto('/console/');
    await page.getByLabel('Client ID').fill(clientId);
    await page.getByLabel('Client secret').fill(clientSecret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  }

  /** Every form control on the page has a label (or an aria-label), every button a name. */
  async function unlabelledControls(page: Page): Promise<string[]> {
    return page.evaluate(() =>
      [...(document.querySelectorAll('input, select, textarea, button') as Iterable<PageElement>)]
        .filter((el) =>
          el.tagName === 'BUTTON' ? !(el.textContent?.trim() || el.getAttribute('aria-label')) : !(el.labels?.length || el.getAttribute('aria-label')),
        )
        .map((el) => el.outerHTML.slice(0, 120)),
    );
  }

  /** A link of the main navigation. */
  const nav = (page: Page, name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });

  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  it("serves its files with a strict CSP, nosniff and cache headers, and leaves the API's headers alone", async () => {
    const pageRes = await fetch(`${idp.url}/console/`);
    expect(pageRes.status).toBe(200);
    expect(pageRes.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = pageRes.headers.get('content-security-policy') ?? '';
    expect(csp).toBe(CONSOLE_CSP);
    for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) expect(csp).toContain(directive);
    expect(csp).not.toContain('unsafe-inline');
    expect(pageRes.headers.get('x-content-type-options')).toBe('nosniff');
    expect(pageRes.headers.get('x-frame-options')).toBe('DENY');
    expect(pageRes.headers.get('cache-control')).toBe('no-cache');
    const html = await pageRes.text();
    // No inline script or style: the CSP would refuse it.
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=/);
    expect(html).not.toMatch(/https?:\/\//);

    const script = await fetch(`${idp.url}/console/app.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    const etag = script.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect((await fetch(`${idp.url}/console/app.js`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${idp.url}/console`)).status).toBe(200);

    // A name that is not one of the files is the server's ordinary 404; no path reaches the disk.
    for (const path of ['/console/nothing.js', '/console/..%2F..%2Fpackage.json', '/console/%2e%2e/console.routes.ts']) {
      const res = await fetch(`${idp.url}${path}`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }

    // /token from a browser: the console's own origin (the issuer's) may call it, another site's page may not.
    const form = (origin: string) =>
      fetch(`${idp.url}/token`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: idp.operator.clientId, client_secret: idp.operator.clientSecret }),
      });
    expect((await form(new URL(idp.config.publicUrl).origin)).status).toBe(200);
    const foreign = await form('https://evil.example');
    expect(foreign.status).toBe(400);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();

    // The management API and the OAuth endpoints answer without the console's headers.
    const apiRes = await fetch(`${idp.url}/api/v1/agents`, { headers: { authorization: `Bearer ${await operatorToken(idp)}` } });
    expect(apiRes.status).toBe(200);
    expect(apiRes.headers.get('content-security-policy')).toBeNull();
    expect((await fetch(`${idp.url}/.well-known/jwks.json`)).headers.get('content-security-policy')).toBeNull();
  });

  it('signs in (a wrong secret is told on the page), creates an agent and a secret shown once, which works at /token; revokes it; the audit log has both events', async () => {
    const { page, clean } = await openPage();
    await page.goto('/console/');
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByLabel('Client ID').fill(idp.operator.clientId);
    await page.getByLabel('Client secret').fill('aidp_cs_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'Sign-in failed' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('401');
    // The secret typed leaves the field once it is used.
    expect(await page.getByLabel('Client secret').inputValue()).toBe('');
    await shot(page, 'sign-in-failed');

    await page.getByLabel('Client secret').fill(idp.operator.clientSecret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    // The token and the secret are in no storage the page could leave behind.
    expect(await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }))).toEqual({
      local: 0,
      session: 0,
      cookie: '',
    });
    for (const name of ['Overview', 'Agents', 'Audit log', 'Keys', 'Orgs']) await nav(page, name).waitFor();
    // The chart: 30 days, the seeded ones among them.
    await page.getByRole('img', { name: /Tokens issued per UTC day/ }).waitFor();
    expect(await page.locator('svg.chart rect.chart-bar').count()).toBe(30);
    expect(await page.locator('svg.chart rect.chart-bar title').allTextContents()).toContain(
      `${new Date(Date.now() - DAY_MS).toISOString().slice(0, 10)}: 42 tokens`,
    );
    await page.getByRole('heading', { name: 'Signing keys' }).waitFor();
    await shot(page, 'overview');

    // An agent: a bad audience first, told in the form, then a good one.
    await nav(page, 'Agents').click();
    await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByLabel('Name', { exact: true }).fill('report-bot');
    await page.getByLabel('Owner').fill('reports-team@example.com');
    await page.getByLabel('Scopes').fill('reports:read');
    await page.getByLabel('Audiences').fill('not a url');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('alert').filter({ hasText: '400' }).waitFor();
    await page.getByLabel('Audiences').fill('https://reports.example');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('heading', { name: /report-bot/, level: 1 }).waitFor();
    const agentId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);

    // A secret, shown once.
    await page.getByRole('button', { name: 'Create secret' }).click();
    const secretBox = page.getByRole('textbox', { name: 'New client secret' });
    await secretBox.waitFor();
    const secret = await secretBox.inputValue();
    expect(secret).toMatch(/^aidp_cs_/);
    await page.getByText('It is shown only this once').waitFor();
    await page.getByRole('button', { name: 'Copy new client secret' }).waitFor();
    expect(await unlabelledControls(page)).toEqual([]);
    await shot(page, 'agent-secret-shown-once');

    // The secret works at /token, over real HTTP, from outside the browser.
    const issued = await requestToken(idp, agentId, secret, { resource: 'https://reports.example' });
    expect(issued.status).toBe(200);

    await page.getByRole('button', { name: 'I have copied it' }).click();
    await secretBox.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);

    // Revoke it: a second click confirms.
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm revoke' }).click();
    await page.getByRole('cell', { name: /^revoked/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Revoke', exact: true }).count()).toBe(0);
    expect((await requestToken(idp, agentId, secret, { resource: 'https://reports.example' })).status).toBe(401);
    await shot(page, 'agent');

    // Both events on the audit page, filtered to this agent; then one event's detail.
    await page.getByRole('link', { name: 'This agent’s audit events' }).click();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    expect(await page.getByLabel('Agent ID').inputValue()).toBe(agentId);
    const created = page.getByRole('row').filter({ hasText: 'credential.created' });
    const revoked = page.getByRole('row').filter({ hasText: 'credential.revoked' });
    await created.waitFor();
    await revoked.waitFor();
    await page.getByRole('row').filter({ hasText: 'token.issued' }).first().waitFor();
    expect(await unlabelledControls(page)).toEqual([]);
    await shot(page, 'audit');
    await page.getByLabel('Action').fill('credential.revoked');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    // The old page's rows go, then the new page's come.
    await page.getByRole('row').filter({ hasText: 'credential.created' }).waitFor({ state: 'detached' });
    await revoked.waitFor();
    expect(await page.getByRole('row').filter({ hasText: 'credential.revoked' }).count()).toBe(1);
    await revoked.getByRole('link', { name: /Details/ }).click();
    await page.getByRole('heading', { name: 'credential.revoked', level: 1 }).waitFor();
    // The event's time in local time, with its ISO value on hover.
    expect(await page.locator('time').first().getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await shot(page, 'audit-event');

    // The operators' pages.
    await nav(page, 'Keys').click();
    await page.getByRole('heading', { name: 'Signing keys', level: 1 }).waitFor();
    await page.getByRole('cell', { name: 'active', exact: true }).waitFor();
    expect(await unlabelledControls(page)).toEqual([]);
    await shot(page, 'keys');
    await nav(page, 'Orgs').click();
    await page.getByRole('heading', { name: 'Orgs', level: 1 }).waitFor();
    await page.getByLabel('Org name').fill('acme');
    await page.getByRole('button', { name: 'Create org' }).click();
    await page.getByRole('textbox', { name: 'Admin client secret' }).waitFor();
    expect(await page.getByRole('textbox', { name: 'Admin client secret' }).inputValue()).toMatch(/^aidp_cs_/);
    await page.getByRole('cell', { name: 'acme', exact: true }).waitFor();
    await shot(page, 'orgs');

    // The refused sign-in and the refused agent are the failed loads the browser reported.
    await clean([/status of 401 .*\/token$/, /status of 400 .*\/api\/v1\/agents$/]);
  });

  it('edits, suspends, reactivates and decommissions an agent, the last only once its name is typed', async () => {
    const { page, clean } = await openPage();
    await signIn(page, idp.operator.clientId, idp.operator.clientSecret);
    await nav(page, 'Agents').click();
    await page.getByLabel('Name', { exact: true }).fill('temp-bot');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('heading', { name: /temp-bot/, level: 1 }).waitFor();

    await page.getByLabel('Owner').fill('ops@example.com');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('definition').filter({ hasText: 'ops@example.com' }).waitFor();

    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('button', { name: 'Reactivate' }).click();
    await page.getByRole('button', { name: 'Suspend' }).waitFor();

    const decommission = page.getByRole('button', { name: 'Decommission' });
    expect(await decommission.isDisabled()).toBe(true);
    await page.getByLabel('Type “temp-bot” to confirm').fill('temp-bo');
    expect(await decommission.isDisabled()).toBe(true);
    await page.getByLabel('Type “temp-bot” to confirm').fill('temp-bot');
    await decommission.click();
    await page
      .getByRole('heading', { name: /temp-bot/, level: 1 })
      .filter({ hasText: 'decommissioned' })
      .waitFor();
    // Nothing is offered for a decommissioned agent.
    expect(await page.getByRole('button', { name: 'Save changes' }).count()).toBe(0);

    // The list, filtered by status.
    await nav(page, 'Agents').click();
    await page.getByLabel('Status').selectOption('decommissioned');
    await page.getByRole('link', { name: 'temp-bot' }).waitFor();
    expect(await page.getByRole('link', { name: 'report-bot' }).count()).toBe(0);
    await clean();
  });

  it('pages through the audit log with Older and Newer (keyset pages of 50)', async () => {
    const token = await operatorToken(idp);
    const agent = (await api(idp.url, token).post('/api/v1/agents', { body: { name: 'busy-bot', audiences: ['https://busy.example'] } })).body;
    const { clientSecret } = (await api(idp.url, token).post(`/api/v1/agents/${agent.agentId}/credentials`, { body: {} })).body;
    for (let i = 0; i < 60; i++) expect((await requestToken(idp, agent.agentId, clientSecret)).status).toBe(200);

    const { page, clean } = await openPage();
    await signIn(page, idp.operator.clientId, idp.operator.clientSecret);
    await page.goto(`/console/#/audit?action=token.issued&agentId=${agent.agentId}`);
    const rows = page.getByRole('row').filter({ hasText: 'token.issued' });
    const status = page.getByText(/events on this page/);
    await status.filter({ hasText: '50 events' }).waitFor();
    expect(await rows.count()).toBe(50);
    const newest = await rows.first().locator('time').getAttribute('datetime');
    expect(await page.getByRole('button', { name: 'Newer' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Older' }).click();
    await status.filter({ hasText: '10 events' }).waitFor();
    expect(await rows.count()).toBe(10);
    expect(await page.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Newer' }).click();
    await status.filter({ hasText: '50 events' }).waitFor();
    expect(await rows.first().locator('time').getAttribute('datetime')).toBe(newest);

    // The other filters, each from a page that has rows: nothing of this agent's happened before
    // the test began, and it had no failure.
    const before = new Date(Date.now() - 3_600_000);
    const pad = (n: number) => String(n).padStart(2, '0');
    const localInput = `${before.getFullYear()}-${pad(before.getMonth() + 1)}-${pad(before.getDate())}T${pad(before.getHours())}:${pad(before.getMinutes())}`;
    await page.getByLabel('To (local time)').fill(localInput);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No events match.').waitFor();
    expect(decodeURIComponent(new URL(page.url()).hash)).toContain(`to=${new Date(`${localInput}:00`).toISOString()}`);
    await page.getByLabel('To (local time)').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await status.filter({ hasText: '50 events' }).waitFor();
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No events match.').waitFor();
    await clean();
  });

  it('rotates a secret with a grace period: the new secret is shown once, and the old one still works within the grace period', async () => {
    const token = await operatorToken(idp);
    const agent = (await api(idp.url, token).post('/api/v1/agents', { body: { name: 'rotating-bot', audiences: ['https://rotating.example'] } })).body;
    const old = (await api(idp.url, token).post(`/api/v1/agents/${agent.agentId}/credentials`, { body: {} })).body;
    const { page, clean } = await openPage();
    await signIn(page, idp.operator.clientId, idp.operator.clientSecret);
    await page.goto(`/console/#/agents/${agent.agentId}`);
    await page.getByRole('heading', { name: /rotating-bot/, level: 1 }).waitFor();
    await page.getByLabel(`Grace period for ${old.credentialId.slice(0, 8)} (seconds)`).fill('600');
    await page.getByRole('button', { name: 'Rotate' }).click();
    await page.getByRole('heading', { name: 'New secret after rotation' }).waitFor();
    const rotated = await page.getByRole('textbox', { name: 'New client secret' }).inputValue();
    expect(rotated).toMatch(/^aidp_cs_/);
    expect(rotated).not.toBe(old.clientSecret);
    await page.getByText('old until').waitFor();
    expect((await requestToken(idp, agent.agentId, rotated)).status).toBe(200);
    expect((await requestToken(idp, agent.agentId, old.clientSecret)).status).toBe(200);
    await clean();
  });

  it("pages through an agent's credentials, 20 at a time", async () => {
    const token = await operatorToken(idp);
    const agent = (await api(idp.url, token).post('/api/v1/agents', { body: { name: 'many-keys-bot' } })).body;
    for (let i = 0; i < 22; i++) expect((await api(idp.url, token).post(`/api/v1/agents/${agent.agentId}/credentials`, { body: {} })).status).toBe(201);
    const { page, clean } = await openPage();
    await signIn(page, idp.operator.clientId, idp.operator.clientSecret);
    await page.goto(`/console/#/agents/${agent.agentId}`);
    const credentialPages = page.getByRole('navigation', { name: 'credentials pages' });
    await credentialPages.getByText('Page 1 of 2 · 22 credentials').waitFor();
    const credentialRows = page.getByRole('row').filter({ hasText: 'Secret' });
    expect(await credentialRows.count()).toBe(20);
    await credentialPages.getByRole('link', { name: 'Next' }).click();
    await credentialPages.getByText('Page 2 of 2 · 22 credentials').waitFor();
    expect(await credentialRows.count()).toBe(2);
    await clean();
  });

  it('rotates the signing keys, revokes the next key and deletes it (operators)', async () => {
    const keysNow = async () => (await api(idp.url, await operatorToken(idp)).get('/api/v1/keys')).body.data as { kid: string; status: string }[];
    const next = (await keysNow()).find((k) => k.status === 'next')!;
    const { page, clean } = await openPage();
    await signIn(page, idp.operator.clientId, idp.operator.clientSecret);
    await nav(page, 'Keys').click();
    await page.getByRole('heading', { name: 'Signing keys', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Rotate now' }).click();
    // The next key signs now; a new next key stands behind it.
    const keyRow = (kid: string) => page.getByRole('row').filter({ hasText: kid });
    await keyRow(next.kid).getByRole('cell', { name: 'active', exact: true }).waitFor();
    const newNext = (await keysNow()).find((k) => k.status === 'next')!;
    await keyRow(newNext.kid)
      .getByRole('button', { name: `Revoke key ${newNext.kid}` })
      .click();
    await page.getByRole('button', { name: 'Confirm revoke' }).click();
    await keyRow(newNext.kid).getByRole('cell', { name: 'revoked', exact: true }).waitFor();
    await page.getByRole('button', { name: `Delete key ${newNext.kid}` }).click();
    await keyRow(newNext.kid).waitFor({ state: 'detached' });
    expect((await keysNow()).map((k) => k.kid)).not.toContain(newNext.kid);
    await clean();
  });

  it('offers an org admin only what its scopes allow: no Keys, no Orgs', async () => {
    const org = await createOrg(idp);
    const { page, clean } = await openPage();
    await signIn(page, org.admin.clientId, org.admin.clientSecret);
    for (const name of ['Overview', 'Agents', 'Audit log']) await nav(page, name).waitFor();
    expect(await nav(page, 'Keys').count()).toBe(0);
    expect(await nav(page, 'Orgs').count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Signing keys' }).count()).toBe(0);
    // A page its scopes do not allow, asked for by its address, says so and loads nothing.
    await page.goto('/console/#/keys');
    await page.getByText('This token’s scopes do not allow this page.').waitFor();
    // A reload signs out: the token was in memory only.
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();

    // A token the server stops accepting (its agent suspended) signs the console out, saying so.
    await signIn(page, org.admin.clientId, org.admin.clientSecret);
    // Suspended through the API by itself (an operator acts in its own org only).
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${org.admin.clientId}`, { body: { status: 'suspended' } })).status).toBe(200);
    await nav(page, 'Agents').click();
    await page.getByRole('status').filter({ hasText: 'no longer accepts this session' }).waitFor();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await clean([/status of 401 .*\/api\/v1\/agents\?/]);
  });

  it('is usable with the keyboard alone at phone width (390×844)', async () => {
    const { page, clean } = await openPage({ width: 390, height: 844 });
    await page.goto('/console/');
    // The Client ID field has the focus; Tab moves to the secret, then to the button.
    await page.getByLabel('Client ID').waitFor();
    await page.keyboard.type(idp.operator.clientId);
    await page.keyboard.press('Tab');
    await page.keyboard.type(idp.operator.clientSecret);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sign in');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    // Nothing wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, 'phone-overview');
    await nav(page, 'Agents').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, 'phone-agents');
    await clean();
  });

  it('shows what the API refused where the action was, as problem details', async () => {
    const { page, clean } = await openPage();
    await signIn(page, idp.operator.clientId, idp.operator.clientSecret);
    const token = await operatorToken(idp);
    const agent = (await api(idp.url, token).post('/api/v1/agents', { body: { name: 'gone-bot' } })).body;
    // Only the hash changes on the page already loaded, so the session is kept.
    await page.goto(`/console/#/agents/${agent.agentId}`);
    await page.getByRole('heading', { name: /gone-bot/, level: 1 }).waitFor();
    // Decommissioned behind the console's back: its next action is refused with a 409.
    expect((await api(idp.url, token).delete(`/api/v1/agents/${agent.agentId}`)).status).toBe(204);
    await page.getByRole('button', { name: 'Suspend' }).click();
    const problem = page.getByRole('alert').filter({ hasText: '409' });
    await problem.waitFor();
    expect(await problem.textContent()).toMatch(/decommissioned/i);
    await clean([/status of 409 .*\/api\/v1\/agents\//]);
  });
});
