// Chat paging and chat replay in Chromium, run by cmd/onair/e2e/chatreplay_browser_test.go,
// after the Go side posted "old 000" … "old 119" in the room's chat, then "at three" and
// "at twelve" 3 s and 12 s into a recorded broadcast, and "after" once it ended:
//
//  1. The room page's chat shows the newest messages; scrolling to its top loads the older
//     ones a page at a time, each prepended without moving what was in view, until there
//     are none older: every message once, in order.
//  2. The replay page's chat, from ?t=4, shows "at three" and not "at twelve"; "at twelve"
//     appears as the video plays past its offset (never before), and a seek back to 5 s
//     takes it away again.
//
// Environment: ONAIR_URL, ROOM (the room's page path), REPLAY (the broadcast id), CHROMIUM.
import { launch } from './browser.mjs';
import { log, check } from './steps.mjs';

const base = process.env.ONAIR_URL;
const roomPath = process.env.ROOM;
const replay = process.env.REPLAY;
if (!base || !roomPath || !replay) throw new Error('ONAIR_URL, ROOM and REPLAY must be set');

// texts are the chat messages a log shows (not its notices).
const texts = (sel) => [...document.querySelectorAll(`${sel} li.msg .text`)].map((e) => e.textContent);

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });

  // 1. Scrolling up loads older messages.
  await page.goto(`${base}${roomPath}`);
  await page.waitForFunction(() => document.querySelector('[data-chat]').dataset.chatOlder === 'more', null, { timeout: 15000, polling: 100 });
  const first = await page.evaluate(texts, '[data-chat-log]');
  log('history on join', first.length, first[0]);
  check(!first.includes('old 000') && first.includes('at twelve'), `history on join: ${first.join(', ')}`);
  let pages = 0;
  for (;;) {
    // Where the first message is in view, before and after the older page lands above it.
    const before = await page.evaluate(() => {
      const l = document.querySelector('[data-chat-log]');
      l.scrollTop = 0;
      const li = l.querySelector('li');
      return { id: li.dataset.id, n: l.children.length };
    });
    await page.waitForFunction((n) => {
      const c = document.querySelector('[data-chat]');
      return c.dataset.chatOlder !== 'loading' && (c.dataset.chatOlder === 'none' || document.querySelector('[data-chat-log]').children.length > n);
    }, before.n, { timeout: 15000, polling: 50 });
    const after = await page.evaluate((id) => {
      const l = document.querySelector('[data-chat-log]');
      const li = l.querySelector(`li[data-id="${id}"]`);
      return { top: li.offsetTop - l.offsetTop - l.scrollTop, scrollTop: l.scrollTop, n: l.children.length, older: document.querySelector('[data-chat]').dataset.chatOlder };
    }, before.id);
    pages++;
    log('older page', JSON.stringify(after));
    if (after.n > before.n) {
      // The message that was first is still at the top of the view: the log did not jump.
      check(after.scrollTop > 0 && Math.abs(after.top) < 40, `after loading older messages the first one moved to ${after.top} px`);
    }
    if (after.older === 'none') break;
    check(pages < 10, 'no end of older pages');
  }
  const all = await page.evaluate(texts, '[data-chat-log]');
  const want = Array.from({ length: 120 }, (_, i) => `old ${String(i).padStart(3, '0')}`).concat(['at three', 'at twelve', 'after']);
  check(JSON.stringify(all) === JSON.stringify(want), `after scrolling up the chat shows ${all.length} messages: ${all.slice(0, 5).join(', ')} … ${all.slice(-3).join(', ')}`);

  // 2. The replay's chat follows the video.
  const { messages } = await page.evaluate((id) => fetch(`/api/v1/broadcasts/${id}/chat`).then((r) => r.json()), replay);
  const offset = Object.fromEntries(messages.map((m) => [m.text, m.offset_ms]));
  log('broadcast chat offsets', JSON.stringify(offset));
  check(offset['at three'] >= 3000 && offset['at twelve'] >= 12000, `offsets ${JSON.stringify(offset)}`);
  // Each message added to the replay's chat is noted with the video's time then.
  await page.addInitScript(() => {
    window.appeared = [];
    document.addEventListener('DOMContentLoaded', () => {
      const v = document.querySelector('video');
      new MutationObserver((records) => {
        for (const r of records) {
          for (const n of r.addedNodes) window.appeared.push({ text: n.querySelector('.text').textContent, t: v.currentTime });
        }
      }).observe(document.querySelector('[data-replay-chat] [data-chat-log]'), { childList: true });
    });
  });
  await page.goto(`${base}/replay/${replay}?t=4`);
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return v.currentTime >= 4 && [...document.querySelectorAll('[data-replay-chat] li .text')].some((e) => e.textContent === 'at three');
  }, null, { timeout: 30000, polling: 50 });
  const early = await page.evaluate((sel) => ({ t: document.querySelector('video').currentTime, shown: [...document.querySelectorAll(`${sel} li .text`)].map((e) => e.textContent) }), '[data-replay-chat]');
  log('replay early', JSON.stringify(early));
  check(early.t * 1000 < offset['at twelve'] && !early.shown.includes('at twelve'), `at ${early.t} s the replay's chat shows ${early.shown.join(', ')}`);
  check(!early.shown.some((t) => t.startsWith('old') || t === 'after'), `the replay's chat shows messages posted outside the broadcast: ${early.shown.join(', ')}`);

  await page.waitForFunction(() => window.appeared.some((a) => a.text === 'at twelve'), null, { timeout: 30000, polling: 100 });
  const seen = await page.evaluate(() => window.appeared.find((a) => a.text === 'at twelve'));
  log('at twelve appeared', JSON.stringify(seen));
  check(seen.t * 1000 >= offset['at twelve'], `"at twelve" (posted at ${offset['at twelve']} ms) appeared at ${seen.t} s of the replay`);

  // A seek back before 12 s takes it away again; paused, it stays away.
  await page.evaluate(() => {
    const v = document.querySelector('video');
    v.pause();
    v.currentTime = 5;
  });
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    const shown = [...document.querySelectorAll('[data-replay-chat] li .text')].map((e) => e.textContent);
    return !v.seeking && shown.includes('at three') && !shown.includes('at twelve');
  }, null, { timeout: 15000, polling: 50 });
  const back = await page.evaluate(() => document.querySelector('video').currentTime);
  log('after seeking back', back);
} finally {
  await browser.close();
}
process.exit(0);
