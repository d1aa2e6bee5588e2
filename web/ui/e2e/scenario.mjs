// The browser end-to-end scenario, run by cmd/onair/e2e/browser_test.go against a real
// onair (with FerretDB and MinIO). It drives Debian's Chromium like people would:
// a streamer signs up, creates a room and copies its stream key; viewers watch and chat;
// the owner moderates; a viewer rewinds and returns to live; the stream ends and its replay
// plays and seeks. Screenshots of every page at desktop and phone sizes go to
// $ONAIR_SCREENSHOTS.
//
// The Go test plays OBS's part. Protocol on stdout/stdin, one line each:
//   "@publish <stream key>" -> Go starts ffmpeg publishing with that key, answers "ok"
//   "@stop"                 -> Go stops ffmpeg as a streamer clicking Stop would, answers "ok"
// Every other line is a log line. Exit status 0 means every check passed.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { launch } from './browser.mjs';
import { measure } from './bench.mjs';
import { ask, check, log } from './steps.mjs';

const base = process.env.ONAIR_URL;
const shots = process.env.ONAIR_SCREENSHOTS || '.artifacts/screenshots';
const benchOut = process.env.ONAIR_BENCH_OUT || '';
if (!base) throw new Error('ONAIR_URL is not set');

// waitFor polls fn in the page until it returns a truthy value, with a deadline and the
// last value in the error message.
async function waitFor(page, what, fn, arg, timeout = 20000) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return await h.jsonValue();
  } catch (e) {
    let state = '';
    try {
      state = await page.evaluate(() => {
        const p = document.querySelector('[data-player]');
        const s = document.querySelector('[data-status]');
        return JSON.stringify({ url: location.pathname, player: p ? { ...p.dataset } : null, status: s ? s.textContent : null });
      });
    } catch { /* page gone */ }
    throw new Error(`timed out after ${timeout} ms waiting for ${what} (${state}): ${e.message.split('\n')[0]}`);
  }
}

const video = {
  time: (page) => page.evaluate(() => document.querySelector('[data-player] video').currentTime),
  // advancing waits until currentTime has moved on by `by` seconds from now.
  advancing: async (page, by = 1.5, timeout = 20000) => {
    const t0 = await video.time(page);
    await waitFor(page, `video to play ${by} s past ${t0.toFixed(2)}`,
      ([t, d]) => {
        const v = document.querySelector('[data-player] video');
        return v.currentTime > t + d && !v.paused && !v.error;
      }, [t0, by], timeout);
  },
  state: (page) => page.evaluate(() => ({ ...document.querySelector('[data-player]').dataset })),
};

const desktop = { viewport: { width: 1366, height: 860 } };
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

async function shoot(page, name) {
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  log('screenshot', file);
}

// watchPage records what must never happen on a page: CSP violations, uncaught errors.
function watchPage(page, name, problems) {
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`${name}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: uncaught ${e.message}`));
}

async function signUp(page, handle, next) {
  await page.goto(`${base}/signup?next=${encodeURIComponent(next)}`);
  await page.fill('#email', `${handle}@example.com`);
  await page.fill('#handle', handle);
  await page.fill('#password', 'correct horse battery staple');
  await Promise.all([page.waitForURL((u) => u.pathname === next), page.click('button[type=submit]')]);
}

