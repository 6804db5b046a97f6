// Attachments of the running demo with its object store (`make run S3=1`),
// in chromium as a user would send them: Ana drops an image and a text file
// into her chat with Boris and sends them; Boris sees the image load and
// downloads the text file, whose bytes are the ones Ana sent. That covers
// what the SQL-level tests cannot: the browser's CORS preflight and PUT to
// the store, and GETs of the signed URLs from the page.
//
//   node test/browser/demo-s3.mjs [DEMO_URL]   (default: the URL of test/demo.sh url)
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WAIT = Number(process.env.BROWSER_WAIT_MS || 30000);
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const TEXT = `notes from Ana, ${new Date().toISOString()}\n`;

function demoUrl() {
  if (process.argv[2]) return process.argv[2];
  return execFileSync(path.join(HERE, '..', 'demo.sh'), ['url'], { encoding: 'utf8' }).trim();
}

async function signIn(page, url, userId) {
  await page.goto(url, { timeout: WAIT });
  await page.click(`.user-btn[data-user="${userId}"]`, { timeout: WAIT });
  await page.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
  await page.waitForSelector('#chat-list li', { timeout: WAIT });
}

/** Open the chat whose list entry mentions the peer's name. */
async function openChatWith(page, name) {
  const item = page.locator('#chat-list li', { hasText: name }).first();
  const id = await item.getAttribute('data-chat-id');
  await item.locator('button').click({ timeout: WAIT });
  await page.waitForSelector('#messages li.msg', { timeout: WAIT });
  return id;
}

async function main() {
  const url = demoUrl();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, timeout: WAIT * 2,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const problems = [];
  try {
    const ana = await (await browser.newContext({ locale: 'en-US' })).newPage();
    const boris = await (await browser.newContext({ locale: 'en-US', acceptDownloads: true })).newPage();
    for (const [p, who] of [[ana, 'Ana'], [boris, 'Boris']]) {
      p.on('pageerror', (e) => problems.push(`${who}: ${e.message}`));
      p.on('console', (m) => { if (m.type() === 'error') problems.push(`${who}: console: ${m.text()}`); });
    }
    await signIn(ana, url, 1);
    await signIn(boris, url, 2);
    const chatId = await openChatWith(ana, 'Boris');
    await boris.click(`#chat-list li[data-chat-id="${chatId}"] button`, { timeout: WAIT });
    await boris.waitForSelector('#messages li.msg', { timeout: WAIT });

    const body = `two files ${Date.now()}`;
    await ana.setInputFiles('#file', [
      { name: 'pixel.png', mimeType: 'image/png', buffer: PNG },
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(TEXT) },
    ]);
    await ana.waitForFunction(() => document.querySelectorAll('#staged .chip').length === 2, null, { timeout: WAIT });
    await ana.fill('#text', body);
    await ana.click('#send');
    console.log('ok - Ana uploads two files and sends them');

    const msg = boris.locator('#messages li.msg[data-seq]', { hasText: body });
    await msg.waitFor({ timeout: WAIT });
    const img = msg.locator('img[alt="pixel.png"]');
    await img.waitFor({ timeout: WAIT });
    await boris.waitForFunction((el) => el.complete && el.naturalWidth === 1, await img.elementHandle(), { timeout: WAIT });
    console.log('ok - Boris sees the image, loaded from the object store');

    const href = await msg.locator('a[download="notes.txt"]').getAttribute('href', { timeout: WAIT });
    const got = await boris.evaluate(async (u) => (await fetch(u)).text(), href);
    assert.equal(got, TEXT);
    console.log('ok - the text file Boris downloads is the one Ana sent');
    assert.deepEqual(problems, []);
    console.log('ok - no page or console errors');
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exitCode = 1;
});
