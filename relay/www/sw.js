// The demo's service worker: shows the Web Push messages chat-notify sends
// and opens the chat when one is clicked. It caches nothing (the app is
// served fresh by the relay).
//
// A push payload is JSON: {type: "alert" | "clear", chat_id, title, body,
// badge, count, tag, url}. alert shows (or replaces: one per tag, i.e. per
// chat) a notification; clear closes the chat's notifications (read
// elsewhere). Both set the app badge to `badge` (the unread total) where
// the browser has one.
'use strict';

self.addEventListener('install', () => {
  self.skipWaiting(); // no old version to keep: take over at once
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** The payload, or null when there is none or it is not a JSON object. */
function payloadOf(event) {
  if (!event.data) return null;
  try {
    const p = event.data.json();
    return p && typeof p === 'object' && !Array.isArray(p) ? p : null;
  } catch {
    return null;
  }
}

function tagOf(p) {
  if (typeof p.tag === 'string' && p.tag) return p.tag;
  return p.chat_id != null ? `chat-${p.chat_id}` : 'chat';
}

/** navigator.setAppBadge(n) / clearAppBadge() where the browser has them; never fails. */
async function setBadge(n) {
  const nav = self.navigator;
  try {
    if (typeof n === 'number' && n > 0 && nav.setAppBadge) await nav.setAppBadge(n);
    else if (typeof n === 'number' && nav.clearAppBadge) await nav.clearAppBadge();
  } catch {
    // no badge here (or not allowed): the notification is what matters
  }
}

async function showAlert(p) {
  const options = {
    body: typeof p.body === 'string' ? p.body : '',
    tag: tagOf(p),
    renotify: true, // a new message in the same chat rings again
    icon: 'favicon.svg',
    data: { chat_id: p.chat_id ?? null, url: typeof p.url === 'string' ? p.url : null },
  };
  await self.registration.showNotification(typeof p.title === 'string' && p.title ? p.title : 'Chat', options);
}

async function clear(p) {
  const shown = await self.registration.getNotifications({ tag: tagOf(p) });
  for (const n of shown) n.close();
}

async function onPush(event) {
  const p = payloadOf(event);
  if (!p) return;
  if (p.type === 'alert') await showAlert(p);
  else if (p.type === 'clear') await clear(p);
  else return;
  await setBadge(p.badge);
}

self.addEventListener('push', (event) => {
  event.waitUntil(onPush(event));
});

/** The app's URL for a chat: the payload's url when it is of this origin, else the app with ?chat=. */
function chatUrl(data) {
  const base = new URL('./', self.registration.scope);
  if (data.url) {
    try {
      const u = new URL(data.url, base);
      if (u.origin === base.origin) return u.href;
    } catch {
      // not a URL: the app itself
    }
  }
  if (data.chat_id != null) base.searchParams.set('chat', String(data.chat_id));
  return base.href;
}

async function onClick(notification) {
  const data = notification.data || {};
  const url = chatUrl(data);
  const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const scope = self.registration.scope;
  const win = open.find((c) => c.url.startsWith(scope) && c.focused) || open.find((c) => c.url.startsWith(scope));
  if (win) {
    if (data.chat_id != null) win.postMessage({ open_chat: data.chat_id });
    try {
      await win.focus();
    } catch {
      // focus is allowed only from a click; the message is sent anyway
    }
    return;
  }
  await self.clients.openWindow(url);
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(onClick(event.notification));
});
