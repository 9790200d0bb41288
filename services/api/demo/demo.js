// The Chorus demo publication page: vanilla JS on the public API only (plus the dev-only
// POST /demo/token sign-in). body_html is sanitized by the server and is the ONLY thing
// inserted with innerHTML; everything else goes in via textContent.
"use strict";

(() => {
  const THREAD = "demo-pows";
  const TITLE = "South Korea and the POWs";
  const POLL_MS = 2000;
  const $ = (sel) => document.querySelector(sel);
  const state = { user: null, token: null, sub: null, inbox: null };

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "testid") node.dataset.testid = value;
      else node.setAttribute(key, value);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function status(message) { $("[data-testid=status]").textContent = message || ""; }

  async function api(method, path, { body, token = state.token, query } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const qs = query ? "?" + new URLSearchParams(
      Object.entries(query).filter(([, v]) => v !== null && v !== undefined)) : "";
    // Reads are cacheable (max-age): this page reloads when it knows something changed, so
    // it always asks again, with the ETag it holds (a 304 when nothing did).
    const res = await fetch(path + qs, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-cache",
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((data.error && data.error.message) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  async function mintToken(user) {
    return (await api("POST", "/demo/token", { body: { user }, token: null })).token;
  }

  // ---- sign in --------------------------------------------------------------------------
  async function signIn(user) {
    const token = await mintToken(user);
    Object.assign(state, { user, token, sub: `demo-${user}`, inbox: null });
    localStorage.setItem("chorus-demo-user", user);
    document.querySelectorAll("[data-user]").forEach((b) =>
      b.classList.toggle("active", b.dataset.user === user));
    $("[data-testid=whoami]").textContent = `Signed in as ${user[0].toUpperCase()}${user.slice(1)}`;
    $("[data-testid=comment-body]").placeholder = "Write a comment…";
    $("[data-testid=bell]").hidden = false;
    await Promise.all([loadComments(), pollNotifications()]);
  }

  // ---- the thread -------------------------------------------------------------------------
  async function registerThread() {
    const editor = await mintToken("editor");
    await api("PUT", `/v1/threads/${THREAD}`, {
      token: editor, body: { title: TITLE, url: `${location.origin}/demo/`, locked: false },
    });
  }

  async function loadComments(minVersion) {
    const query = { sort: "oldest", limit: 50, min_version: minVersion };
    const [thread, page] = await Promise.all([
      api("GET", `/v1/threads/${THREAD}`, { query: { min_version: minVersion } })
        .catch((e) => (e.status === 404 ? { comment_count: 0 } : Promise.reject(e))),
      api("GET", `/v1/threads/${THREAD}/comments`, { query }),
    ]);
    const count = page.comment_count ?? thread.comment_count;
    $("[data-testid=comment-count]").textContent = `${count} Comment${count === 1 ? "" : "s"}`;
    const list = $("[data-testid=comment-list]");
    list.replaceChildren(...page.comments.map(renderComment));
  }

  function likedKey() { return `chorus-demo-liked-${state.user}`; }
  function likedSet() { return new Set(JSON.parse(localStorage.getItem(likedKey()) || "[]")); }
  function saveLiked(set) { localStorage.setItem(likedKey(), JSON.stringify([...set])); }

  function renderComment(c) {
    const li = el("li", { class: "comment" + (c.deleted ? " deleted" : ""), id: `comment-${c.id}`,
      testid: `comment-${c.id}` });
    const meta = el("div", { class: "meta" });
    meta.append(el("span", { class: "author", testid: `author-${c.id}` },
      c.author ? c.author.name : "[deleted]"));
    meta.append(el("time", { datetime: c.created_at }, new Date(c.created_at).toLocaleString()));
    if (c.edited_at) meta.append(el("span", {}, " · edited"));
    li.append(meta);
    const body = el("div", { class: "body", testid: `body-${c.id}` });
    if (c.deleted || c.body_html === null) body.textContent = "This comment was deleted.";
    else body.innerHTML = c.body_html; // sanitized server-side: the only innerHTML on the page
    li.append(body);
    if (!c.deleted) li.append(renderActions(c, li, body));
    const replies = el("ol", { class: "replies", testid: `replies-${c.id}` });
    replies.append(...(c.replies || []).map(renderComment));
    li.append(replies);
    if (c.replies_next_cursor) li.append(moreRepliesButton(c.id, c.replies_next_cursor, replies));
    return li;
  }

  function renderActions(c, li, body) {
    const actions = el("div", { class: "actions" });
    const liked = likedSet().has(c.id);
    const like = el("button", { type: "button", testid: `like-${c.id}`, class: liked ? "liked" : "" },
      `♥ ${c.like_count}`);
    like.addEventListener("click", () => guard(async () => {
      const set = likedSet();
      const on = !set.has(c.id);
      const res = await api(on ? "PUT" : "DELETE", `/v1/comments/${c.id}/like`);
      on ? set.add(c.id) : set.delete(c.id);
      saveLiked(set);
      like.classList.toggle("liked", on);
      like.textContent = `♥ ${res.like_count ?? c.like_count + (on ? 1 : -1)}`;
    }));
    const reply = el("button", { type: "button", testid: `reply-${c.id}` }, "Reply");
    reply.addEventListener("click", () => {
      if (!requireSignIn()) return;
      let form = li.querySelector(`:scope > form.reply-form`);
      if (form) { form.remove(); return; }
      form = composer(`reply-form-${c.id}`, "Write a reply…", "Post reply", async (text) => {
        const res = await api("POST", `/v1/threads/${THREAD}/comments`,
          { body: { body: text, parent_id: c.id } });
        await loadComments(res.version);
      });
      form.classList.add("reply-form");
      actions.after(form);
      form.querySelector("textarea").focus();
    });
    actions.append(like, reply);
    if (state.sub && c.author && c.author.id === state.sub) {
      const edit = el("button", { type: "button", testid: `edit-${c.id}` }, "Edit");
      edit.addEventListener("click", () => {
        if (li.querySelector(":scope > form.edit-form")) return;
        const form = composer(`edit-form-${c.id}`, "", "Save", async (text) => {
          const res = await api("PATCH", `/v1/comments/${c.id}`, { body: { body: text } });
          await loadComments(res.version);
        });
        form.classList.add("edit-form");
        form.querySelector("textarea").value = body.textContent.trim();
        body.after(form);
      });
      const del = el("button", { type: "button", testid: `delete-${c.id}` }, "Delete");
      del.addEventListener("click", () => guard(async () => {
        if (!confirm("Delete this comment?")) return;
        const res = await api("DELETE", `/v1/comments/${c.id}`);
        await loadComments(res.version);
      }));
      actions.append(edit, del);
    }
    return actions;
  }

  function moreRepliesButton(commentId, cursor, container) {
    const more = el("button", { type: "button", class: "more-replies",
      testid: `more-replies-${commentId}` }, "More replies");
    more.addEventListener("click", () => guard(async () => {
      const page = await api("GET", `/v1/comments/${commentId}/replies`, { query: { cursor } });
      container.append(...page.replies.map(renderComment));
      if (page.next_cursor) more.replaceWith(moreRepliesButton(commentId, page.next_cursor, container));
      else more.remove();
    }));
    return more;
  }

  function composer(testid, placeholder, label, submit) {
    const form = el("form", { class: "comment-form", testid });
    const area = el("textarea", { rows: "2", placeholder, required: "" });
    area.dataset.testid = `${testid}-body`;
    const button = el("button", { type: "submit" }, label);
    button.dataset.testid = `${testid}-submit`;
    form.append(area, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = area.value.trim();
      if (text) guard(() => submit(text));
    });
    return form;
  }

  function requireSignIn() {
    if (state.token) return true;
    status("Sign in first (top right).");
    return false;
  }

  async function guard(action) {
    if (!requireSignIn()) return;
    try { status(""); await action(); } catch (err) { status(err.message); }
  }

  // ---- notifications --------------------------------------------------------------------
  async function pollNotifications() {
    if (!state.token) return;
    const user = state.user;
    let inbox;
    try { inbox = await api("GET", "/v1/me/notifications", { query: { limit: 20 } }); }
    catch { return; }
    if (user !== state.user) return; // signed in as someone else meanwhile
    const previous = state.inbox;
    state.inbox = inbox;
    const count = $("[data-testid=bell-count]");
    count.textContent = String(inbox.unread_count);
    count.classList.toggle("unread", inbox.unread_count > 0);
    renderInbox(inbox);
    const newest = inbox.notifications[0];
    if (previous && newest && (!previous.notifications[0] || previous.notifications[0].id !== newest.id)) {
      loadComments().catch(() => {}); // someone wrote: show it
    }
  }

  function renderInbox(inbox) {
    const items = inbox.notifications.map((n) => {
      const li = el("li", { class: n.read_at ? "" : "unread", testid: `notification-${n.id}` });
      const link = el("a", { href: `#comment-${n.comment_id}` });
      const what = { reply: "replied to you", conversation: "replied in a conversation you're in",
        thread: "commented on a thread you watch" }[n.kind] || n.kind;
      link.append(el("strong", {}, n.actor ? n.actor.name : "Someone"), ` ${what}`);
      link.append(el("div", { class: "excerpt" }, n.excerpt || ""));
      li.append(link);
      return li;
    });
    if (!items.length) items.push(el("li", {}, "Nothing yet."));
    $("[data-testid=bell-list]").replaceChildren(...items);
  }

  // ---- wiring -----------------------------------------------------------------------------
  document.querySelectorAll("[data-user]").forEach((button) =>
    button.addEventListener("click", () => signIn(button.dataset.user).catch((e) => status(e.message))));
  $("[data-testid=bell]").addEventListener("click", () => {
    const menu = $("[data-testid=bell-menu]");
    menu.hidden = !menu.hidden;
  });
  $("[data-testid=mark-all-read]").addEventListener("click", () => guard(async () => {
    await api("POST", "/v1/me/notifications/read", { body: { all: true } });
    await pollNotifications();
  }));
  $("[data-testid=comment-form]").addEventListener("submit", (event) => {
    event.preventDefault();
    const area = $("[data-testid=comment-body]");
    const text = area.value.trim();
    if (!text) return;
    guard(async () => {
      const res = await api("POST", `/v1/threads/${THREAD}/comments`, { body: { body: text } });
      area.value = "";
      await loadComments(res.version);
    });
  });
  setInterval(pollNotifications, POLL_MS);

  (async () => {
    try {
      await registerThread();
      const saved = localStorage.getItem("chorus-demo-user");
      if (saved) await signIn(saved);
      else await loadComments();
      document.body.dataset.ready = "true";
    } catch (err) { status(err.message); }
  })();
})();
