// Browser test of the chat demo: playwright-core driving Debian's chromium
// (never a downloaded browser) against two real chat-relays on a real
// PostgreSQL with the chat extension.
//
// Uses the cluster of test/run-tests.sh when PGHOST / PGPORT / PGDATA_DIR
// are set, else starts a private one with test/cluster.sh (PGBIN, and
// BROWSER_PG_PORT or 54902). The relays listen from BROWSER_RELAY_PORT on
// (default 19400 + a few by pid). Screenshots go to test/browser/artifacts/.
//
//   Ana (user 1) on relay A and Boris (user 2) on relay B, two browser
//   contexts: messages both ways, typing, presence, read receipts, an XSS
//   attempt shown as text; relay B restarted while Ana sends 5 messages (all
//   5 appear on Boris's side exactly once and in order, and what Boris sent
//   while cut off arrives once); older messages on scrolling up; attachments
//   by drop and by picker; a phone-sized screen; ru and sr strings.
//   Web Push on a third relay with a VAPID key: sw.js gets pushes through
//   the DevTools protocol (alert, the same chat again, clear), and the
//   Notifications button says so when chromium has no push service.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const ASAN_BIN = path.join(ROOT, 'relay', 'chat-relay-asan');
const PLAIN_BIN = path.join(ROOT, 'relay', 'chat-relay');
const RELAY_BIN = process.env.RELAY_BIN || (fs.existsSync(ASAN_BIN) ? ASAN_BIN : PLAIN_BIN);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DB = 'chat_browser';
const WAIT = Number(process.env.BROWSER_WAIT_MS || 30000); // the machine may be loaded
const XSS = '<img src=x onerror=alert(1)>';
const isRoot = process.getuid && process.getuid() === 0;

// ---- small helpers ----------------------------------------------------------

let stepNo = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    console.log(`not ok ${++stepNo} - ${name}`);
    throw err;
  }
  console.log(`ok ${++stepNo} - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

/** Poll until fn() returns a true value; fail after timeout. */
async function until(fn, what, timeout = WAIT, interval = 50) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

function freePort(from) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(freePort(from + 1)));
    s.listen(from, '127.0.0.1', () => s.close(() => resolve(from)));
  });
}

const pg = {};
function psql(sql) {
  const args = ['-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-d', pg.db || 'postgres', '-c', sql];
  const out = isRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', 'psql', ...args], { encoding: 'utf8' })
    : execFileSync('psql', args, { encoding: 'utf8' });
  return out.trim();
}

function cluster(...args) {
  execFileSync(path.join(ROOT, 'test', 'cluster.sh'), args, { stdio: 'inherit', env: process.env });
}

// ---- relays -----------------------------------------------------------------

class Relay {
  constructor(dir, name, port, origins, secretFile, role = 'chat_relay', extra = []) {
    this.name = name;
    this.port = port;
    this.conf = path.join(dir, `${name}.conf`);
    this.logFile = path.join(dir, `${name}.log`);
    fs.writeFileSync(this.conf, [
      `listen = "127.0.0.1:${port}"`,
      `db = "host=${pg.host} port=${pg.port} dbname=${DB} user=${role}"`,
      `relay_id = "${name}"`,
      `jwt_secret_file = "${secretFile}"`,
      ...origins.map((o) => `allow_origin = "${o}"`),
      `www = "${path.join(ROOT, 'relay', 'www')}"`,
      'dev_tokens = true',
      'heartbeat_interval = 1',
      'presence_grace = 2',
      'backoff_max_ms = 1000',
      ...extra,
      '',
    ].join('\n'));
    this.proc = null;
    this.exits = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Run it; with healthy, until /healthz says its database is up, else until it serves. */
  async start({ healthy = true } = {}) {
    const log = fs.openSync(this.logFile, 'a');
    const env = { ...process.env };
    env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=0:exitcode=23';
    env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1:exitcode=24';
    this.proc = spawn(RELAY_BIN, ['--config', this.conf], { stdio: ['ignore', log, log], env });
    fs.closeSync(log);
    const proc = this.proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig)));
    await until(async () => {
      if (proc.exitCode !== null) throw new Error(`relay ${this.name} exited ${proc.exitCode}:\n${this.log().slice(-3000)}`);
      try {
        const r = await fetch(`${this.url}healthz`, { signal: AbortSignal.timeout(2000) });
        return r.status === 200 || !healthy;
      } catch {
        return false;
      }
    }, `relay ${this.name} ${healthy ? 'healthy' : 'serving'}`);
  }

  /** SIGTERM; resolves with the exit code (0 expected; ASan reports leaks with 23). */
  async stop(timeout = 30000) {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode;
    this.proc.kill('SIGTERM');
    const code = await Promise.race([this.exited, new Promise((r) => setTimeout(() => r('timeout'), timeout))]);
    if (code === 'timeout') {
      this.proc.kill('SIGKILL');
      throw new Error(`relay ${this.name} did not stop on SIGTERM`);
    }
    this.exits.push(code);
    return code;
  }

  log() {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}

// ---- page helpers -------------------------------------------------------------

const bodies = (page) => page.$$eval('#messages li.msg[data-seq] .body', (els) => els.map((e) => e.textContent));
const seqs = (page) => page.$$eval('#messages li.msg[data-seq]', (els) => els.map((e) => Number(e.dataset.seq)));

async function signIn(page, relay, userId) {
  await page.goto(relay.url, { timeout: WAIT });
  await page.click(`.user-btn[data-user="${userId}"]`, { timeout: WAIT });
  await page.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
  await page.waitForSelector('#chat-list li', { timeout: WAIT });
}

async function openChat(page, chatId) {
  await page.click(`#chat-list li[data-chat-id="${chatId}"] button`, { timeout: WAIT });
  await page.waitForSelector('#messages li.msg', { timeout: WAIT });
}

