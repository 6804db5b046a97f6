// The chat demo: sign in as a seeded user, chat list with unread badges and
// last messages, a conversation with older messages loaded on scrolling up,
// live messages, typing, presence, read receipts and attachments; Web Push
// notifications through sw.js when the relay sends a VAPID key.
//
// Every piece of user text goes into the page through textContent or an
// attribute, never as HTML. Every event handler runs inside safe(): an
// exception shows a notice and the rest of the app goes on.
import { ChatClient, ChatError, backoffDelay, base64UrlToBytes } from './chat-client.js';
import { pickLang, translator } from './i18n.js';

const params = new URLSearchParams(location.search);
const lang = pickLang(navigator.languages || [navigator.language], params.get('lang'));
const t = translator(lang);
document.documentElement.lang = lang;

const MAX_FILES = 10;
const PAGE = 30;
const TYPING_SHOWN_MS = 5000;

const $ = (id) => document.getElementById(id);

/** An element with properties / attributes and children (strings become text nodes). */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), safe(v));
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// ---- error containment --------------------------------------------------

let toastTimer = null;
function toast(text) {
  const box = $('toast');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

function reportError(err) {
  console.error('chat demo:', err);
  toast(t('somethingWrong', { msg: (err && err.message) || String(err) }));
}

/** Wrap a handler: its exceptions (and rejections) are reported, never fatal. */
function safe(fn) {
  return function wrapped(...args) {
    try {
      const r = fn.apply(this, args);
      if (r && typeof r.then === 'function') r.catch(reportError);
      return r;
    } catch (err) {
      reportError(err);
      return undefined;
    }
  };
}

window.addEventListener('error', (e) => reportError(e.error || e.message));
window.addEventListener('unhandledrejection', (e) => reportError(e.reason));

// ---- static text ----------------------------------------------------------

function translatePage() {
  document.title = t('appTitle');
  for (const n of document.querySelectorAll('[data-i18n]')) n.textContent = t(n.dataset.i18n);
  for (const n of document.querySelectorAll('[data-i18n-placeholder]')) n.placeholder = t(n.dataset.i18nPlaceholder);
  for (const n of document.querySelectorAll('[data-i18n-title]')) n.title = t(n.dataset.i18nTitle);
  for (const n of document.querySelectorAll('[data-i18n-label]')) n.setAttribute('aria-label', t(n.dataset.i18nLabel));
}

const timeFmt = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(lang, { day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(lang, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

function shortTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dayFmt.format(d);
}

// ---- state ----------------------------------------------------------------

let users = new Map(); // id -> {id, name}
let S = null; // the signed-in session

function newSession(userId, client) {
  return {
    me: userId,
    client,
    chats: new Map(), // chat_id -> list_chats row (+ peerRead)
    current: null,
    msgs: new Map(), // seq -> message of the open chat
    minSeq: null,
    noMore: false,
    loadingOlder: false,
    staged: [], // {file, url}
    typingUntil: new Map(), // `${chat}:${user}` -> ms
    timers: new Set(),
    observer: null,
    reloadTimer: null,
    chatsFailures: 0, // list_chats answered unavailable/rate_limited in a row
    readSent: new Map(), // chat_id -> seq sent with read
    deviceId: null, // this browser's push device, registered for this user
    offs: [],
  };
}

function later(fn, ms) {
  const id = setTimeout(() => {
    S?.timers.delete(id);
    safe(fn)();
  }, ms);
  S.timers.add(id);
  return id;
}

function userName(id) {
  if (S && id === S.me) return t('you');
  return users.get(id)?.name || t('user', { id });
}

function peerOf(chat) {
  return chat.peer_ids && chat.peer_ids.length ? chat.peer_ids[0] : null;
}

function chatTitle(chat) {
  const names = (chat.peer_ids || []).map((id) => users.get(id)?.name || t('user', { id }));
  return names.join(', ') || t('user', { id: '?' });
}

function chatContext(chat) {
  if (chat.kind === 'listing') return t('listing', { id: chat.context_id });
  if (chat.kind === 'product') return t('product', { id: chat.context_id });
  return t('direct');
}

function peerReadKey(chatId) {
  return `chat-demo:read:${S.me}:${chatId}`;
}

function peerRead(chatId) {
  const c = S.chats.get(chatId);
  if (c && c.peerRead != null) return c.peerRead;
  const v = Number(localStorage.getItem(peerReadKey(chatId)) || 0);
  if (c) c.peerRead = v;
  return v;
}

function setPeerRead(chatId, seq) {
  const c = S.chats.get(chatId);
  if (!c) return;
  if (seq > peerRead(chatId)) {
    c.peerRead = seq;
    localStorage.setItem(peerReadKey(chatId), String(seq));
  }
}

// ---- sign in ----------------------------------------------------------------

async function loadUsers() {
  try {
    const r = await fetch('users.json', { cache: 'no-cache' });
    const list = await r.json();
    users = new Map(list.map((u) => [u.id, u]));
  } catch {
    users = new Map();
  }
}

function showLogin(error) {
  $('app').hidden = true;
  $('login').hidden = false;
  const ul = $('user-list');
  ul.replaceChildren(...[...users.values()].map((u) => el('li', {},
    el('button', { type: 'button', class: 'user-btn', dataset: { user: u.id }, onclick: () => signIn(u.id) },
      el('strong', { text: u.name }), el('small', { text: `#${u.id}${u.about ? ' · ' + u.about : ''}` })))));
  const err = $('login-error');
  err.hidden = !error;
  err.textContent = error || '';
}

async function devToken(userId) {
  const r = await fetch(`/dev/token?user=${encodeURIComponent(userId)}`, { cache: 'no-store' });
  if (r.status === 403 || r.status === 404 || r.status === 501) {
    const e = new Error(t('devTokensOff'));
    e.devTokensOff = true;
    throw e;
  }
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return (await r.json()).token;
}

let signingIn = false;

async function signIn(userId) {
  if (signingIn || S) return; // a double click makes one session, one socket
  signingIn = true;
  try {
    await devToken(userId); // fails early when development tokens are off
  } catch (err) {
    if (err.devTokensOff) $('token-form').hidden = false;
    showLogin(t('signInFailed', { msg: err.message }));
    return;
  } finally {
    signingIn = false;
  }
  sessionStorage.setItem('chat-demo-user', String(userId));
  start(userId, () => devToken(userId));
}

function start(userId, token) {
  if (S) signOut();
  const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  const client = new ChatClient({ url: wsUrl, token });
  S = newSession(userId, client);
  $('login').hidden = true;
  $('app').hidden = false;
  $('me').textContent = userId != null ? `${users.get(userId)?.name || t('user', { id: userId })} #${userId}` : '';
  const on = (type, fn) => S.offs.push(client.on(type, safe(fn)));
  on('state', onState);
  on('welcome', onWelcome);
  on('message', onMessage);
  on('edit', onChange);
  on('delete', onChange);
  on('read', onRead);
  on('typing', onTyping);
  on('presence', onPresence);
  on('sendfailed', onSendFailed);
  on('error', (err) => console.warn('chat client:', err.code, err.message));
  setupObserver();
  renderChats();
  showConversation(null);
  client.connect().catch(() => {});
}

function signOut() {
  if (!S) return;
  for (const id of S.timers) clearTimeout(id);
  S.observer?.disconnect();
  for (const f of S.staged) S.client.revokePreview(f.url);
  for (const off of S.offs) off();
  const { client, deviceId } = S;
  // no more pushes for this user here (the next one to sign in registers
  // the browser again); close() releases socket, timers, listeners, object URLs
  if (deviceId != null) {
    Promise.race([client.unregisterDevice(deviceId), new Promise((r) => setTimeout(r, 2000))])
      .catch(() => {}).finally(() => client.close());
  } else {
    client.close();
  }
  S = null;
  setNotifyButton('off');
  $('notify').hidden = true;
  sessionStorage.removeItem('chat-demo-user');
  $('messages').replaceChildren();
  $('chat-list').replaceChildren();
  $('staged').replaceChildren();
  showLogin();
}

// ---- connection -----------------------------------------------------------

function onState({ state }) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = t(`state_${state}`);
}

function onWelcome(w) {
  if (S.me == null) {
    S.me = w.user_id;
    $('me').textContent = `${users.get(w.user_id)?.name || t('user', { id: w.user_id })} #${w.user_id}`;
  }
  // badges and last messages may have changed while away; the open chat
  // catches up by itself (the client follows it)
  loadChats();
  showNotifyButton();
  refreshPush().catch((err) => console.warn('push:', err.message));
}

// ---- chat list ------------------------------------------------------------

async function loadChats() {
  const s = S;
  let rows;
  try {
    rows = await s.client.chats({ pageSize: 100 });
  } catch (err) {
    // a relay still reaching its database, or busy: again soon; a lost
    // connection loads them at its next welcome
    if (S !== s || err.code === 'disconnected') return;
    if (!err.retryable) throw err;
    s.chatsFailures++;
    later(loadChats, backoffDelay(s.chatsFailures));
    return;
  }
  if (S !== s) return;
  s.chatsFailures = 0;
  for (const row of rows) {
    const old = s.chats.get(row.chat_id);
    if (old && old.peerRead != null) row.peerRead = old.peerRead;
    s.chats.set(row.chat_id, row);
    s.client.follow(row.chat_id, { lastSeq: row.last_message ? row.last_message.seq : 0 });
  }
  renderChats();
  if (wantChat != null && s.chats.has(wantChat)) {
    const id = wantChat;
    wantChat = null;
    openChat(id);
  }
  const peers = new Set();
  for (const c of s.chats.values()) for (const p of c.peer_ids || []) peers.add(p);
  if (peers.size) s.client.watchPresence([...peers]);
  if (s.current != null) {
    renderHeader();
    markReadSoon();
  }
}

function scheduleReloadChats() {
  if (S.reloadTimer) return;
  S.reloadTimer = later(() => {
    S.reloadTimer = null;
    loadChats();
  }, 300);
}

function sortedChats() {
  return [...S.chats.values()].sort((a, b) =>
    (b.last_activity || '').localeCompare(a.last_activity || '') || b.chat_id - a.chat_id);
}

function isTyping(chatId, userId) {
  return (S.typingUntil.get(`${chatId}:${userId}`) || 0) > Date.now();
}

function renderChats() {
  const list = sortedChats();
  $('no-chats').hidden = list.length > 0;
  $('chat-list').replaceChildren(...list.map(renderChatItem));
  const total = list.reduce((n, c) => n + (c.unread || 0), 0);
  document.title = (total ? `(${total}) ` : '') + t('appTitle');
}

function renderChatItem(c) {
  const peer = peerOf(c);
  const pres = peer != null ? S.client.presenceOf(peer) : null;
  const typing = peer != null && isTyping(c.chat_id, peer);
  const lm = c.last_message;
  let preview = '';
  if (lm) {
    const text = lm.deleted ? t('deleted') : (lm.preview || t('noText'));
    preview = lm.sender_id === S.me ? `${t('you')}: ${text}` : text;
  }
  const title = chatTitle(c);
  return el('li', { dataset: { chatId: c.chat_id } },
    el('button', {
      type: 'button', class: 'chat-item', 'aria-current': c.chat_id === S.current ? 'true' : null,
      onclick: () => openChat(c.chat_id),
    },
    el('span', { class: 'avatar', 'aria-hidden': 'true' }, title.slice(0, 1).toUpperCase(),
      el('span', { class: `dot${pres && pres.online ? ' on' : ''}` })),
    el('span', { class: 'chat-name' }, title, ' ', el('span', { class: 'chat-context', text: chatContext(c) })),
    el('span', { class: 'chat-time', text: shortTime(lm ? lm.created_at : c.last_activity) }),
    el('span', { class: `preview${typing ? ' typing-now' : ''}`, text: typing ? t('typingShort') : preview }),
    c.unread ? el('span', { class: 'badge', 'aria-label': t('unread', { n: c.unread }), text: String(c.unread) }) : null));
}

// ---- conversation -----------------------------------------------------------

function showConversation(chatId) {
  $('pick-chat').hidden = chatId != null;
  $('conv-inner').hidden = chatId == null;
  $('app').classList.toggle('in-chat', chatId != null);
}

async function openChat(chatId) {
  const s = S;
  if (s.current === chatId) {
    showConversation(chatId);
    return;
  }
  s.current = chatId;
  s.msgs = new Map();
  s.minSeq = null;
  s.noMore = false;
  s.loadingOlder = false;
  clearStaged();
  $('messages').replaceChildren();
  $('older').textContent = '';
  $('text').value = '';
  showConversation(chatId);
  renderChats();
  renderHeader();
  const rows = await s.client.history(chatId, { pageSize: PAGE });
  if (S !== s || s.current !== chatId) return;
  for (const m of rows) insertMessage(m);
  if (rows.length < PAGE) setNoMore();
  scrollToBottom();
  markReadSoon();
  maybeLoadOlder();
  const peer = peerOf(s.chats.get(chatId) || {});
  if (peer != null && !s.client.presenceOf(peer)) s.client.watchPresence([peer]);
}

function setNoMore() {
  S.noMore = true;
  $('older').textContent = t('beginning');
}

function setupObserver() {
  // older messages come in when the top of the list scrolls into view
  S.observer = new IntersectionObserver(safe((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadOlder();
  }), { root: $('scroller'), rootMargin: '200px 0px 0px 0px' });
  S.observer.observe($('older'));
}

async function loadOlder() {
  const s = S;
  if (!s || s.current == null || s.loadingOlder || s.noMore || s.minSeq == null) return;
  const chatId = s.current;
  s.loadingOlder = true;
  $('older').textContent = t('loadingOlder');
  try {
    const rows = await s.client.history(chatId, { beforeSeq: s.minSeq, pageSize: PAGE });
    if (S !== s || s.current !== chatId) return;
    const sc = $('scroller');
    const fromBottom = sc.scrollHeight - sc.scrollTop;
    for (const m of rows) insertMessage(m);
    sc.scrollTop = sc.scrollHeight - fromBottom; // keep what the reader was looking at
    if (rows.length < PAGE) setNoMore();
    else $('older').textContent = '';
  } finally {
    s.loadingOlder = false;
  }
  if (S === s) maybeLoadOlder();
}

/** The top is still in view (short pages, a tall screen): the observer will not fire again, so go on. */
function maybeLoadOlder() {
  if (S && !S.noMore && $('scroller').scrollTop < 200) later(loadOlder, 50);
}

function renderHeader() {
  const c = S.chats.get(S.current);
  if (!c) {
    $('conv-title').textContent = '';
    $('conv-status').textContent = '';
    return;
  }
  $('conv-title').textContent = `${chatTitle(c)} · ${chatContext(c)}`;
  const peer = peerOf(c);
  const pres = peer != null ? S.client.presenceOf(peer) : null;
  $('conv-dot').className = `dot${pres && pres.online ? ' on' : ''}`;
  let status = '';
  if (pres) status = pres.online ? t('online') : pres.last_seen ? t('lastSeen', { time: fullFmt.format(new Date(pres.last_seen)) }) : t('offline');
  $('conv-status').textContent = status;
  const typers = (c.peer_ids || []).filter((id) => isTyping(c.chat_id, id));
  $('typing').textContent = typers.length ? t('typing', { name: typers.map(userName).join(', ') }) : '';
}

function nearBottom() {
  const sc = $('scroller');
  return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 120;
}

function scrollToBottom() {
  const sc = $('scroller');
  sc.scrollTop = sc.scrollHeight;
}

/** Put a message into the open conversation, in seq order (replacing an older state or its pending bubble). */
function insertMessage(m) {
  const list = $('messages');
  S.msgs.set(m.seq, m);
  if (S.minSeq == null || m.seq < S.minSeq) S.minSeq = m.seq;
  const node = renderMessage(m);
  const old = list.querySelector(`li[data-seq="${m.seq}"]`);
  if (old) {
    old.replaceWith(node);
    return;
  }
  if (m.client_id) list.querySelector(`li.pending[data-client-id="${CSS.escape(m.client_id)}"]`)?.remove();
  let before = null;
  for (const li of list.children) {
    const s = Number(li.dataset.seq);
    if (li.dataset.seq && s > m.seq) {
      before = li;
      break;
    }
    if (!li.dataset.seq) { // pending bubbles stay last
      before = li;
      break;
    }
  }
  list.insertBefore(node, before);
}

function ticks(m) {
  const read = peerRead(m.chat_id) >= m.seq;
  return el('span', { class: `ticks${read ? ' read' : ''}`, title: read ? t('read') : t('sent'), text: read ? '✓✓' : '✓' });
}

function renderMessage(m) {
  const mine = m.sender_id === S.me;
  const li = el('li', {
    class: `msg${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`,
    dataset: { seq: m.seq, sender: m.sender_id, clientId: m.client_id || '' },
  });
  li.append(el('div', { class: 'body', text: m.deleted ? t('deleted') : m.body }));
  if (!m.deleted && m.attachments && m.attachments.length) li.append(renderFiles(m.attachments));
  li.append(el('div', { class: 'meta' },
    m.edited_at && !m.deleted ? el('span', { text: t('edited') }) : null,
    el('time', { datetime: m.created_at, text: timeFmt.format(new Date(m.created_at)) }),
    mine ? ticks(m) : null));
  return li;
}

function renderFiles(files) {
  return el('ul', { class: 'files' }, files.map((f) => {
    const li = el('li', {}, el('span', { text: `${f.name} (${formatSize(f.size)})` }));
    S.client.attachmentUrl(f.id).then((url) => {
      if (!/^https?:\/\//i.test(url)) return;
      if (/^image\//.test(f.content_type)) {
        li.replaceChildren(el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' },
          el('img', { src: url, alt: f.name, loading: 'lazy' })));
      } else {
        li.replaceChildren(el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', download: f.name, text: `${f.name} (${formatSize(f.size)})` }));
      }
    }).catch(() => {});
    return li;
  }));
}

function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function updateTicks(chatId) {
  if (S.current !== chatId) return;
  for (const li of $('messages').querySelectorAll('li.msg.mine[data-seq]')) {
    const m = S.msgs.get(Number(li.dataset.seq));
    if (m) li.querySelector('.ticks')?.replaceWith(ticks(m));
  }
}

function markReadSoon() {
  const s = S;
  if (!s || s.current == null || document.visibilityState !== 'visible') return;
  const chatId = s.current;
  let max = 0;
  for (const m of s.msgs.values()) if (m.sender_id !== s.me && m.seq > max) max = m.seq;
  const c = s.chats.get(chatId);
  if (!max || max <= (s.readSent.get(chatId) || 0) || (c && c.read_seq >= max && !c.unread)) return;
  s.readSent.set(chatId, max);
  s.client.markRead(chatId, max).then((r) => {
    if (S !== s) return;
    const chat = s.chats.get(chatId);
    if (chat) {
      chat.unread = r.unread;
      chat.read_seq = r.read_seq;
      renderChats();
    }
  }).catch((err) => {
    s.readSent.delete(chatId);
    if (!(err instanceof ChatError) || err.code !== 'closed') console.warn('mark read:', err.message);
  });
}

document.addEventListener('visibilitychange', safe(() => markReadSoon()));

// ---- events ---------------------------------------------------------------

function onMessage(ev) {
  const m = ev.message;
  const c = S.chats.get(ev.chat_id);
  if (!c) {
    scheduleReloadChats(); // a chat this list has not seen yet
  } else {
    c.last_message = { seq: m.seq, sender_id: m.sender_id, preview: (m.body || '').slice(0, 200), created_at: m.created_at, deleted: m.deleted };
    c.last_activity = m.created_at;
    if (m.sender_id !== S.me && !(ev.chat_id === S.current && document.visibilityState === 'visible')) c.unread = (c.unread || 0) + 1;
    if (m.sender_id !== S.me) S.typingUntil.delete(`${ev.chat_id}:${m.sender_id}`);
  }
  if (ev.chat_id === S.current) {
    const stick = nearBottom() || m.sender_id === S.me;
    insertMessage(m);
    if (stick) scrollToBottom();
    renderHeader();
    markReadSoon();
  }
  renderChats();
}

function onChange(ev) {
  const m = ev.message;
  const c = S.chats.get(ev.chat_id);
  if (c && c.last_message && c.last_message.seq === m.seq) {
    c.last_message = { ...c.last_message, preview: (m.body || '').slice(0, 200), deleted: m.deleted };
    renderChats();
  }
  if (ev.chat_id === S.current && S.msgs.has(m.seq)) insertMessage(m);
}

function onRead(ev) {
  if (ev.user_id === S.me) {
    const c = S.chats.get(ev.chat_id);
    if (c && ev.seq >= (c.last_message ? c.last_message.seq : 0)) {
      c.unread = 0; // read on another device
      renderChats();
    }
    return;
  }
  setPeerRead(ev.chat_id, ev.seq);
  updateTicks(ev.chat_id);
}

function onTyping(ev) {
  if (ev.user_id === S.me) return;
  S.typingUntil.set(`${ev.chat_id}:${ev.user_id}`, Date.now() + TYPING_SHOWN_MS);
  renderChats();
  if (ev.chat_id === S.current) renderHeader();
  later(() => {
    renderChats();
    if (S.current != null) renderHeader();
  }, TYPING_SHOWN_MS + 50);
}

function onPresence() {
  renderChats();
  if (S.current != null) renderHeader();
}

function onSendFailed(ev) {
  const li = $('messages').querySelector(`li.pending[data-client-id="${CSS.escape(ev.client_id)}"]`);
  if (li) markFailed(li, ev);
}

// ---- composing --------------------------------------------------------------

function pendingBubble(chatId, clientId, body, files) {
  return el('li', { class: 'msg mine pending', dataset: { clientId } },
    el('div', { class: 'body', text: body }),
    files.length ? el('ul', { class: 'files' }, files.map((f) => el('li', { text: f.name }))) : null,
    el('div', { class: 'meta' }, el('span', { class: 'state', text: t('sending') })));
}

function markFailed(li, { chat_id: chatId, client_id: clientId, body }) {
  li.classList.add('failed');
  li.querySelector('.meta').replaceChildren(
    el('span', { class: 'state', text: t('failed') }),
    el('button', {
      type: 'button', class: 'retry', text: t('retry'),
      onclick: () => {
        li.classList.remove('failed');
        li.querySelector('.meta').replaceChildren(el('span', { class: 'state', text: t('sending') }));
        S.client.send(chatId, body, { clientId }).catch(() => {}); // same client_id: never stored twice
      },
    }));
}

async function submit(e) {
  e.preventDefault();
  const s = S;
  const chatId = s.current;
  if (chatId == null) return;
  const text = $('text');
  const body = text.value.trim();
  const files = s.staged.slice();
  if (!body && !files.length) return;
  let attachmentIds;
  if (files.length) {
    try {
      const up = await Promise.all(files.map((f) => s.client.upload(chatId, f.file)));
      attachmentIds = up.map((a) => a.id);
    } catch (err) {
      // the server cannot store files at all (the demo without S3: say how), or this upload failed
      toast(err.code !== 'unsupported' ? t('uploadFailed', { msg: err.message })
        : t(err.reason === 'not_configured' ? 'storageNotConfigured' : 'attachmentsUnavailable'));
      return; // the text and the files stay, to send again or remove
    }
    if (S !== s) return;
    clearStaged();
  }
  text.value = '';
  autosize();
  const clientId = s.client.newClientId();
  $('messages').append(pendingBubble(chatId, clientId, body, files.map((f) => f.file)));
  scrollToBottom();
  try {
    await s.client.send(chatId, body, { clientId, attachmentIds });
  } catch (err) {
    if (S !== s) return;
    const li = $('messages').querySelector(`li.pending[data-client-id="${CSS.escape(clientId)}"]`);
    if (li && !li.classList.contains('failed')) markFailed(li, { chat_id: chatId, client_id: clientId, body });
    if (err.code !== 'closed') toast(err.message);
  }
}

function stage(fileList) {
  const files = [...fileList];
  if (!files.length || S.current == null) return;
  if (S.staged.length + files.length > MAX_FILES) {
    toast(t('tooManyFiles', { n: MAX_FILES }));
    files.length = Math.max(0, MAX_FILES - S.staged.length);
  }
  for (const file of files) {
    const url = /^image\//.test(file.type) ? S.client.previewUrl(file) : null;
    S.staged.push({ file, url });
  }
  renderStaged();
}

function unstage(item) {
  S.client.revokePreview(item.url); // no leaked object URL
  S.staged = S.staged.filter((x) => x !== item);
  renderStaged();
}

function clearStaged() {
  if (!S) return;
  for (const f of S.staged) S.client.revokePreview(f.url);
  S.staged = [];
  renderStaged();
}

function renderStaged() {
  $('staged').replaceChildren(...S.staged.map((item) => el('li', { class: 'chip' },
    item.url ? el('img', { src: item.url, alt: '' }) : null,
    el('span', { text: `${item.file.name} (${formatSize(item.file.size)})` }),
    el('button', { type: 'button', 'aria-label': t('remove'), title: t('remove'), text: '×', onclick: () => unstage(item) }))));
}

function autosize() {
  const ta = $('text');
  ta.style.height = 'auto';
  ta.style.height = `${Math.min(ta.scrollHeight, 160)}px`;
}

function wireComposer() {
  $('composer').addEventListener('submit', safe(submit));
  $('text').addEventListener('input', safe(() => {
    autosize();
    if (S && S.current != null && $('text').value.trim()) S.client.typing(S.current);
  }));
  $('text').addEventListener('keydown', safe((e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  }));
  $('file').addEventListener('change', safe((e) => {
    stage(e.target.files);
    e.target.value = '';
  }));
  // drag and drop onto the conversation
  const conv = $('conv');
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && [...(e.dataTransfer.types || [])].includes('Files');
  conv.addEventListener('dragenter', safe((e) => {
    if (!hasFiles(e) || !S || S.current == null) return;
    e.preventDefault();
    depth++;
    $('drop').hidden = false;
  }));
  conv.addEventListener('dragover', safe((e) => {
    if (!hasFiles(e) || !S || S.current == null) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  }));
  conv.addEventListener('dragleave', safe(() => {
    depth = Math.max(0, depth - 1);
    if (!depth) $('drop').hidden = true;
  }));
  conv.addEventListener('drop', safe((e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    $('drop').hidden = true;
    if (S && S.current != null) stage(e.dataTransfer.files);
  }));
  $('back').addEventListener('click', safe(() => showConversation(null)));
  $('sign-out').addEventListener('click', safe(signOut));
  $('other-user').addEventListener('submit', safe((e) => {
    e.preventDefault();
    const id = Number($('other-user-id').value);
    if (Number.isSafeInteger(id) && id > 0) signIn(id);
  }));
  $('token-form').addEventListener('submit', safe((e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    if (token) start(null, token);
  }));
}

// ---- push notifications ---------------------------------------------------------
//
// sw.js shows what chat-notify pushes and, on a click, tells this page to
// open the chat (or opens the app with ?chat=). The Notifications button
// shows when the relay's welcome has a vapid_public_key and the browser can
// push: permission, PushManager.subscribe with that key, register_device.

let wantChat = Number(params.get('chat')) || null; // a chat to open once the list has it

const pushSupported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js').catch((err) => console.warn('service worker:', err.message));
  navigator.serviceWorker.addEventListener('message', safe((e) => {
    const id = Number(e.data && e.data.open_chat);
    if (Number.isSafeInteger(id) && id > 0) openChatFromNotification(id);
  }));
}

function openChatFromNotification(chatId) {
  if (S && S.chats.has(chatId)) {
    openChat(chatId);
  } else {
    wantChat = chatId; // opened when the chat list has it
    if (S) scheduleReloadChats();
  }
}

/** off: can be turned on; busy: asking; on: this browser is registered for the user. */
function setNotifyButton(state) {
  const b = $('notify');
  b.dataset.state = state;
  b.disabled = state !== 'off';
  b.textContent = t(state === 'on' ? 'notificationsOn' : 'notifications');
}

function showNotifyButton() {
  $('notify').hidden = !(S && S.client.vapidPublicKey && pushSupported());
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The browser's subscription made with this key, if there is one. */
async function currentSubscription(reg, key) {
  const sub = await reg.pushManager.getSubscription();
  const k = sub && sub.options && sub.options.applicationServerKey;
  return k && sameBytes(new Uint8Array(k), key) ? sub : null;
}

/** p, or an AbortError after ms (a push service that never answers would leave the button busy). */
function within(p, ms, message) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(message, 'AbortError')), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const serviceWorkerReady = () => within(navigator.serviceWorker.ready, 10000, 'the service worker did not start');

/** Subscribe with the relay's key (a subscription made for another key goes first). */
async function subscribe(reg, key) {
  const same = await currentSubscription(reg, key);
  if (same) return same;
  const old = await reg.pushManager.getSubscription();
  if (old) await old.unsubscribe(); // made for another key: chat-notify cannot sign for it
  return within(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }), 30000,
    'the push service did not answer');
}

