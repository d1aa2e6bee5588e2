// The HTTPS scenario, run by cmd/onair/e2e/tls_test.go against onair serving HTTPS and
// RTMPS itself with a certificate of a CA made for the test. Chromium trusts that one
// certificate by the hash of its public key ($ONAIR_SPKI, given to
// --ignore-certificate-errors-spki-list), never by ignoring certificate errors: a browser
// launched without it must refuse the site.
//
// A streamer signs up and creates a room over HTTPS, the dashboard offers RTMPS, the Go
// test publishes there with ffmpeg, a viewer watches the room, and both chat over wss.
// Protocol on stdout/stdin, one line each:
//   "@publish <rtmps url> <stream key>" -> Go starts ffmpeg, answers "ok"
// Every other line is a log line. Exit status 0 means every check passed.
import { launch } from './browser.mjs';
import { ask, check, log } from './steps.mjs';

const base = process.env.ONAIR_URL; // https://host:port
const plain = process.env.ONAIR_PLAIN_URL; // http://host:port, redirecting to base
const spki = process.env.ONAIR_SPKI;
if (!base || !plain || !spki) throw new Error('ONAIR_URL, ONAIR_PLAIN_URL and ONAIR_SPKI must be set');

async function waitFor(page, what, fn, arg, timeout = 20000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 100 })).jsonValue();
  } catch (e) {
    throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${e.message.split('\n')[0]}`);
  }
}

// Without the certificate's hash Chromium refuses the site: the test CA is trusted by
// that flag and nothing else.
async function refusedWithoutTrust() {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    let err = null;
    try {
      await page.goto(`${base}/`);
    } catch (e) {
      err = e;
    }
    check(err && /ERR_CERT/.test(err.message), `a browser not told to trust the test certificate refuses the site (got ${err ? err.message.split('\n')[0] : 'the page'})`);
    log('without the flag:', err.message.match(/net::ERR_CERT_[A-Z_]+/)?.[0]);
  } finally {
    await browser.close();
  }
}

async function main() {
  await refusedWithoutTrust();
  const browser = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`uncaught ${e.message}`));

    // Plain HTTP takes the browser to HTTPS, which answers with HSTS.
    const first = await page.goto(`${plain}/signup?next=/dashboard`);
    check(page.url() === `${base}/signup?next=/dashboard`, `plain http redirected to ${page.url()}`);
    check(first.headers()['strict-transport-security'] === 'max-age=31536000',
      `HSTS on the HTTPS page (got ${first.headers()['strict-transport-security']})`);
    check(await page.evaluate(() => window.isSecureContext && location.protocol === 'https:'), 'the page is a secure context');
    log('plain http redirected to', page.url());

    // Sign up: the session cookie is Secure (and httpOnly).
    await page.fill('#email', 'tls@example.com');
    await page.fill('#handle', 'tlsowner');
    await page.fill('#password', 'correct horse battery staple');
    await Promise.all([page.waitForURL(`${base}/dashboard`), page.click('button[type=submit]')]);
    const session = (await ctx.cookies(base)).find((c) => c.name === 'onair_session');
    check(session && session.secure && session.httpOnly, `the session cookie is Secure and httpOnly (${JSON.stringify(session && { secure: session.secure, httpOnly: session.httpOnly })})`);
    log('signed up; session cookie Secure');

    // Create a room: the dashboard offers RTMPS with the key.
    await page.fill('#new-title', 'TLS room');
    const slug = await page.inputValue('#new-slug');
    await Promise.all([page.waitForURL(`${base}/dashboard/${slug}`), page.click('[data-create-room] button[type=submit]')]);
    const rtmps = await page.inputValue('[data-rtmps-url]');
    const rtmp = await page.inputValue('[data-rtmp-url]');
    check(rtmps.startsWith('rtmps://') && rtmp.startsWith('rtmp://'), `the dashboard shows both servers (${rtmps}, ${rtmp})`);
    const key = await page.inputValue('[data-stream-key]');
    check(key.length >= 32, 'the dashboard shows the new key');
    log('dashboard offers', rtmps);
    await ask(`@publish ${rtmps} ${key}`);

    // A viewer plays the room over HTTPS.
    const viewer = await (await browser.newContext()).newPage();
    viewer.on('pageerror', (e) => problems.push(`viewer: uncaught ${e.message}`));
    await viewer.goto(`${base}/rooms/${slug}`);
    await waitFor(viewer, 'the live player', () => ['live', 'behind'].includes(document.querySelector('[data-player]')?.dataset.state), null, 30000);
    const t0 = await viewer.evaluate(() => document.querySelector('[data-player] video').currentTime);
    await waitFor(viewer, 'the video to play 2 s', (t) => {
      const v = document.querySelector('[data-player] video');
      return v.currentTime > t + 2 && !v.paused && !v.error;
    }, t0, 30000);
    log('the room plays over https');

    // Chat over wss: the owner writes, the viewer reads.
    await page.goto(`${base}/rooms/${slug}`);
    for (const p of [page, viewer]) {
      await waitFor(p, 'the chat to connect', () => document.querySelector('[data-chat]')?.dataset.chatState === 'connected');
    }
    await page.fill('#chat-text', 'hello over tls');
    await page.press('#chat-text', 'Enter');
    await waitFor(viewer, 'the chat message', (text) => [...document.querySelectorAll('[data-chat-log] li.msg .text')].some((e) => e.textContent === text),
      'hello over tls', 15000);
    log('chat works over wss');
    check(problems.length === 0, problems.join('; '));
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
