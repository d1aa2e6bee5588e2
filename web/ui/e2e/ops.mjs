// The operating scenario, run by cmd/onair/e2e/ops_browser_test.go against a real onair:
// what owners, moderators and admins do in the UI besides streaming. An admin makes an API
// token in the settings (shown once, works as a bearer token, revoked), adds a webhook to
// a room, edits it, sends it a test event that fails and redelivers it once the receiver
// is back; moderates a chat from the room page (slow mode, ban with a purge, unban, a
// timeout of a chosen length, the log); in the admin console makes a user admin, disables
// them, takes a room down, filters the audit trail, redelivers a failed delivery and reads
// the cluster's health. A user changes their password, signs out everywhere and deletes
// their account.
//
// The Go test set up the accounts (root the admin, bob, carol, dave; password
// "correct horse battery"), root's room root-show with three messages of bob's, and
// carol's room carol-room. Protocol on stdout/stdin, one line each:
//   "@accept" -> the webhook receiver (HOOK_URL) starts accepting, answers "ok"
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { launch } from './browser.mjs';
import { ask, check, log } from './steps.mjs';

const base = process.env.ONAIR_URL;
const hookURL = process.env.HOOK_URL;
const shots = process.env.ONAIR_SCREENSHOTS || '.artifacts/screenshots';
if (!base || !hookURL) throw new Error('ONAIR_URL and HOOK_URL must be set');
const password = 'correct horse battery';
const desktop = { viewport: { width: 1366, height: 900 } };

async function waitFor(page, what, fn, arg, timeout = 15000) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return await h.jsonValue();
  } catch (e) {
    throw new Error(`timed out after ${timeout} ms waiting for ${what} on ${page.url()}: ${e.message.split('\n')[0]}`);
  }
}

async function logIn(page, login, pw, next) {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.fill('#login', login);
  await page.fill('#password', pw);
  await Promise.all([page.waitForURL((u) => u.pathname === next), page.click('button[type=submit]')]);
}

// confirm answers the page's confirmation dialog with its button called label.
async function confirm(page, label) {
  await page.getByRole('dialog').getByRole('button', { name: label }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
}

const shoot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true, animations: 'disabled' });

// bearer calls the API as a script would: the token, no cookie, no Origin, no CSRF token.
async function bearer(secret, method, p, body) {
  const res = await fetch(base + p, {
    method, headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body),
  });
  return res.status;
}