async function send(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** Wait until a stored (not pending) message with this text is shown. */
async function seen(page, text) {
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages li.msg[data-seq] .body')].some((b) => b.textContent === t),
    text, { timeout: WAIT, polling: 50 });
}

/** A Web Push application server key: base64url of the uncompressed P-256 point, as the relay takes it. */
function vapidPublicKey() {
  const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]).toString('base64url');
}

/** The notifications sw.js shows on this page's origin: [{title, body, tag, data}]. */
const notifications = (page) => page.evaluate(() => navigator.serviceWorker.ready
  .then((r) => r.getNotifications())
  .then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }))));

function assertOrderedUnique(list, what) {
  for (let i = 1; i < list.length; i++) assert.ok(list[i] > list[i - 1], `${what}: seq ${list[i]} after ${list[i - 1]}`);
}

// ---- the test -----------------------------------------------------------------

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-browser-'));
  fs.chmodSync(tmp, 0o755);
  let ownCluster = null;
  const relays = [];
  let browser = null;
  const problems = [];
  const watchdog = setTimeout(() => {
    console.error('browser test: overall timeout');
    process.exit(3);
  }, Number(process.env.BROWSER_TEST_TIMEOUT_MS || 600000));

  try {
    await step('database: chat_browser with the demo seed and a long chat', async () => {
      if (process.env.PGHOST && process.env.PGPORT && process.env.PGDATA_DIR) {
        pg.dir = process.env.PGDATA_DIR;
        pg.host = process.env.PGHOST;
        pg.port = Number(process.env.PGPORT);
      } else {
        pg.dir = path.join(tmp, 'data');
        pg.host = pg.dir;
        pg.port = Number(process.env.BROWSER_PG_PORT || 54902);
        cluster('start', pg.dir, String(pg.port));
        ownCluster = pg.dir;
      }
      psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
      cluster('createdb', pg.dir, String(pg.port), DB);
      cluster('seed', pg.dir, String(pg.port), DB);
      pg.db = DB;
      psql('ALTER ROLE chat_relay LOGIN'); // CREATE EXTENSION made it NOLOGIN
      // relay B's own login, to keep it out of its database for a while
      psql('DROP ROLE IF EXISTS chat_relay_b');
      psql('CREATE ROLE chat_relay_b LOGIN IN ROLE chat_relay');
      pg.chat = Number(psql("SELECT chat.open_chat(2, 'listing', 1001, 1)"));
      pg.long = Number(psql("SELECT chat.open_chat(4, 'direct', NULL, 1)"));
      psql(`SELECT count(chat.send_message(CASE WHEN i % 2 = 0 THEN 1 ELSE 4 END, ${pg.long}, 'old message ' || i)) FROM generate_series(1, 80) AS i`);
      pg.longCount = Number(psql(`SELECT count(*) FROM chat.history(1, ${pg.long}, NULL, 1000)`));
      assert.ok(pg.longCount >= 81);
    });

    let A;
    let B;
    let P;
    await step('two relays serving the demo with development tokens, a third with a VAPID key', async () => {
      const secret = path.join(tmp, 'jwt.secret');
      fs.writeFileSync(secret, `${Buffer.from(Array.from({ length: 48 }, () => Math.floor(Math.random() * 256))).toString('base64')}\n`, { mode: 0o600 });
      const pa = await freePort(Number(process.env.BROWSER_RELAY_PORT) || 19400 + (process.pid % 200) * 2);
      const pb = await freePort(pa + 1);
      const origins = [`http://127.0.0.1:${pa}`, `http://127.0.0.1:${pb}`];
      A = new Relay(tmp, 'browser-a', pa, origins, secret);
      B = new Relay(tmp, 'browser-b', pb, origins, secret, 'chat_relay_b');
      const pp = await freePort(pb + 1);
      P = new Relay(tmp, 'browser-push', pp, [`http://127.0.0.1:${pp}`], secret, 'chat_relay',
        [`vapid_public_key = "${vapidPublicKey()}"`]);
      relays.push(A, B, P);
      await Promise.all([A.start(), B.start(), P.start()]);
      const r = await fetch(`${A.url}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true, timeout: WAIT * 2 });
    const dialogs = [];
    const watch = (page, who) => {
      page.on('pageerror', (e) => problems.push(`${who}: page error: ${e.message}`));
      page.on('console', (m) => {
        // connection failures while a relay is down are expected noise, and
        // so is chromium's own word on push in a (Playwright: incognito) context
        if (m.type() === 'error' && !/WebSocket connection|ERR_CONNECTION_REFUSED|Failed to load resource|support the Push API in incognito/.test(m.text())) problems.push(`${who}: console error: ${m.text()}`);
      });
      page.on('dialog', (d) => {
        dialogs.push(`${who}: ${d.type()} ${d.message()}`);
        d.dismiss().catch(() => {});
      });
    };
    const ctxA = await browser.newContext({ locale: 'en-US', viewport: { width: 1100, height: 760 } });
    const ctxB = await browser.newContext({ locale: 'en-US', viewport: { width: 1100, height: 760 } });
    const pageA = await ctxA.newPage();
    const pageB = await ctxB.newPage();
    watch(pageA, 'Ana');
    watch(pageB, 'Boris');

    await step('Ana (relay A) and Boris (relay B) sign in and open their chat', async () => {
      await Promise.all([signIn(pageA, A, 1), signIn(pageB, B, 2)]);
      // the seed left Ana one unread message in this chat: a badge with the last message
      const item = pageA.locator(`#chat-list li[data-chat-id="${pg.chat}"]`);
      assert.equal(await item.locator('.badge').textContent(), '1');
      assert.equal(await item.locator('.preview').textContent(), 'Great, what time suits you?');
      await Promise.all([openChat(pageA, pg.chat), openChat(pageB, pg.chat)]);
      assert.deepEqual((await bodies(pageA)).slice(0, 3), ['Hello! Is the bicycle still available?',
        'Yes, it is. You can come and see it tomorrow.', 'Great, what time suits you?']);
      await pageA.waitForFunction((id) => !document.querySelector(`#chat-list li[data-chat-id="${id}"] .badge`), pg.chat, { timeout: WAIT });
    });

    await step('no Notifications button when the relay sends no VAPID key', async () => {
      await pageA.waitForFunction(() => navigator.serviceWorker.ready.then((r) => r.active?.state === 'activated'), null, { timeout: WAIT });
      assert.equal(await pageA.isHidden('#notify'), true);
    });

    await step('presence: each sees the other online', async () => {
      await pageA.waitForSelector('#conv-dot.on', { timeout: WAIT });
      await pageB.waitForSelector('#conv-dot.on', { timeout: WAIT });
      assert.equal(await pageA.textContent('#conv-status'), 'online');
    });

    await step('messages both ways', async () => {
      await send(pageA, 'Hi Boris, 11 tomorrow?');
      await seen(pageB, 'Hi Boris, 11 tomorrow?');
      await send(pageB, 'Perfect, see you at 11.');
      await seen(pageA, 'Perfect, see you at 11.');
      await seen(pageA, 'Hi Boris, 11 tomorrow?'); // own message, stored
    });

    await step('read receipts: Ana sees Boris read her message', async () => {
      await pageA.waitForFunction(() => {
        const mine = [...document.querySelectorAll('#messages li.msg.mine[data-seq]')];
        return mine.length && mine[mine.length - 1].querySelector('.ticks.read');
      }, null, { timeout: WAIT });
    });

    await step('typing: Ana sees "Boris is typing…"', async () => {
      await pageB.click('#text');
      await pageB.keyboard.type('I am typ', { delay: 30 });
      await pageA.waitForFunction(() => document.getElementById('typing').textContent.includes('Boris is typing'), null, { timeout: WAIT });
      await pageB.fill('#text', '');
    });

    await step('XSS attempt is shown as text, never run', async () => {
      await send(pageA, XSS);
      await seen(pageB, XSS);
      await seen(pageA, XSS);
      for (const page of [pageA, pageB]) {
        assert.equal(await page.$$eval('#messages img, #chat-list img', (els) => els.length), 0, 'no img element made from a message');
        // the chat list's last message shows it as text too (once "typing…" is over)
        await page.waitForFunction(([id, x]) => document.querySelector(`#chat-list li[data-chat-id="${id}"] .preview`).textContent.endsWith(x),
          [pg.chat, XSS], { timeout: WAIT });
      }
      assert.deepEqual(dialogs, [], 'no alert');
    });

    await step('relay B restarts while Ana sends 5 messages: all 5 reach Boris once, in order', async () => {
      const before = await seqs(pageB);
      const stopped = B.stop();
      await pageB.waitForSelector('#status[data-state="reconnecting"]', { timeout: WAIT });
      assert.equal(await stopped, 0, 'relay B exits 0 on SIGTERM');
      // Ana sees Boris go offline (relay B took its users offline)
      await pageA.waitForFunction(() => /last seen/.test(document.getElementById('conv-status').textContent), null, { timeout: WAIT });
      for (let i = 1; i <= 5; i++) {
        await send(pageA, `burst ${i}`);
        await seen(pageA, `burst ${i}`);
      }
      // Boris writes while cut off: it waits, pending
      await send(pageB, 'written while offline');
      await pageB.waitForSelector('#messages li.pending', { timeout: WAIT });
      assert.ok(!(await bodies(pageB)).includes('burst 1'), 'nothing arrives while the relay is down');
      await B.start();
      await pageB.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
      await seen(pageB, 'burst 5');
      await seen(pageA, 'written while offline');
      await seen(pageB, 'written while offline');
      await pageB.waitForFunction(() => !document.querySelector('#messages li.pending'), null, { timeout: WAIT });
      const texts = await bodies(pageB);
      const bursts = texts.filter((t) => /^burst \d$/.test(t));
      assert.deepEqual(bursts, ['burst 1', 'burst 2', 'burst 3', 'burst 4', 'burst 5'], 'each exactly once, in order');
      const after = await seqs(pageB);
      assertOrderedUnique(after, 'Boris after the restart');
      assert.ok(after.length === before.length + 6, `6 new messages, got ${after.length - before.length}`);
      for (const page of [pageA, pageB]) {
        assert.equal((await bodies(page)).filter((t) => t === 'written while offline').length, 1, 'the pending send is stored once');
      }
      assertOrderedUnique(await seqs(pageA), 'Ana');
      await pageA.waitForSelector('#conv-dot.on', { timeout: WAIT });
    });

    await step('relay B comes back before its database lets it in: Boris gets the chat and the list when it does', async () => {
      const stopped = B.stop();
      await pageB.waitForSelector('#status[data-state="reconnecting"]', { timeout: WAIT });
      assert.equal(await stopped, 0, 'relay B exits 0 on SIGTERM');
      psql('ALTER ROLE chat_relay_b NOLOGIN');
      await B.start({ healthy: false });
      // Boris is let in; what he asks for is answered unavailable meanwhile
      await pageB.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
      await send(pageA, 'while B had no database');
      await seen(pageA, 'while B had no database');
      // a chat Boris's list does not show yet: only a reload of the list brings it
      psql("SELECT chat.send_message(3, chat.open_chat(3, 'direct', NULL, 2), 'new while B had no database')");
      psql('ALTER ROLE chat_relay_b LOGIN');
      await seen(pageB, 'while B had no database');
      await pageB.waitForFunction(() => /new while B had no database/.test(document.getElementById('chat-list').textContent), null, { timeout: WAIT });
      assertOrderedUnique(await seqs(pageB), 'Boris after the wait');
      assert.equal((await bodies(pageB)).filter((t) => t === 'while B had no database').length, 1);
    });

    await step('screenshots of both views', async () => {
      await pageA.screenshot({ path: path.join(ARTIFACTS, 'ana.png') });
      await pageB.screenshot({ path: path.join(ARTIFACTS, 'boris.png') });
    });

    await step('attachments: dropped and picked files are staged with previews, object URLs released', async () => {
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
      await pageA.evaluate((b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'pixel.png', { type: 'image/png' }));
        const conv = document.getElementById('conv');
        conv.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
        conv.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, png.toString('base64'));
      await pageA.waitForSelector('#staged .chip img[src^="blob:"]', { timeout: WAIT });
      assert.equal(await pageA.isHidden('#drop'), true);
      await pageA.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
      await pageA.waitForFunction(() => document.querySelectorAll('#staged .chip').length === 2, null, { timeout: WAIT });
      // this relay has no object store: a clear notice that says how to get one, nothing sent
      const count = (await bodies(pageA)).length;
      await pageA.fill('#text', 'with files');
      await pageA.click('#send');
      await pageA.waitForFunction(() => /Attachments are not available: no object store .*make run S3=1/.test(document.getElementById('toast').textContent), null, { timeout: WAIT });
      assert.equal((await bodies(pageA)).length, count);
      const blob = await pageA.getAttribute('#staged .chip img', 'src');
      assert.equal(await pageA.evaluate((u) => new Promise((r) => { const i = new Image(); i.onload = () => r('alive'); i.onerror = () => r('revoked'); i.src = u; }), blob), 'alive');
      await pageA.click('#staged .chip:first-child button');
      await pageA.click('#staged .chip:first-child button');
      assert.equal(await pageA.$$eval('#staged .chip', (els) => els.length), 0);
      assert.equal(await pageA.evaluate((u) => new Promise((r) => { const i = new Image(); i.onload = () => r('alive'); i.onerror = () => r('revoked'); i.src = u; }), blob), 'revoked', 'object URL revoked');
      await pageA.fill('#text', '');
    });

    await step('older messages load when scrolling up (IntersectionObserver)', async () => {
      await openChat(pageA, pg.long);
      const first = (await seqs(pageA)).length;
      assert.ok(first <= 30, `first page only: ${first}`);
      await until(async () => {
        await pageA.evaluate(() => { document.getElementById('scroller').scrollTop = 0; });
        return (await seqs(pageA)).length === pg.longCount;
      }, 'every page loaded');
      const all = await seqs(pageA);
      assertOrderedUnique(all, 'long chat');
      assert.equal(all[0], 1);
      assert.equal(await pageA.textContent('#older'), 'This is the beginning of the conversation');
      assert.ok((await bodies(pageA)).includes('old message 1'));
    });

    await step('a phone-sized screen: one pane at a time, nothing wider than the screen', async () => {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
      const page = await ctx.newPage();
      watch(page, 'Vesna');
      await signIn(page, A, 3);
      assert.equal(await page.isVisible('#chat-list'), true);
      assert.equal(await page.isVisible('#conv'), false);
      await page.screenshot({ path: path.join(ARTIFACTS, 'phone-list.png') });
      const chatId = await page.getAttribute('#chat-list li:first-child', 'data-chat-id');
      await page.tap(`#chat-list li[data-chat-id="${chatId}"] button`);
      await page.waitForSelector('#messages li.msg', { timeout: WAIT });
      assert.equal(await page.isVisible('#chat-list'), false);
      assert.equal(await page.isVisible('#composer'), true);
      const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
      assert.ok(fits, 'no horizontal scrolling');
      await page.screenshot({ path: path.join(ARTIFACTS, 'phone-conversation.png') });
      await page.tap('#back');
      assert.equal(await page.isVisible('#chat-list'), true);
      await ctx.close();
    });

    await step('interface language from the browser: Russian and Serbian', async () => {
      for (const [locale, text, notify] of [['ru-RU', 'Войти как демо-пользователь', 'Уведомления'], ['sr-RS', 'Prijavite se kao demo korisnik', 'Obaveštenja']]) {
        const ctx = await browser.newContext({ locale });
        const page = await ctx.newPage();
        await page.goto(A.url, { timeout: WAIT });
        await page.waitForSelector('#login:not([hidden])', { timeout: WAIT });
        assert.equal(await page.textContent('#login h2'), text);
        assert.equal(await page.textContent('#notify'), notify);
        await ctx.close();
      }
    });

    await step('Web Push: sw.js shows one notification per chat, replaces it, clears it', async () => {
      const r = await fetch(`${P.url}sw.js`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/javascript/);
      const origin = P.url.replace(/\/$/, '');
      const ctx = await browser.newContext({ locale: 'en-US' });
      await ctx.grantPermissions(['notifications'], { origin });
      const page = await ctx.newPage();
      watch(page, 'Dragan');
      const cdp = await ctx.newCDPSession(page);
      const registrations = new Map(); // registrationId -> scopeURL, live ones
      cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
        for (const reg of list) {
          if (reg.isDeleted) registrations.delete(reg.registrationId);
          else registrations.set(reg.registrationId, reg.scopeURL);
        }
      });
      await cdp.send('ServiceWorker.enable');
      await signIn(page, P, 4);
      await page.waitForSelector('#notify:not([hidden])', { timeout: WAIT });
      assert.equal(await page.textContent('#notify'), 'Notifications');
      assert.equal(await page.evaluate(() => navigator.serviceWorker.ready.then((reg) => reg.active.state)), 'activated');
      const registrationId = await until(() => [...registrations].find(([, scope]) => scope === P.url)?.[0], 'the service worker registration');
      const push = (payload) => cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(payload) });
      const chat = Number(psql("SELECT chat.open_chat(4, 'direct', NULL, 3)"));
      const other = Number(psql("SELECT chat.open_chat(4, 'direct', NULL, 2)"));
      psql(`SELECT chat.send_message(3, ${chat}, 'Is it still for sale?')`);
      const alert = (chatId, body, badge) => ({ type: 'alert', chat_id: chatId, title: 'Vesna', body, badge, count: 1, tag: `chat-${chatId}`, url: `/?chat=${chatId}` });

      await push(alert(chat, 'Is it still for sale?', 1));
      let shown = await until(async () => { const n = await notifications(page); return n.length ? n : null; }, 'the first notification');
      assert.deepEqual(shown, [{ title: 'Vesna', body: 'Is it still for sale?', tag: `chat-${chat}`, data: { chat_id: chat, url: `/?chat=${chat}` } }]);

      await push(alert(chat, 'Hello?', 2));
      shown = await until(async () => { const n = await notifications(page); return n.length === 1 && n[0].body === 'Hello?' ? n : null; }, 'the notification replaced');
      assert.deepEqual(shown.map((n) => [n.title, n.tag]), [['Vesna', `chat-${chat}`]], 'still one notification for the chat');

      await push(alert(other, 'About the bicycle', 3));
      await until(async () => (await notifications(page)).length === 2, 'a second chat, a second notification');
      await push({ type: 'clear', chat_id: chat, tag: `chat-${chat}`, badge: 1 });
      shown = await until(async () => { const n = await notifications(page); return n.length === 1 ? n : null; }, "the first chat's notification cleared");
      assert.equal(shown[0].tag, `chat-${other}`, "the other chat's stays");
      await push({ type: 'clear', chat_id: other, tag: `chat-${other}`, badge: 0 });
      await until(async () => (await notifications(page)).length === 0, 'every notification cleared');

      // a payload that is not JSON, or of an unknown type: nothing shown, the worker goes on
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: 'not json' });
      await push({ type: 'party', chat_id: chat });
      await push(alert(chat, 'after the junk', 1));
      shown = await until(async () => { const n = await notifications(page); return n.length ? n : null; }, 'a notification after the junk');
      assert.deepEqual(shown.map((n) => n.body), ['after the junk']);
      await push({ type: 'clear', chat_id: chat, tag: `chat-${chat}`, badge: 0 });
      await until(async () => (await notifications(page)).length === 0, 'cleared again');

      // subscribing: this chromium has no push service (and a Playwright
      // context is incognito, where Chrome refuses push), so subscribe fails;
      // the app says so, stores no device, and goes on
      await page.click('#notify');
      await page.waitForFunction(() => /Could not turn on notifications: the browser's push service refused or is not available/
        .test(document.getElementById('toast').textContent), null, { timeout: WAIT });
      console.log(`# subscribe refused as expected: ${await page.textContent('#toast')}`);
      await page.waitForSelector('#notify[data-state="off"]:not([disabled])', { timeout: WAIT });
      assert.equal(Number(psql('SELECT count(*) FROM chat.devices WHERE user_id = 4')), 0, 'no device stored');
      assert.equal(await page.getAttribute('#status', 'data-state'), 'open');

      // a click on a notification with the app open: sw.js posts {open_chat}
      // to the window (no DevTools command clicks a notification: the app's
      // side is checked with the message it would get)
      const current = (id) => document.querySelector(`#chat-list li[data-chat-id="${id}"] button[aria-current="true"]`);
      assert.equal(await page.evaluate(current, chat), null);
      await page.evaluate((id) => navigator.serviceWorker.dispatchEvent(new MessageEvent('message', { data: { open_chat: id } })), chat);
      await page.waitForFunction(current, chat, { timeout: WAIT });

      // a notification's url (?chat=) opens that chat once the list has it
      await page.goto(`${P.url}?chat=${chat}`, { timeout: WAIT });
      await page.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
      await page.waitForFunction((id) => document.querySelector(`#chat-list li[data-chat-id="${id}"] button[aria-current="true"]`), chat, { timeout: WAIT });
      assert.equal(await page.isVisible('#conv-inner'), true);
      await ctx.close();
    });

    await step('sign out releases the client', async () => {
      await pageA.click('#sign-out');
      await pageA.waitForSelector('#login:not([hidden])', { timeout: WAIT });
      // Ana's socket is gone: Boris sees her offline
      await pageB.waitForFunction(() => /last seen/.test(document.getElementById('conv-status').textContent), null, { timeout: WAIT });
    });

    await step('no page errors, no unexpected console errors', async () => {
      assert.deepEqual(problems, []);
    });
  } finally {
    clearTimeout(watchdog);
    if (browser) await browser.close().catch(() => {});
    for (const r of relays) {
      try {
        const code = await r.stop();
        if (code !== 0 && code !== undefined) problems.push(`relay ${r.name} exited ${code}:\n${r.log().slice(-4000)}`);
      } catch (err) {
        problems.push(String(err));
      }
      if (/AddressSanitizer|runtime error/.test(r.log())) problems.push(`sanitizer report from ${r.name}:\n${r.log().slice(-4000)}`);
      for (const c of r.exits) if (c !== 0) problems.push(`relay ${r.name} exited ${c}`);
    }
    for (const r of relays) {
      try { fs.copyFileSync(r.logFile, path.join(ARTIFACTS, `${r.name}.log`)); } catch { /* ignore */ }
    }
    if (ownCluster) {
      try { cluster('stop', ownCluster); } catch { /* ignore */ }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const fatal = problems.filter((p) => /relay|sanitizer/.test(p));
  if (fatal.length) {
    console.log(`not ok ${++stepNo} - relays stopped cleanly`);
    console.log(fatal.join('\n'));
    process.exitCode = 1;
  } else {
    console.log(`ok ${++stepNo} - relays stopped cleanly`);
  }
  console.log(`1..${stepNo}`);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exitCode = 1;
});