async function main() {
  await mkdir(shots, { recursive: true });
  const browser = await launch();
  const problems = [];
  const slug = 'browser-test-room';
  const roomURL = `${base}/rooms/${slug}`;
  try {
    // ---- the streamer: sign up, create a room, copy the key
    const ownerCtx = await browser.newContext(desktop);
    await ownerCtx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const owner = await ownerCtx.newPage();
    watchPage(owner, 'owner', problems);
    // A wrong password first: the form says so, clearly.
    await owner.goto(`${base}/signup`);
    await owner.fill('#email', 'ann@example.com');
    await owner.fill('#handle', 'ann');
    await owner.fill('#password', 'short');
    await owner.click('button[type=submit]');
    await waitFor(owner, 'the sign-up error', () => {
      const e = document.querySelector('[data-form-error]');
      return e && !e.hidden && /password/i.test(e.textContent) && e.textContent;
    });
    await signUp(owner, 'ann', '/dashboard');
    log('owner signed up');
    await owner.fill('#new-title', 'Browser test room');
    check((await owner.inputValue('#new-slug')) === slug, 'the address follows the title');
    await Promise.all([owner.waitForURL(`${base}/dashboard/${slug}`), owner.click('[data-create-room] button[type=submit]')]);
    const keyInput = owner.locator('[data-stream-key]');
    check((await keyInput.getAttribute('type')) === 'password', 'the key is hidden until revealed');
    await owner.click('[data-reveal-key]');
    check((await keyInput.getAttribute('type')) === 'text', 'Reveal shows the key');
    const shown = await keyInput.inputValue();
    await owner.click('[data-copy-key]');
    await waitFor(owner, 'the copy confirmation', () => document.querySelector('[data-copy-key]').textContent === 'Copied!');
    const key = await owner.evaluate(() => navigator.clipboard.readText());
    check(key === shown && key.length >= 32, `the clipboard holds the key (${key.length} characters)`);
    check(await owner.evaluate((k) => !JSON.stringify({ ...localStorage, ...sessionStorage }).includes(k), key), 'the key is not stored in the browser');
    check((await owner.inputValue('[data-rtmp-url]')).startsWith('rtmp://'), 'the RTMP server URL is shown');
    // Multitrack video: the dashboard gives OBS's configuration URL, which answers the key.
    const configURL = await owner.inputValue('[data-obs-config-url]');
    check(configURL === `${base}/api/v1/obs/config`, `the OBS configuration URL is shown (${configURL})`);
    check((await owner.inputValue('[data-obs-config-launch]')) === `--config-url ${configURL}`, 'with the launch option that gives it to OBS');
    check(/Enable Multitrack Video/.test(await owner.textContent('[data-multitrack-steps]')), 'the steps name OBS\'s multitrack checkbox');
    await owner.click('[data-obs-config-launch-copy]');
    await waitFor(owner, 'the launch option copied', () => document.querySelector('[data-obs-config-launch-copy]').textContent === 'Copied!');
    check((await owner.evaluate(() => navigator.clipboard.readText())) === `--config-url ${configURL}`, 'the clipboard holds the launch option');
    const ladder = await owner.evaluate(async ([u, k]) => {
      const r = await fetch(u, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ authentication: k }) });
      return { status: r.status, tracks: (await r.json()).encoder_configurations.length };
    }, [configURL, key]);
    check(ladder.status === 200 && ladder.tracks >= 1, `the configuration URL answers the copied key with a ladder (${ladder.status}, ${ladder.tracks} tracks)`);
    // OBS 32.2 and later take a pasted configuration instead: made for the machine named.
    await owner.selectOption('#override-hw', 'cpu4');
    await owner.selectOption('#override-out', '720p30');
    await owner.click('[data-obs-override-form] button[type=submit]');
    await owner.locator('[data-obs-override]').waitFor();
    const override = JSON.parse(await owner.inputValue('[data-obs-override]'));
    check(override.encoder_configurations.length === 2 && override.encoder_configurations.every((e) => e.type === 'obs_x264' && e.settings.keyint_sec === 1),
      `the Config Override for a 4-core CPU has two x264 tracks with 1 s key frames (${override.encoder_configurations.length})`);
    await owner.click('[data-reveal-key]'); // hide it again before any screenshot
    log('stream key copied from the dashboard');

    // ---- OBS (ffmpeg) goes live with the copied key
    await ask(`@publish ${key}`);
    await waitFor(owner, 'the dashboard to show the stream live', () => {
      const dl = document.querySelector('[data-health]');
      const br = document.querySelector('[data-health-field=bitrate]');
      return dl && dl.dataset.live === 'true' && br && /bit\/s/.test(br.textContent);
    }, null, 30000);
    log('dashboard health: live');

    // ---- an anonymous viewer watches
    const anonCtx = await browser.newContext(desktop);
    const anon = await anonCtx.newPage();
    watchPage(anon, 'viewer', problems);
    const resp = await anon.goto(roomURL);
    const csp = resp.headers()['content-security-policy'] || '';
    check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `the page has a strict CSP (${csp})`);
    check(resp.headers()['x-frame-options'] === 'DENY' && resp.headers()['x-content-type-options'] === 'nosniff', 'the page has the usual security headers');
    check((await anon.locator('script:not([src])').count()) === 0, 'no inline script');
    await waitFor(anon, 'the live player', () => ['live', 'behind'].includes(document.querySelector('[data-player]')?.dataset.state), null, 30000);
    await video.advancing(anon, 2);
    await waitFor(anon, 'latency under 3 s', () => {
      const l = Number(document.querySelector('[data-player]').dataset.latency);
      return l > 0 && l < 3 && l;
    }, null, 20000);
    const st = await video.state(anon);
    check(st.fatalErrors === '0', `no player errors (${st.fatalErrors}, ${st.lastError || ''})`);
    check(/s behind live/.test(await anon.textContent('[data-latency-text]')), 'the latency indicator is shown');
    log(`viewer plays live, ${st.latency} s behind live`);

    // ---- a signed-in viewer chats (on a phone)
    const chatCtx = await browser.newContext(phone);
    const chatter = await chatCtx.newPage();
    watchPage(chatter, 'chatter', problems);
    await signUp(chatter, 'bob', `/rooms/${slug}`);
    await waitFor(chatter, 'the chat to connect', () => document.querySelector('[data-chat]')?.dataset.chatState === 'connected');
    await waitFor(anon, 'the chat to connect', () => document.querySelector('[data-chat]')?.dataset.chatState === 'connected');
    const hello = 'Hello from a browser ✓';
    await chatter.fill('#chat-text', hello);
    await chatter.press('#chat-text', 'Enter');
    const msgText = (p, t) => p.waitForFunction((text) => [...document.querySelectorAll('[data-chat-log] li.msg .text')].some((e) => e.textContent === text), t, { timeout: 15000, polling: 100 });
    await msgText(anon, hello);
    log('the anonymous viewer sees the message');
    const html = '<img src=x onerror="window.__pwned=1"><b>bold</b> & <script>window.__pwned=2</script>';
    await chatter.fill('#chat-text', html);
    await chatter.click('[data-chat-form] button[type=submit]');
    await msgText(anon, html);
    check(await anon.evaluate(() => !document.querySelector('[data-chat-log] img, [data-chat-log] b, [data-chat-log] script') && window.__pwned === undefined),
      'the HTML payload is shown as text, not markup');
    log('the HTML payload shows as text');
    await video.advancing(chatter, 1); // the phone plays too
    await shoot(chatter, 'room-phone');

    // ---- the owner deletes the message from the room page's moderation menu
    await owner.goto(roomURL);
    await msgText(owner, html);
    const li = owner.locator('[data-chat-log] li.msg', { has: owner.locator('.text', { hasText: 'bold' }) });
    await li.locator('summary').click();
    await li.getByRole('button', { name: 'Delete message' }).click();
    await anon.waitForFunction((text) => ![...document.querySelectorAll('[data-chat-log] li .text')].some((e) => e.textContent === text), html, { timeout: 15000, polling: 100 });
    check(await anon.evaluate((t) => [...document.querySelectorAll('[data-chat-log] li.msg .text')].some((e) => e.textContent === t), hello), 'the other message stays');
    log('the owner deleted the message; it disappeared for the viewer');
    await shoot(anon, 'room-desktop');

    // ---- rewind 30 s, then back to live
    await waitFor(anon, 'a rewind window of 35 s', () => Number(document.querySelector('[data-player]').dataset.dvr) >= 35, null, 60000);
    const before = await video.time(anon);
    const window0 = (await video.state(anon)).dvr;
    await anon.focus('[data-act=back30]'); // by keyboard, as a keyboard user would
    await anon.keyboard.press('Enter');
    await waitFor(anon, 'the player to be 25+ s behind live', () => {
      const d = document.querySelector('[data-player]').dataset;
      return d.state === 'behind' && Number(d.latency) > 25;
    }, null, 15000);
    const after = await video.time(anon);
    check(after < before - 20, `rewind moved playback back (${before.toFixed(1)} -> ${after.toFixed(1)})`);
    await video.advancing(anon, 1);
    check(await anon.isEnabled('[data-act=live]'), 'the Live button is offered while behind');
    log(`rewound in a ${window0} s window: ${(await video.state(anon)).latency} s behind live`);
    await anon.click('[data-act=live]');
    await waitFor(anon, 'the player to be back at the live edge', () => {
      const d = document.querySelector('[data-player]').dataset;
      return d.state === 'live' && Number(d.latency) < 3;
    }, null, 20000);
    await video.advancing(anon, 1);
    log(`back to live: ${(await video.state(anon)).latency} s behind live`);

    // ---- the page benchmark (first frame, page weight), while live; the other viewers
    // pause meanwhile, so that their decoding does not slow it down
    const viewers = [anon, chatter, owner];
    for (const p of viewers) await p.evaluate(() => document.querySelector('[data-player] video').pause());
    const bench = await measure(browser, roomURL, { runs: 3 });
    for (const p of viewers) await p.evaluate(() => document.querySelector('[data-player] video').play());
    log('bench', JSON.stringify({ first_frame_ms: bench.first_frame_ms, page_bytes: bench.page_bytes }));
    if (benchOut) {
      await mkdir(path.dirname(benchOut), { recursive: true });
      await writeFile(benchOut, JSON.stringify(bench, null, 2) + '\n');
    }
    for (const f of bench.files) {
      check(!/\.(js|css)$/.test(f.url) || f.encoding === 'br', `${f.url} is served brotli-compressed (${f.encoding})`);
    }

    // ---- screenshots of the live home page and the dashboard
    for (const [ctxOpts, size] of [[desktop, 'desktop'], [phone, 'phone']]) {
      const c = await browser.newContext(ctxOpts);
      const p = await c.newPage();
      watchPage(p, `home-${size}`, problems);
      await p.goto(base + '/');
      await p.locator('[data-live-list] a', { hasText: 'Browser test room' }).waitFor();
      await shoot(p, `home-${size}`);
      await c.close();
    }
    await owner.goto(`${base}/dashboard/${slug}`);
    await waitFor(owner, 'live health', () => document.querySelector('[data-health]')?.dataset.live === 'true');
    // One more refresh, so that bitrate and frame rate are current rather than averages.
    const note = await owner.textContent('[data-health] ~ p[role=status]');
    await waitFor(owner, 'a health refresh', (n) => document.querySelector('[data-health] ~ p[role=status]').textContent !== n, note, 10000);
    await shoot(owner, 'dashboard-desktop');

    // ---- the streamer retitles the live broadcast; the viewer's heading follows
    const liveTitle = 'Live from the browser test ✓';
    await owner.fill('#stream-title', liveTitle);
    await owner.click('[data-stream-title-form] button[type=submit]');
    await waitFor(owner, 'the title saved', () => /viewers see it now/.test(document.querySelector('[data-stream-title-form] .ok').textContent));
    await waitFor(anon, 'the viewer page to show the new title', (t) => document.querySelector('[data-stream-title]').textContent === t &&
      !document.querySelector('[data-room-name]').hidden, liveTitle, 15000);
    log('the viewer page shows the title set on the dashboard');
    const ownerPhone = await ownerCtx.newPage();
    await ownerPhone.setViewportSize(phone.viewport);
    await ownerPhone.goto(`${base}/dashboard/${slug}`);
    await waitFor(ownerPhone, 'live health', () => document.querySelector('[data-health]')?.dataset.live === 'true');
    await shoot(ownerPhone, 'dashboard-phone');
    await ownerPhone.close();

    // ---- the streamer stops: the page says so; the broadcast's replay appears
    await ask('@stop');
    await waitFor(anon, 'the page to say the stream ended', () => {
      const s = document.querySelector('[data-status]');
      return s && /stream has ended/i.test(s.textContent) && s.textContent;
    }, null, 30000);
    log('the viewer page says the stream ended');
    const replayLink = anon.locator('[data-broadcasts] a', { hasText: 'Watch replay' }).first();
    await replayLink.waitFor({ timeout: 60000 });
    check(await anon.textContent('[data-broadcasts] li.broadcast .broadcast-title') === liveTitle, 'the past broadcast keeps its title');
    // Each list has its own place on the page: one laid over the other takes the clicks.
    check(await anon.evaluate(() => {
      const [a, b] = ['[data-broadcasts]', '[data-clips]'].map((q) => document.querySelector(q).closest('section').getBoundingClientRect());
      return a.bottom <= b.top || b.bottom <= a.top || a.right <= b.left || b.right <= a.left;
    }), 'past broadcasts and clips do not overlap');
    log('the past broadcast appears with its replay');

    // ---- the replay plays and seeks
    await Promise.all([anon.waitForURL(/\/replay\//), replayLink.click()]);
    await waitFor(anon, 'the replay to play', () => document.querySelector('[data-player]')?.dataset.state === 'vod', null, 20000);
    await video.advancing(anon, 1);
    check(await anon.textContent('[data-broadcast-title]') === liveTitle, 'the replay is headed by the broadcast title');
    const dur = await anon.evaluate(() => document.querySelector('[data-player] video').duration);
    check(dur > 30, `the replay lasts the broadcast (${dur} s)`);
    const target = Math.floor(dur / 2);
    await anon.evaluate((t) => {
      const s = document.querySelector('[data-seek]');
      s.value = String(t);
      s.dispatchEvent(new Event('change'));
    }, target);
    await waitFor(anon, `the replay to seek to ${target} s`, (t) => {
      const v = document.querySelector('[data-player] video');
      return Math.abs(v.currentTime - t) < 3 && !v.seeking && v.readyState >= 3;
    }, target, 20000);
    await video.advancing(anon, 1);
    check((await anon.getAttribute('[data-download]', 'href')).endsWith('/download'), 'the replay offers a download');
    log(`replay plays and seeks to ${target} of ${dur.toFixed(1)} s`);
    await shoot(anon, 'replay-desktop');
    const replayPhone = await chatCtx.newPage();
    await replayPhone.goto(anon.url());
    await waitFor(replayPhone, 'the replay to play', () => document.querySelector('[data-player]')?.dataset.state === 'vod', null, 20000);
    await shoot(replayPhone, 'replay-phone');

    // ---- the offline room plays its latest broadcast
    const again = await anonCtx.newPage();
    await again.goto(roomURL);
    await waitFor(again, 'the offline room to play its latest broadcast', () => {
      const s = document.querySelector('[data-status]');
      return document.querySelector('[data-player]')?.dataset.state === 'vod' && /latest broadcast/.test(s.textContent);
    }, null, 20000);
    log('the offline room plays its latest broadcast');

    // ---- the owner adds a moderator, rotates the key, deletes the past broadcast
    await owner.goto(`${base}/dashboard/${slug}`);
    await owner.fill('#mod-handle', 'bob');
    await owner.click('[data-add-moderator] button[type=submit]');
    await owner.locator('[data-moderators] li', { hasText: '@bob' }).waitFor();
    await owner.click('[data-rotate-key]');
    await owner.getByRole('dialog').getByRole('button', { name: 'Rotate key' }).click();
    await owner.locator('[data-stream-key]').waitFor();
    const rotated = await owner.inputValue('[data-stream-key]');
    check(rotated !== key && rotated.length >= 32, 'rotating shows a new key');
    const item = owner.locator('[data-dash-broadcasts] li.broadcast').first();
    await item.waitFor();
    const broadcastID = await item.getAttribute('data-id');
    await item.locator('[data-rename-broadcast]').click();
    await item.locator('[data-broadcast-title-input]').fill('Renamed past broadcast');
    await item.locator('[data-broadcast-title-input]').press('Enter');
    await item.locator('strong', { hasText: 'Renamed past broadcast' }).waitFor();
    const renamed = await (await owner.request.get(`${base}/api/v1/broadcasts/${broadcastID}`)).json();
    check(renamed.title === 'Renamed past broadcast', `the past broadcast is renamed (${renamed.title})`);
    await item.locator('[data-delete-broadcast]').click();
    await owner.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await item.waitFor({ state: 'detached' });
    check((await owner.request.get(`${base}/replay/${broadcastID}`)).status() === 404, 'the deleted broadcast is gone');
    check(await owner.evaluate(() => !document.cookie.includes('onair_session')), 'the session cookie is out of reach of page scripts');
    log('moderator added, key rotated, past broadcast renamed and deleted');

    // ---- chat rate limit feedback, then log out and back in
    for (let i = 1; i <= 6; i++) {
      await chatter.fill('#chat-text', `message ${i}`);
      await chatter.press('#chat-text', 'Enter');
    }
    await waitFor(chatter, 'the rate-limit message', () => {
      const e = document.querySelector('[data-chat-error]');
      return e && !e.hidden && /too fast.*again in \d+ s/.test(e.textContent) && e.textContent;
    }, null, 15000);
    check(await chatter.isDisabled('[data-chat-form] button[type=submit]'), 'sending waits out the limit');
    log('the chat says when a viewer sends too fast');
    await Promise.all([chatter.waitForURL(`${base}/`), chatter.click('[data-logout]')]);
    check(await chatter.locator('header.site a[href="/login"]').isVisible(), 'logged out');
    await chatter.goto(`${base}/login`);
    await chatter.fill('#login', 'bob');
    await chatter.fill('#password', 'not the password');
    await chatter.click('button[type=submit]');
    await waitFor(chatter, 'the login error', () => /Wrong email, handle or password/.test(document.querySelector('[data-form-error]').textContent));
    await chatter.fill('#password', 'correct horse battery staple');
    await Promise.all([chatter.waitForURL(`${base}/dashboard`), chatter.click('button[type=submit]')]);
    await chatter.locator('text=You have no rooms yet').waitFor();
    log('logged out and back in');

    check(problems.length === 0, `no CSP violations or page errors:\n${problems.join('\n')}`);
  } catch (e) {
    for (const ctx of browser.contexts()) {
      for (const p of ctx.pages()) {
        try { await p.screenshot({ path: path.join(shots, `failure-${path.basename(new URL(p.url()).pathname) || 'home'}-${Date.now()}.png`) }); } catch { /* closed */ }
      }
    }
    if (problems.length) console.error(problems.join('\n'));
    throw e;
  } finally {
    await browser.close();
  }
  log('all browser checks passed');
}

main().then(() => process.exit(0), (e) => {
  console.error(e.stack || e.message);
  process.exit(1);
});