async function main() {
  await mkdir(shots, { recursive: true });
  const browser = await launch();
  const problems = [];
  const watch = (page, name) => {
    page.on('pageerror', (e) => problems.push(`${name}: uncaught ${e.message}`));
    page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`${name}: ${m.text()}`); });
  };
  try {
    const rootCtx = await browser.newContext(desktop);
    const root = await rootCtx.newPage();
    watch(root, 'root');

    // ---- settings: an API token, shown once, used, revoked
    await logIn(root, 'root', password, '/settings');
    await root.locator('[data-token-form] input[value="rooms:write"]').waitFor();
    await root.fill('#tok-name', 'ci');
    await root.check('[data-token-form] input[value="rooms:write"]');
    await root.click('[data-token-form] button[type=submit]');
    const secret = await root.locator('[data-token-secret]').inputValue();
    check(secret.startsWith('onair_pat_'), `the token is shown once (${secret.slice(0, 10)}…)`);
    await root.locator('[data-tokens] li', { hasText: 'ci' }).waitFor();
    check(await bearer(secret, 'POST', '/api/v1/rooms', { slug: 'ci-room', title: 'Made by a script' }) === 201,
      'the token creates a room without cookie, Origin or CSRF token');
    await shoot(root, 'settings-desktop');
    await root.click('[data-revoke-token="ci"]');
    await confirm(root, 'Revoke');
    await root.locator('[data-tokens] li', { hasText: 'No tokens yet.' }).waitFor();
    check(await bearer(secret, 'GET', '/api/v1/rooms') === 401, 'the revoked token is refused');
    log('API token made, used and revoked in the settings');

    // ---- a room's webhook: add, edit, test, redeliver
    await root.goto(`${base}/dashboard/root-show`);
    await root.locator('[data-create-webhook] fieldset input').first().waitFor();
    await root.fill('#hook-url', `${hookURL}/onair`);
    await root.click('[data-create-webhook] button[type=submit]');
    check((await root.locator('#webhook-secret').inputValue()).startsWith('whsec_'), 'the signing secret is shown once');
    const hook = root.locator('[data-webhooks] li.hook').first();
    await hook.waitFor();
    await hook.locator('[data-edit-webhook]').click();
    await hook.locator('[data-webhook-edit] select[name=format]').selectOption('slack');
    await hook.locator('[data-webhook-edit] button[type=submit]').click();
    await root.locator('[data-webhooks] li.hook', { hasText: 'slack' }).waitFor();
    const edited = root.locator('[data-webhooks] li.hook').first();
    await edited.locator('[data-test-webhook]').click();
    const logBox = edited.locator('.delivery-log');
    const rowOf = (status, again) => logBox.locator(`tr[data-type="webhook.test"][data-status="${status}"]`, again ? { hasText: '(again)' } : {});
    const refreshUntil = async (loc, what) => {
      for (let i = 0; i < 60 && !(await loc.count()); i++) {
        await root.waitForTimeout(250);
        await logBox.getByRole('button', { name: 'Refresh' }).click({ timeout: 10000 }).catch(async (e) => {
          throw new Error(`${e.message}\nthe webhook's entry shows: ${await edited.innerText()}`);
        });
      }
      check(await loc.count() > 0, what);
    };
    await refreshUntil(rowOf('failed'), 'the test event failed at the receiver, in the delivery log');
    await ask('@accept');
    await rowOf('failed').first().locator('[data-redeliver]').click();
    await refreshUntil(rowOf('delivered', true), 'the redelivery was delivered, in the delivery log');
    await shoot(root, 'dashboard-webhooks');
    log('webhook added, edited, tested and redelivered');

    // ---- moderation on the room page
    await root.goto(`${base}/rooms/root-show`);
    const ok = root.locator('[data-mod-ok]');
    await root.locator('[data-mod-panel] [data-mod-log]').waitFor();
    await waitFor(root, 'bob\'s messages in the chat', () => document.querySelectorAll('[data-chat-log] li.msg[data-handle=bob]').length === 3);
    await root.selectOption('#mod-slow', '10');
    await root.click('[data-slow-mode] button[type=submit]');
    await ok.filter({ hasText: 'Slow mode' }).waitFor();
    await root.fill('#mod-handle', 'bob');
    await root.fill('#mod-reason', 'spam');
    await root.click('[data-ban]');
    await ok.filter({ hasText: '3 message(s) deleted' }).waitFor();
    await waitFor(root, 'bob\'s messages to leave the chat', () => !document.querySelector('[data-chat-log] li.msg[data-handle=bob]'));
    await root.locator('[data-bans] li[data-banned-handle=bob]').waitFor();
    await shoot(root, 'room-moderation');
    await root.click('[data-unban=bob]');
    await ok.filter({ hasText: 'may chat again' }).waitFor();
    await root.locator('[data-bans] li', { hasText: 'Nobody is banned' }).waitFor();
    await root.fill('#mod-handle', 'bob');
    await root.selectOption('#mod-length', '3600');
    await root.click('[data-timeout]');
    await ok.filter({ hasText: 'timed out for 1 h' }).waitFor();
    await root.locator('[data-bans] li[data-banned-handle=bob]', { hasText: 'timed out until' }).waitFor();
    for (const a of ['purge', 'ban', 'unban', 'timeout', 'slow_mode']) await root.locator(`[data-mod-log] li[data-action=${a}]`).first().waitFor();
    log('slow mode, ban with purge, unban, a one-hour timeout and the log, from the room page');

    // ---- the admin console
    await root.goto(`${base}/admin`);
    await root.fill('#users-q', 'carol');
    await root.click('[data-user-search] button[type=submit]');
    const carol = root.locator('tr[data-user-handle=carol]');
    await carol.waitFor();
    await root.click('[data-toggle-admin=carol]');
    await confirm(root, 'Confirm');
    await carol.locator('.badge', { hasText: 'admin' }).waitFor();
    await root.click('[data-toggle-disabled=carol]');
    await confirm(root, 'Disable');
    await carol.locator('.badge', { hasText: 'disabled' }).waitFor();
    log('carol made admin, then disabled');
    await root.fill('#rooms-q', 'carol');
    await root.click('[data-room-search] button[type=submit]');
    await root.locator('tr[data-room-slug=carol-room]').waitFor();
    await root.click('[data-take-down=carol-room]');
    await confirm(root, 'Take down');
    await root.locator('[data-admin-rooms]', { hasText: 'No rooms match.' }).waitFor();
    log('carol\'s room taken down');
    await root.fill('#audit-action', 'user.*');
    await root.click('[data-audit-filter] button[type=submit]');
    await root.locator('[data-audit] tr[data-action="user.disable"]').waitFor();
    await root.locator('[data-audit] tr[data-action="user.admin_grant"]').waitFor();
    check(await root.locator('[data-audit] tbody tr:not([data-action^="user."])').count() === 0, 'the audit filter keeps user.* only');
    await root.selectOption('#deliveries-status', 'failed');
    await root.click('[data-delivery-filter] button[type=submit]');
    const failed = root.locator('[data-admin-deliveries] tr[data-status=failed]').first();
    await failed.waitFor();
    await failed.locator('[data-redeliver]').click();
    await root.selectOption('#deliveries-status', 'delivered');
    await root.click('[data-delivery-filter] button[type=submit]');
    await waitFor(root, 'two delivered test events', () => document.querySelectorAll('[data-admin-deliveries] tr[data-status=delivered][data-type="webhook.test"]').length >= 2, null, 20000);
    await root.locator('[data-server-health] tr[data-node]').first().waitFor();
    await root.locator('[data-server-health] tr[data-live-room]').count();
    await shoot(root, 'admin-console');
    log('audit filtered, a failed delivery redelivered, the cluster\'s health shown');

    // ---- a user: password, sign out everywhere, delete the account
    const daveCtx = await browser.newContext(desktop);
    const dave = await daveCtx.newPage();
    watch(dave, 'dave');
    await logIn(dave, 'dave', password, '/settings');
    await dave.fill('#pw-current', password);
    await dave.fill('#pw-new', 'a brand new password');
    await dave.click('[data-password-form] button[type=submit]');
    await dave.locator('[data-password-form] .ok', { hasText: 'Password changed' }).waitFor();
    await dave.click('[data-sign-out-everywhere]');
    await confirm(dave, 'Sign out everywhere');
    await dave.waitForURL((u) => u.pathname === '/login');
    await logIn(dave, 'dave', 'a brand new password', '/settings');
    await dave.fill('#del-handle', 'dave');
    await dave.fill('#del-pw', 'a brand new password');
    await dave.click('[data-delete-account] button[type=submit]');
    await Promise.all([dave.waitForURL((u) => u.pathname === '/'), confirm(dave, 'Delete my account')]);
    check(await dave.locator('header.site a[href="/login"]').isVisible(), 'signed out once the account is deleted');
    log('password changed, signed out everywhere, account deleted');

    check(problems.length === 0, `no CSP violations or page errors:\n${problems.join('\n')}`);
  } catch (e) {
    for (const ctx of browser.contexts()) {
      for (const p of ctx.pages()) {
        try { await p.screenshot({ path: path.join(shots, `failure-ops-${Date.now()}.png`), fullPage: true }); } catch { /* closed */ }
      }
    }
    if (problems.length) console.error(problems.join('\n'));
    throw e;
  } finally {
    await browser.close();
  }
  log('all operating checks passed');
}

main().then(() => process.exit(0), (e) => {
  console.error(e.stack || e.message);
  process.exit(1);
});