/** The Notifications button: ask, subscribe, register; every failure is a notice, the app goes on. */
async function enablePush() {
  const s = S;
  if (!s || !s.client.vapidPublicKey || !pushSupported()) return;
  setNotifyButton('busy');
  try {
    const key = base64UrlToBytes(s.client.vapidPublicKey);
    if (await Notification.requestPermission() !== 'granted') {
      toast(t('notifyDenied'));
      return;
    }
    let sub;
    try {
      sub = await subscribe(await serviceWorkerReady(), key);
    } catch (err) {
      // e.g. a browser without a push service (AbortError: push service not available)
      console.warn('push subscribe:', err.name, err.message);
      toast(t(err.name === 'AbortError' ? 'notifyNoService' : 'notifyFailed', { msg: err.message }));
      return;
    }
    const id = await s.client.registerDevice('webpush', sub);
    if (S !== s) return;
    s.deviceId = id;
    toast(t('notifyOn'));
  } catch (err) {
    toast(t('notifyFailed', { msg: err.message }));
  } finally {
    if (S === s) setNotifyButton(s.deviceId != null ? 'on' : 'off');
  }
}

/** At welcome: a browser already subscribed (and allowed) is registered for this user, silently. */
async function refreshPush() {
  const s = S;
  if (s.deviceId != null || !s.client.vapidPublicKey || !pushSupported() || Notification.permission !== 'granted') return;
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = reg && await currentSubscription(reg, base64UrlToBytes(s.client.vapidPublicKey));
  if (!sub) return;
  const id = await s.client.registerDevice('webpush', sub);
  if (S !== s) return;
  s.deviceId = id;
  setNotifyButton('on');
}

// ---- start ------------------------------------------------------------------

async function main() {
  translatePage();
  wireComposer();
  $('notify').addEventListener('click', safe(enablePush));
  registerServiceWorker();
  await loadUsers();
  const again = Number(sessionStorage.getItem('chat-demo-user') || params.get('user') || 0);
  if (again > 0) signIn(again);
  else showLogin();
}

safe(main)();
