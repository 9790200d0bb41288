// Chorus: a drop-in comment section for a publication's own pages.
//
//   <div id="chorus" data-thread-id="my-post" data-api="https://comments.example.com"></div>
//   <script src="https://comments.example.com/embed.js" async></script>
//
// The reader's token comes from the host page: `window.chorusToken`, an async function
// returning a JWT or null. Call `window.Chorus.refresh()` after the reader signs in or out.
// Built on the public API only; no framework, no third-party requests. Everything renders
// inside a shadow root, so the page's CSS and ours do not touch. `body_html` (sanitized by
// the server) is the ONLY markup inserted as HTML; every other string goes in as text.
"use strict";

(() => {
  const SCRIPT = document.currentScript;
  const PAGE_SIZE = 20;
  const REPLIES = 3;
  const COLLAPSE_PX = 360;
  const LIVE_RETRY_MS = [1000, 2000, 5000, 10000, 30000];
  const SORTS = [["oldest", "Oldest"], ["newest", "Newest"], ["top", "Top"], ["featured", "Featured"]];
  const MOD_ROLES = ["moderator", "admin"];
  const STATUS_TAGS = { pending: "Awaiting moderation", rejected: "Not published" };
  const REASONS = [["spam", "Spam"], ["abuse", "Abuse"], ["off_topic", "Off-topic"], ["other", "Other"]];
  const HELD_FOR = {
    pre_moderation: "pre-moderation is on", first_comment: "a first comment", user_premod: "author on pre-moderation",
    suspect_word: "a suspect word", too_many_links: "too many links", flags: "reported by readers",
  };
  const QUEUES = [["pending", "Pending"], ["reported", "Reported"], ["rejected", "Rejected"]];
  const BANS = [["1", "for 1 day"], ["7", "for 7 days"], ["30", "for 30 days"], ["", "for good"]];
  const MOD_POLL_MS = 15000;

  // ---- small helpers --------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function plural(n, one, many) { return `${n.toLocaleString()} ${n === 1 ? one : many}`; }

  function relativeTime(iso) {
    const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 60) return "now";
    const steps = [[60, "m"], [24, "h"], [7, "d"], [4.35, "w"], [12, "mo"]];
    let value = seconds / 60;
    for (const [size, unit] of steps) {
      if (value < size) return `${Math.floor(value)}${unit}`;
      value /= size;
    }
    return `${Math.floor(value)}y`;
  }

  function initials(name) {
    const words = (name || "?").trim().split(/\s+/).filter(Boolean);
    const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || "?").slice(0, 2);
    return letters.toUpperCase();
  }

  function hue(text) {
    let h = 0;
    for (const ch of text || "") h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }

  // What the widget shows from the token (the server checks it; this only picks the UI).
  function tokenClaims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(decodeURIComponent(escape(atob(part)))) || {};
    } catch (_) {
      return {};
    }
  }

  // The text of sanitized HTML, cut short: parsed inert, never inserted.
  function excerpt(html, max = 140) {
    const text = new DOMParser().parseFromString(html || "", "text/html").body.textContent.replace(/\s+/g, " ").trim();
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  // ---- one comment section ----------------------------------------------------------------
  class Section {
    constructor(host) {
      this.host = host;
      this.threadId = host.dataset.threadId;
      this.api = (host.dataset.api || new URL(SCRIPT ? SCRIPT.src : location.href).origin).replace(/\/+$/, "");
      this.sort = SORTS.some(([s]) => s === host.dataset.sort) ? host.dataset.sort : "oldest";
      this.token = null;
      this.me = null;
      this.version = 0;
      this.count = 0;
      this.nodes = new Map(); // comment id -> {comment, root element, replies list}
      this.pending = []; // live comment ids not shown yet
      this.stale = false; // the live feed said too much changed to list: reload on request
      this.posted = new Set(); // ids this reader posted here: never "new" to them
      this.reported = new Set(); // ids this reader reported
      this.roles = [];
      this.isMod = false;
      this.queue = "pending";
      this.modTimer = null;
      this.modDirty = false;
      this.live = null;
      this.root = host.shadowRoot || host.attachShadow({ mode: "open" });
      this.root.replaceChildren(el("style", { text: STYLES }), this.frame());
      this.root.addEventListener("keydown", (e) => {
        if (e.key === "Escape" && !this.bellMenu.hidden) { this.closeBell(); this.bellButton.focus(); }
      });
      document.addEventListener("click", (e) => { if (!e.composedPath().includes(this.bellWrap)) this.closeBell(); });
    }

    // -- the frame ------------------------------------------------------------------------
    frame() {
      this.heading = el("h2", { class: "count", id: "chorus-heading", text: "Comments" });
      this.sortSelect = el("select", { "aria-label": "Sort comments", onchange: () => { this.sort = this.sortSelect.value; this.load(); } },
        ...SORTS.map(([value, label]) => el("option", { value, text: label, selected: value === this.sort })));
      this.bellCount = el("span", { class: "badge", hidden: true });
      this.bellButton = el("button", {
        type: "button", class: "bell", "aria-label": "Notifications", "aria-haspopup": "true", "aria-expanded": "false",
        onclick: () => (this.bellMenu.hidden ? this.openBell() : this.closeBell()),
      }, bellIcon(), this.bellCount);
      this.bellMenu = el("div", { class: "bell-menu", role: "dialog", "aria-label": "Notifications", hidden: true });
      this.bellWrap = el("div", { class: "bell-wrap", hidden: true }, this.bellButton, this.bellMenu);
      this.modCount = el("span", { class: "badge", hidden: true });
      this.modButton = el("button", { type: "button", class: "mod-toggle", hidden: true, "aria-expanded": "false", "aria-controls": "chorus-mod",
        onclick: () => this.toggleMod() }, "Moderate", this.modCount);
      this.status = el("p", { class: "status", role: "status", "aria-live": "polite" });
      this.composer = this.makeComposer({ placeholder: "Join the discussion…", submit: "Post", onSubmit: (body) => this.post(body, null) });
      this.newBanner = el("button", { type: "button", class: "new-banner", hidden: true, onclick: () => this.showPending() });
      this.context = el("div", { class: "context", hidden: true });
      this.list = el("ol", { class: "comments", "aria-labelledby": "chorus-heading" });
      this.more = el("button", { type: "button", class: "more", hidden: true, text: "Load more comments", onclick: () => this.loadMore() });
      this.modPanel = this.makeModPanel();
      this.frameRoot = el("section", { class: "chorus" },
        el("header", {}, this.heading, el("div", { class: "tools" }, this.sortSelect, this.modButton, this.bellWrap)),
        this.modPanel, el("div", { class: "thread" }, this.composer.form), this.status,
        el("div", { class: "thread" }, this.newBanner, this.context, this.list, this.more));
      return this.frameRoot;
    }

    say(message) { this.status.textContent = message || ""; }

    // -- talking to the API -----------------------------------------------------------------
    async call(method, path, { body, query, key } = {}) {
      const headers = { Accept: "application/json" };
      if (this.token) headers.Authorization = `Bearer ${this.token}`;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (key) headers["Idempotency-Key"] = key;
      const params = query ? Object.entries(query).filter(([, v]) => v !== null && v !== undefined) : [];
      const url = this.api + path + (params.length ? "?" + new URLSearchParams(params) : "");
      for (let attempt = 0; ; attempt++) {
        let res;
        try {
          res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), mode: "cors", credentials: "omit", cache: "no-cache" });
        } catch (err) {
          if (key && attempt < 2) continue; // a lost connection: the key makes the retry safe
          throw new ApiError(0, "network", "Could not reach the comments server.");
        }
        if (res.status === 503 && key && attempt < 2) {
          const wait = Number(res.headers.get("Retry-After")) || 1;
          await new Promise((r) => setTimeout(r, Math.min(wait, 5) * 1000));
          continue;
        }
        const data = await res.json().catch(() => ({}));
        if (!res.ok) {
          const error = data.error || {};
          throw new ApiError(res.status, error.code || "error", error.message || `${res.status} ${res.statusText}`);
        }
        return data;
      }
    }

    // One comment without its replies; with a version, once the fold has reached it.
    fetchComment(id, minVersion) {
      return this.call("GET", `/v1/comments/${encodeURIComponent(id)}`, { query: { replies: 0, min_version: minVersion } });
    }

    async refreshToken() {
      const source = window.chorusToken;
      let token = null;
      try { token = typeof source === "function" ? await source() : null; } catch (_) { token = null; }
      this.token = token || null;
      const claims = this.token ? tokenClaims(this.token) : {};
      this.me = claims.sub || null;
      this.roles = Array.isArray(claims.roles) ? claims.roles : [];
      this.isMod = this.roles.some((r) => MOD_ROLES.includes(r));
      this.modButton.hidden = !this.isMod;
      clearInterval(this.modPoll);
      if (this.isMod) this.modPoll = setInterval(() => { if (!document.hidden) this.scheduleMod(); }, MOD_POLL_MS);
      else this.closeMod();
      this.composer.area.placeholder = this.token ? "Join the discussion…" : "Sign in to comment";
      this.bellWrap.hidden = !this.token;
      if (!this.token) this.closeBell();
    }

    // -- loading --------------------------------------------------------------------------
    async start() {
      await this.refreshToken();
      await this.load();
      await this.openLinked();
      this.connectLive();
      this.host.dispatchEvent(new CustomEvent("chorus:ready", { bubbles: true }));
      this.host.dataset.chorusReady = "true";
    }

    async refresh() {
      await this.refreshToken();
      await this.load();
      this.connectLive();
    }

    async load(minVersion) {
      try {
        const page = await this.call("GET", `/v1/threads/${encodeURIComponent(this.threadId)}/comments`,
          { query: { sort: this.sort, limit: PAGE_SIZE, replies: REPLIES, min_version: minVersion } });
        this.nodes.clear();
        this.pending = [];
        this.stale = false;
        this.updateBanner();
        this.version = Math.max(this.version, page.version);
        this.setCount(page.comment_count);
        this.list.replaceChildren(...page.comments.map((c) => this.renderComment(c)));
        this.setMore(page.next_cursor);
        this.say("");
      } catch (err) {
        this.say(err.message);
      }
      if (this.token) this.loadInbox().catch(() => {});
      if (this.isMod) this.refreshMod();
    }

    async loadMore() {
      const cursor = this.more.dataset.cursor;
      this.more.disabled = true;
      try {
        const page = await this.call("GET", `/v1/threads/${encodeURIComponent(this.threadId)}/comments`,
          { query: { sort: this.sort, limit: PAGE_SIZE, replies: REPLIES, cursor } });
        for (const c of page.comments) if (!this.nodes.has(c.id)) this.list.append(this.renderComment(c));
        this.setMore(page.next_cursor);
      } catch (err) {
        this.say(err.message);
      } finally {
        this.more.disabled = false;
      }
    }

    setMore(cursor) {
      this.more.hidden = !cursor;
      if (cursor) this.more.dataset.cursor = cursor;
    }

    setCount(count) {
      this.count = count;
      this.heading.textContent = plural(count, "Comment", "Comments");
    }

    // -- a comment --------------------------------------------------------------------------
    renderComment(c) {
      const mine = this.me && c.author && c.author.id === this.me;
      const shown = !c.deleted && c.body_html !== null; // a placeholder says nothing more
      const held = shown && STATUS_TAGS[c.status];
      const article = el("article", { class: "comment" + (c.deleted ? " deleted" : "") + (held ? " held" : ""), id: `comment-${c.id}`, "data-comment-id": c.id, "aria-label": c.author ? `Comment by ${c.author.name}` : "Deleted comment" });
      const li = el("li", { class: "item" }, article);
      const name = c.author ? c.author.name : "Deleted";
      const avatar = el("span", { class: "avatar", "aria-hidden": "true", text: c.author ? initials(name) : "–", style: c.author ? `--h:${hue(c.author.id)}` : null });
      const when = el("a", { class: "time", href: `#comment-${c.id}`, title: new Date(c.created_at).toLocaleString(), text: relativeTime(c.created_at) });
      const head = el("div", { class: "head" }, avatar,
        el("span", { class: "name", text: name }),
        badgeOf(c) ? el("span", { class: "staff", text: badgeOf(c) }) : null,
        when,
        c.edited_at && !c.deleted ? el("span", { class: "edited", title: new Date(c.edited_at).toLocaleString(), text: "edited" }) : null,
        c.featured && shown ? el("span", { class: "tag featured", text: "Featured" }) : null,
        held ? el("span", { class: "tag held", text: held }) : null);
      const body = el("div", { class: "body" });
      if (c.deleted || c.body_html === null) body.append(el("p", { class: "gone", text: c.deleted ? "This comment was deleted." : "This comment is hidden." }));
      else body.innerHTML = c.body_html; // sanitized by the server: the only HTML we insert
      for (const link of body.querySelectorAll("a")) link.target = "_blank";
      article.append(head, body);
      const replies = el("ol", { class: "replies" });
      const entry = { comment: c, li, article, body, replies, mine, moreButton: null };
      this.nodes.set(c.id, entry);
      if (this.pending.includes(c.id)) {
        this.pending = this.pending.filter((id) => id !== c.id);
        this.updateBanner();
      }
      if (shown) {
        article.append(this.renderActions(entry));
        requestAnimationFrame(() => this.collapseIfLong(entry));
      }
      replies.append(...(c.replies || []).map((r) => this.renderComment(r)));
      li.append(replies);
      this.setRepliesMore(entry, c.replies_next_cursor);
      return li;
    }

    collapseIfLong(entry) {
      const { body } = entry;
      if (body.scrollHeight <= COLLAPSE_PX || body.dataset.expanded) return;
      body.classList.add("collapsed");
      const expand = el("button", { type: "button", class: "link expand", "aria-expanded": "false", text: "Expand full comment",
        onclick: () => { body.classList.remove("collapsed"); body.dataset.expanded = "1"; expand.remove(); body.focus(); } });
      body.tabIndex = -1;
      body.after(expand);
    }

    setRepliesMore(entry, cursor) {
      if (entry.moreButton) entry.moreButton.remove();
      entry.moreButton = null;
      if (!cursor) return;
      const shown = entry.replies.children.length;
      const left = Math.max(entry.comment.reply_count - shown, 0);
      const label = left > 0 ? plural(left, "more reply", "more replies") : "Show more replies";
      const button = el("button", { type: "button", class: "link more-replies", text: label,
        onclick: () => this.loadReplies(entry, cursor, button) });
      entry.moreButton = button;
      entry.li.append(button);
    }

    async loadReplies(entry, cursor, button) {
      button.disabled = true;
      try {
        const page = await this.call("GET", `/v1/comments/${encodeURIComponent(entry.comment.id)}/replies`,
          { query: { limit: PAGE_SIZE, replies: REPLIES, cursor } });
        for (const r of page.replies) if (!this.nodes.has(r.id)) entry.replies.append(this.renderComment(r));
        this.setRepliesMore(entry, page.next_cursor);
      } catch (err) {
        button.disabled = false;
        this.say(err.message);
      }
    }

    renderActions(entry) {
      const c = entry.comment;
      const liked = Boolean(c.liked_by_me);
      const like = el("button", { type: "button", class: "action like" + (liked ? " on" : ""), "aria-pressed": String(liked),
        "aria-label": `Like (${c.like_count})`, onclick: () => this.toggleLike(entry, like) },
      heartIcon(), el("span", { text: String(c.like_count) }));
      const published = !STATUS_TAGS[c.status];
      const actions = el("div", { class: "actions" }, published ? like : null,
        published ? el("button", { type: "button", class: "action", text: "Reply", onclick: (e) => this.openReply(entry, e.currentTarget) }) : null);
      if (entry.mine) {
        if (typeof c.body === "string") actions.append(el("button", { type: "button", class: "action", text: "Edit", onclick: (e) => this.openEdit(entry, e.currentTarget) }));
        actions.append(el("button", { type: "button", class: "action", text: "Delete", onclick: () => this.remove(entry) }));
      } else if (this.token && published) {
        const done = this.reported.has(c.id);
        actions.append(el("button", { type: "button", class: "action report" + (done ? " on" : ""), "aria-expanded": done ? null : "false", text: done ? "Reported" : "Report",
          onclick: (e) => (this.reported.has(c.id) ? this.say("You reported this comment.") : this.openReport(entry, e.currentTarget)) }));
      }
      if (this.isMod) {
        const act = (fn) => async (e) => { const res = await fn(e.currentTarget); if (res) this.refetch(c.id, res.version); };
        if (c.status !== "published" && c.status) actions.append(el("button", { type: "button", class: "action", text: "Approve", onclick: act(() => this.decide(c, "approve")) }));
        if (c.status !== "rejected") actions.append(el("button", { type: "button", class: "action", text: "Reject", "aria-expanded": "false",
          onclick: (e) => this.openReject(c, entry.article, e.currentTarget, (res) => this.refetch(c.id, res.version)) }));
        actions.append(el("button", { type: "button", class: "action", text: c.featured ? "Unfeature" : "Feature", onclick: act(() => this.feature(c)) }));
      }
      return actions;
    }

    // A comment again, as the fold now shows it (null version: as it stands).
    refetch(id, version) {
      return this.fetchComment(id, version).then((fresh) => {
        const current = this.nodes.get(fresh.id);
        if (!current) return;
        if (fresh.deleted) return this.markDeleted(current);
        if (current.article.querySelector("form")) return;
        const wasHeld = STATUS_TAGS[current.comment.status];
        this.patchComment(fresh);
        if (wasHeld && fresh.status === "published") this.setCount(this.count + 1);
      }).catch((err) => {
        const current = this.nodes.get(id);
        if (err.status === 404 && current) { // no longer shown to this reader (held, rejected)
          if (current.replies.children.length) this.markDeleted(current, "This comment is hidden.");
          else { current.li.remove(); this.nodes.delete(id); }
        }
      });
    }

    async toggleLike(entry, button) {
      if (!this.token) return this.say("Sign in to like comments.");
      const on = button.getAttribute("aria-pressed") !== "true";
      button.disabled = true;
      try {
        const res = await this.call(on ? "PUT" : "DELETE", `/v1/comments/${encodeURIComponent(entry.comment.id)}/like`);
        entry.comment.like_count = res.like_count;
        entry.comment.liked_by_me = on;
        button.classList.toggle("on", on);
        button.setAttribute("aria-pressed", String(on));
        button.setAttribute("aria-label", `Like (${res.like_count})`);
        button.lastChild.textContent = String(res.like_count);
      } catch (err) {
        this.say(err.message);
      } finally {
        button.disabled = false;
      }
    }

    // -- writing ----------------------------------------------------------------------------
    makeComposer({ placeholder, submit, initial = "", onSubmit, onCancel }) {
      const area = el("textarea", { rows: "3", placeholder, "aria-label": placeholder, maxlength: "10000" });
      area.value = initial;
      const send = el("button", { type: "submit", class: "primary", text: submit });
      const cancel = onCancel ? el("button", { type: "button", class: "link", text: "Cancel", onclick: onCancel }) : null;
      const form = el("form", { class: "composer" }, area, el("div", { class: "row" },
        el("span", { class: "hint", text: "Markdown · Ctrl+Enter to post" }), cancel, send));
      const go = async () => {
        const body = area.value.trim();
        if (!body) return area.focus();
        if (!this.token) return this.say("Sign in to comment.");
        send.disabled = true;
        try {
          if (await onSubmit(body)) area.value = "";
        } finally {
          send.disabled = false;
        }
      };
      form.addEventListener("submit", (e) => { e.preventDefault(); go(); });
      area.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); go(); }
        if (e.key === "Escape" && onCancel) { e.preventDefault(); onCancel(); }
      });
      return { form, area };
    }

    async post(body, parent, replyForm) {
      try {
        const res = await this.call("POST", `/v1/threads/${encodeURIComponent(this.threadId)}/comments`,
          { body: parent ? { body, parent_id: parent.comment.id } : { body }, key: newKey() });
        this.posted.add(res.id);
        const c = await this.fetchComment(res.id, res.version);
        this.version = Math.max(this.version, res.version);
        const li = this.renderComment(c);
        const held = STATUS_TAGS[c.status];
        if (parent) {
          parent.replies.append(li);
          if (!held) parent.comment.reply_count += 1;
          if (replyForm) replyForm.remove();
        } else {
          this.list.prepend(li); // where the reader is looking, whatever the sort
        }
        if (!held) this.setCount(this.count + 1);
        li.querySelector("article").classList.add("fresh");
        li.scrollIntoView({ block: "nearest" });
        this.say(held ? "Your comment is awaiting moderation: only you can see it until a moderator approves it."
          : parent ? "Reply posted." : "Comment posted.");
        return true;
      } catch (err) {
        this.say(err.message);
        return false;
      }
    }

    openReply(entry, opener) {
      if (!this.token) return this.say("Sign in to reply.");
      const open = entry.article.querySelector(":scope > form.composer");
      if (open) return open.querySelector("textarea").focus();
      const close = () => { composer.form.remove(); opener.setAttribute("aria-expanded", "false"); opener.focus(); };
      const composer = this.makeComposer({
        placeholder: `Reply to ${entry.comment.author ? entry.comment.author.name : "this comment"}…`, submit: "Reply",
        onSubmit: async (body) => { const ok = await this.post(body, entry, composer.form); if (ok) opener.setAttribute("aria-expanded", "false"); return ok; },
        onCancel: close,
      });
      opener.setAttribute("aria-expanded", "true");
      entry.article.append(composer.form);
      composer.area.focus();
    }

    openEdit(entry, opener) {
      const c = entry.comment;
      if (entry.article.querySelector(":scope > form.editing")) return;
      const close = () => { composer.form.remove(); entry.body.hidden = false; opener.focus(); };
      const composer = this.makeComposer({
        placeholder: "Edit your comment", submit: "Save", initial: c.body,
        onSubmit: async (body) => {
          try {
            const res = await this.call("PATCH", `/v1/comments/${encodeURIComponent(c.id)}`, { body: { body }, key: newKey() });
            const fresh = await this.fetchComment(c.id, res.version);
            close();
            this.patchComment(fresh);
            const edit = [...(this.nodes.get(c.id)?.article.querySelectorAll(".actions button") || [])].find((b) => b.textContent === "Edit");
            if (edit) edit.focus(); // where the reader was
            this.say("Comment updated.");
            return false;
          } catch (err) {
            this.say(err.message);
            return false;
          }
        },
        onCancel: close,
      });
      composer.form.classList.add("editing");
      entry.body.hidden = true;
      entry.body.after(composer.form);
      composer.area.focus();
    }

    async remove(entry) {
      if (!window.confirm("Delete this comment?")) return;
      try {
        await this.call("DELETE", `/v1/comments/${encodeURIComponent(entry.comment.id)}`);
        this.markDeleted(entry);
        this.setCount(Math.max(this.count - 1, 0));
        this.say("Comment deleted.");
      } catch (err) {
        this.say(err.message);
      }
    }

    markDeleted(entry, text = "This comment was deleted.") {
      entry.comment.deleted = true;
      entry.article.classList.add("deleted");
      entry.body.replaceChildren(el("p", { class: "gone", text }));
      entry.article.querySelector(".actions")?.remove();
      entry.article.querySelector(".expand")?.remove();
      const head = entry.article.querySelector(".head");
      head.querySelector(".name").textContent = "Deleted";
      head.querySelector(".avatar").textContent = "–";
      head.querySelectorAll(".staff, .tag").forEach((n) => n.remove());
      head.querySelector(".edited")?.remove();
    }

    patchComment(fresh) {
      // Always the entry on screen now: a live event and the reader's own edit may race.
      const entry = this.nodes.get(fresh.id);
      if (!entry || !entry.li.isConnected) return;
      const { li: old, replies, moreButton: more } = entry;
      fresh.reply_count = Math.max(fresh.reply_count, entry.comment.reply_count);
      const li = this.renderComment({ ...fresh, replies: [], replies_next_cursor: null });
      const next = this.nodes.get(fresh.id);
      next.li.replaceChild(replies, next.replies);
      next.replies = replies;
      if (more) { next.moreButton = more; next.li.append(more); }
      old.replaceWith(li);
    }

    // -- a link to one comment ----------------------------------------------------------------
    async openLinked() {
      const match = /^#comment-([A-Za-z0-9_-]{1,40})$/.exec(location.hash);
      if (!match) return;
      const id = match[1];
      if (this.nodes.has(id)) return this.highlight(id);
      try {
        const ctx = await this.call("GET", `/v1/comments/${encodeURIComponent(id)}/context`);
        if (ctx.thread_id !== this.threadId) return;
        let parent = null;
        let top = null;
        for (const c of [...ctx.ancestors, ctx.comment]) {
          const li = this.renderComment({ ...c, replies: [], replies_next_cursor: null });
          if (parent) parent.replies.append(li); else top = li;
          parent = this.nodes.get(c.id);
        }
        const all = el("button", { type: "button", class: "link", text: "Show all comments", onclick: () => { this.context.hidden = true; this.context.replaceChildren(); this.load(); } });
        this.context.replaceChildren(el("p", { class: "context-head", text: "A linked comment, in its conversation" }), el("ol", { class: "comments" }, top), all);
        this.context.hidden = false;
        this.highlight(id);
      } catch (err) {
        if (err.status !== 404) this.say(err.message);
      }
    }

    highlight(id) {
      const entry = this.nodes.get(id);
      if (!entry) return;
      entry.article.classList.add("fresh");
      entry.article.tabIndex = -1;
      entry.article.scrollIntoView({ block: "center" });
      entry.article.focus({ preventScroll: true });
    }

    // -- live ---------------------------------------------------------------------------------
    connectLive() {
      if (this.live) this.live.abort();
      const controller = new AbortController();
      this.live = controller;
      let attempt = 0;
      const run = async () => {
        while (!controller.signal.aborted) {
          try {
            await this.stream(controller.signal, () => { attempt = 0; });
          } catch (_) { /* reconnect below */ }
          if (controller.signal.aborted) return;
          await new Promise((r) => setTimeout(r, LIVE_RETRY_MS[Math.min(attempt++, LIVE_RETRY_MS.length - 1)]));
        }
      };
      run();
    }

    async stream(signal, onOpen) {
      // fetch, not EventSource: EventSource cannot send the reader's token.
      const headers = { Accept: "text/event-stream" };
      if (this.token) headers.Authorization = `Bearer ${this.token}`;
      if (this.version) headers["Last-Event-ID"] = String(this.version);
      const res = await fetch(`${this.api}/v1/threads/${encodeURIComponent(this.threadId)}/live`, { headers, signal, mode: "cors", credentials: "omit" });
      if (!res.ok || !res.body) throw new Error(`live: ${res.status}`);
      onOpen();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
          const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data) this.onLive(JSON.parse(data));
        }
      }
    }

    onLive(change) {
      if (change.type === "unread") return this.setUnread(change.count);
      if (change.type === "reset") {
        // Too much was missed to replay: offer a reload (the stream resumes from here).
        this.version = change.version;
        this.stale = true;
        return this.updateBanner();
      }
      if (typeof change.version === "number") this.version = Math.max(this.version, change.version);
      if (this.isMod) this.scheduleMod();
      const entry = change.comment_id ? this.nodes.get(change.comment_id) : null;
      const known = entry || this.posted.has(change.comment_id) || this.pending.includes(change.comment_id);
      if (change.type === "comment" && change.comment_id && !known) {
        this.pending.push(change.comment_id);
        this.updateBanner();
      } else if (entry && change.type !== "thread" && (change.type !== "comment" || STATUS_TAGS[entry.comment.status])) {
        // An edit, like, delete, or a decision on it (a held comment announced on approval).
        this.refetch(change.comment_id, change.version);
      }
    }

    updateBanner() {
      const n = this.pending.length;
      this.newBanner.hidden = n === 0 && !this.stale;
      this.newBanner.textContent = this.stale ? "Show new comments"
        : n ? `Show ${plural(n, "new comment", "new comments")}` : "";
    }

    async showPending() {
      if (this.stale) {
        this.stale = false;
        return this.load();
      }
      const ids = this.pending.splice(0);
      this.updateBanner();
      let shown = 0;
      for (const id of ids) {
        if (this.nodes.has(id)) continue;
        try {
          const c = await this.fetchComment(id);
          if (c.deleted) continue;
          const li = this.renderComment(c);
          const parent = c.parent_id ? this.nodes.get(c.parent_id) : null;
          if (parent) { parent.replies.append(li); parent.comment.reply_count += 1; }
          else if (!c.parent_id) this.sort === "oldest" ? this.list.append(li) : this.list.prepend(li);
          else continue; // a reply under a comment not on screen: its count says so
          li.querySelector("article").classList.add("fresh");
          shown += 1;
        } catch (_) { /* gone meanwhile */ }
      }
      this.setCount(this.count + shown);
      this.say(shown ? `${plural(shown, "new comment", "new comments")} shown, highlighted.` : "");
    }

    // -- dialogs: a small form in place; Escape or Cancel closes it, focus goes back --------
    openSheet(host, opener, { label, fields, submit, onSubmit }) {
      const open = host.querySelector(":scope > form.sheet");
      if (open) return open.querySelector("input, select, textarea")?.focus();
      const form = el("form", { class: "sheet", role: "dialog", "aria-label": label });
      const close = () => {
        form.remove();
        opener.setAttribute("aria-expanded", "false");
        if (opener.isConnected) opener.focus();
        if (this.modDirty && !this.modPanel.hidden) this.loadQueue();
      };
      const send = el("button", { type: "submit", class: "primary", text: submit });
      form.append(el("p", { class: "sheet-title", text: label }), ...fields,
        el("div", { class: "row" }, el("button", { type: "button", class: "link", text: "Cancel", onclick: close }), send));
      form.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); } });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        send.disabled = true;
        const ok = await onSubmit(new FormData(form));
        send.disabled = false;
        if (ok) close();
      });
      opener.setAttribute("aria-expanded", "true");
      host.append(form);
      form.querySelector("input, select, textarea")?.focus();
    }

    reasonField(label) {
      return el("label", { class: "field" }, label, el("textarea", { name: "reason", rows: "2", maxlength: "1000" }));
    }

    openReport(entry, opener) {
      const c = entry.comment;
      this.openSheet(entry.article, opener, {
        label: "Report this comment", submit: "Send report",
        fields: [
          el("fieldset", { class: "choices" }, el("legend", { text: "Why?" }),
            ...REASONS.map(([value, text], i) => el("label", { class: "choice" }, el("input", { type: "radio", name: "why", value, required: i === 0 }), text))),
          el("label", { class: "field" }, "Note for the moderators (optional)", el("textarea", { name: "note", rows: "2", maxlength: "1000" })),
        ],
        onSubmit: async (data) => {
          const note = String(data.get("note") || "").trim();
          try {
            await this.call("POST", `/v1/comments/${encodeURIComponent(c.id)}/flags`, { body: note ? { reason: data.get("why"), note } : { reason: data.get("why") } });
          } catch (err) {
            this.say(err.message);
            return false;
          }
          this.reported.add(c.id);
          opener.textContent = "Reported";
          opener.classList.add("on");
          opener.removeAttribute("aria-expanded");
          this.say("Reported. Thank you: a moderator will look at it.");
          return true;
        },
      });
    }

    // -- moderation (the buttons show for moderator and admin tokens; the API decides) ---------
    makeModPanel() {
      this.modTabs = QUEUES.map(([queue, label]) => el("button", { type: "button", role: "tab", class: "tab", "data-queue": queue,
        "aria-selected": String(queue === this.queue), onclick: () => { this.queue = queue; this.modTabs.forEach((t) => t.setAttribute("aria-selected", String(t.dataset.queue === queue))); this.loadQueue(); } }, label, el("span", { class: "n" })));
      this.modList = el("ol", { class: "queue", "aria-label": "Comments in this queue" });
      this.modEmpty = el("p", { class: "empty", hidden: true, text: "Nothing here." });
      this.modMore = el("button", { type: "button", class: "more", hidden: true, text: "Load more", onclick: () => this.loadQueue(true) });
      return el("section", { class: "mod", id: "chorus-mod", "aria-label": "Moderation", hidden: true },
        this.modHead = el("div", { class: "mod-head" }, el("h3", { text: "Moderation" }),
          el("button", { type: "button", class: "link", text: "Back to comments", onclick: () => { this.closeMod(); this.modButton.focus(); } })),
        el("div", { class: "tabs", role: "tablist", "aria-label": "Queues", onkeydown: (e) => {
          const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
          if (!step) return;
          const tab = this.modTabs[(QUEUES.findIndex(([q]) => q === this.queue) + step + QUEUES.length) % QUEUES.length];
          tab.focus();
          tab.click();
        } }, ...this.modTabs),
        this.modList, this.modEmpty, this.modMore);
    }

    toggleMod() {
      if (!this.modPanel.hidden) return this.closeMod();
      this.modPanel.hidden = false;
      this.frameRoot.classList.add("moderating");
      this.say("");
      this.modHead.after(this.status); // messages where the moderator is looking
      this.modButton.setAttribute("aria-expanded", "true");
      this.loadQueue();
    }

    closeMod() {
      if (!this.modPanel || this.modPanel.hidden) return;
      this.modPanel.hidden = true;
      this.frameRoot.classList.remove("moderating");
      this.say("");
      this.composer.form.parentNode.after(this.status);
      this.modButton.setAttribute("aria-expanded", "false");
      if (this.threadDirty) { this.threadDirty = false; this.load(); }
    }

    scheduleMod() {
      clearTimeout(this.modTimer);
      this.modTimer = setTimeout(() => this.refreshMod(), 300);
    }

    // The queue again, or only its counts while a moderator is filling in a form.
    refreshMod() {
      if (!this.modPanel.hidden && !this.modList.querySelector("form")) return this.loadQueue();
      this.modDirty = !this.modPanel.hidden;
      return this.call("GET", "/v1/moderation/queue", { query: { queue: "pending", thread_id: this.threadId, limit: 1 } })
        .then((page) => this.setModCounts(page.counts)).catch(() => {});
    }

    setModCounts(counts) {
      for (const tab of this.modTabs) {
        const n = counts[tab.dataset.queue] || 0;
        tab.querySelector(".n").textContent = ` ${n}`;
        tab.setAttribute("aria-selected", String(tab.dataset.queue === this.queue));
        tab.tabIndex = tab.dataset.queue === this.queue ? 0 : -1;
      }
      const waiting = (counts.pending || 0) + (counts.reported || 0);
      this.modCount.hidden = !waiting;
      this.modCount.textContent = waiting > 99 ? "99+" : String(waiting);
      this.modButton.setAttribute("aria-label", waiting ? `Moderate, ${waiting} waiting` : "Moderate");
    }

    async loadQueue(more) {
      this.modDirty = false;
      const queue = this.queue;
      try {
        const page = await this.call("GET", "/v1/moderation/queue",
          { query: { queue, thread_id: this.threadId, limit: PAGE_SIZE, cursor: more ? this.modMore.dataset.cursor : null } });
        if (queue !== this.queue) return;
        this.setModCounts(page.counts);
        const items = page.comments.map((c) => this.renderQueueItem(c));
        if (more) this.modList.append(...items); else this.modList.replaceChildren(...items);
        this.modEmpty.hidden = this.modList.children.length > 0;
        this.modMore.hidden = !page.next_cursor;
        if (page.next_cursor) this.modMore.dataset.cursor = page.next_cursor;
      } catch (err) {
        this.say(err.message);
      }
    }

    renderQueueItem(c) {
      const name = c.author ? c.author.name : "Deleted";
      const p = c.parent;
      const context = p ? `In reply to ${p.author ? p.author.name : "a hidden comment"}: “${excerpt(p.body_html) || "…"}”` : "A new conversation";
      const why = (c.held_for || []).map((h) => HELD_FOR[h] || h.replace(/_/g, " ")).join(", ");
      const flags = Object.entries(c.flags || {}).map(([r, n]) => `${n} ${(REASONS.find(([k]) => k === r) || [r, r])[1].toLowerCase()}`).join(", ");
      const body = el("div", { class: "body" });
      body.innerHTML = c.body_html || ""; // sanitized by the server
      for (const link of body.querySelectorAll("a")) link.target = "_blank";
      const article = el("article", { class: "comment", "data-comment-id": c.id, "aria-label": `Comment by ${name}` },
        el("p", { class: "ctx", text: context }),
        el("div", { class: "head" }, el("span", { class: "avatar", "aria-hidden": "true", text: initials(name), style: `--h:${hue(c.author ? c.author.id : "")}` }),
          el("span", { class: "name", text: name }), badgeOf(c) ? el("span", { class: "staff", text: badgeOf(c) }) : null,
          el("span", { class: "time", title: new Date(c.created_at).toLocaleString(), text: relativeTime(c.created_at) }),
          c.featured ? el("span", { class: "tag featured", text: "Featured" }) : null),
        body,
        why ? el("p", { class: "why", text: `Held: ${why}` }) : null,
        flags ? el("p", { class: "why", text: `Reports: ${flags}` }) : null);
      const after = () => { this.threadDirty = true; this.loadQueue(); };
      const run = (fn) => async () => { if (await fn()) after(); };
      const actions = el("div", { class: "actions mod-actions" });
      if (c.status !== "published" || c.flag_count || Object.keys(c.flags || {}).length) {
        actions.append(el("button", { type: "button", class: "primary", text: "Approve",
          "aria-label": `Approve comment by ${name}`, onclick: run(() => this.decide(c, "approve")) }));
      }
      if (c.status !== "rejected") actions.append(el("button", { type: "button", class: "action", text: "Reject", "aria-expanded": "false",
        onclick: (e) => this.openReject(c, article, e.currentTarget, after) }));
      actions.append(el("button", { type: "button", class: "action", text: c.featured ? "Unfeature" : "Feature", onclick: run(() => this.feature(c)) }));
      if (c.author) {
        actions.append(el("button", { type: "button", class: "action", text: "Ban author", "aria-expanded": "false", onclick: (e) => this.openBan(c, article, e.currentTarget) }),
          el("button", { type: "button", class: "action", text: "Pre-moderate author", onclick: (e) => this.premod(c, e.currentTarget) }));
      }
      article.append(actions);
      return el("li", { class: "qitem" }, article);
    }

    async modCall(method, path, body, done) {
      try {
        const res = await this.call(method, path, { body });
        this.say(done);
        return res;
      } catch (err) {
        if (err.code === "already_decided") { this.say("Already decided by another moderator."); this.loadQueue(); this.threadDirty = true; }
        else this.say(err.message);
        return null;
      }
    }

    decide(c, action, reason) {
      const body = action === "reject" && reason ? { reason } : action === "reject" ? {} : undefined;
      return this.modCall("POST", `/v1/comments/${encodeURIComponent(c.id)}/${action}`, body,
        `${action === "approve" ? "Approved" : "Rejected"}: ${c.author ? c.author.name : "comment"}.`);
    }

    feature(c) {
      return this.modCall(c.featured ? "DELETE" : "PUT", `/v1/comments/${encodeURIComponent(c.id)}/feature`, undefined, c.featured ? "No longer featured." : "Featured.");
    }

    openReject(c, host, opener, after) {
      this.openSheet(host, opener, {
        label: "Reject this comment", submit: "Reject", fields: [this.reasonField("Reason (optional, for the log)")],
        onSubmit: async (data) => {
          const res = await this.decide(c, "reject", String(data.get("reason") || "").trim());
          if (res) after(res);
          return Boolean(res);
        },
      });
    }

    openBan(c, host, opener) {
      this.openSheet(host, opener, {
        label: `Ban ${c.author.name}`, submit: "Ban",
        fields: [el("label", { class: "field" }, "How long", el("select", { name: "days" }, ...BANS.map(([value, text]) => el("option", { value, text })))),
          this.reasonField("Reason (optional)")],
        onSubmit: async (data) => {
          const days = Number(data.get("days"));
          const body = { reason: String(data.get("reason") || "").trim() };
          if (days) body.until = new Date(Date.now() + days * 864e5).toISOString();
          return Boolean(await this.modCall("PUT", `/v1/users/${encodeURIComponent(c.author.id)}/ban`, body,
            `${c.author.name} is banned ${days ? `for ${plural(days, "day", "days")}` : "for good"}.`));
        },
      });
    }

    async premod(c, button) {
      if (await this.modCall("PUT", `/v1/users/${encodeURIComponent(c.author.id)}/premod`, undefined,
        `${c.author.name}'s comments will wait for a moderator.`)) {
        button.textContent = "Author pre-moderated";
        button.disabled = true;
      }
    }

    // -- the bell ------------------------------------------------------------------------------
    async loadInbox() {
      const inbox = await this.call("GET", "/v1/me/notifications", { query: { limit: 20 } });
      this.inbox = inbox.notifications;
      this.setUnread(inbox.unread_count);
      return inbox;
    }

    setUnread(count) {
      this.bellCount.hidden = !count;
      this.bellCount.textContent = count > 99 ? "99+" : String(count);
      this.bellButton.setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications");
    }

    async openBell() {
      this.bellMenu.replaceChildren(el("p", { class: "empty", text: "Loading…" }));
      this.bellMenu.hidden = false;
      this.bellButton.setAttribute("aria-expanded", "true");
      try {
        await this.loadInbox();
      } catch (err) {
        this.bellMenu.replaceChildren(el("p", { class: "empty", text: err.message }));
        return;
      }
      const items = this.inbox.map((n) => {
        const verb = { reply: "replied to you", conversation: "replied in a conversation you are in", thread: "commented" }[n.kind] || "commented";
        const button = el("button", { type: "button", class: "note" + (n.read_at ? "" : " unread"), onclick: () => this.openNote(n) },
          el("span", { class: "who", text: `${n.actor ? n.actor.name : "Someone"} ${verb}` }),
          el("span", { class: "excerpt", text: n.excerpt }),
          el("span", { class: "when", text: relativeTime(n.created_at) }));
        return el("li", {}, button);
      });
      const readAll = el("button", { type: "button", class: "link", text: "Mark all read", onclick: async () => {
        const res = await this.call("POST", "/v1/me/notifications/read", { body: { all: true } }).catch((e) => this.say(e.message));
        if (res) { this.setUnread(res.unread_count); this.closeBell(); this.bellButton.focus(); }
      } });
      this.bellMenu.replaceChildren(
        el("div", { class: "bell-head" }, el("strong", { text: "Notifications" }), readAll),
        items.length ? el("ul", {}, ...items) : el("p", { class: "empty", text: "Nothing yet." }));
      this.bellMenu.querySelector("button")?.focus();
    }

    closeBell() {
      if (!this.bellMenu || this.bellMenu.hidden) return;
      this.bellMenu.hidden = true;
      this.bellButton.setAttribute("aria-expanded", "false");
    }

    async openNote(n) {
      this.closeBell();
      if (!n.read_at) {
        const res = await this.call("POST", "/v1/me/notifications/read", { body: { ids: [n.id] } }).catch(() => null);
        if (res) this.setUnread(res.unread_count);
      }
      if (n.thread_id !== this.threadId) return this.say("That comment is on another page.");
      history.replaceState(null, "", `#comment-${n.comment_id}`);
      if (this.nodes.has(n.comment_id)) this.highlight(n.comment_id);
      else await this.openLinked();
    }
  }

  function badgeOf(c) {
    return c.author && (c.author.badges || []).includes("staff") ? "Staff" : null;
  }

  function svg(path, size) {
    const ns = "http://www.w3.org/2000/svg";
    const icon = document.createElementNS(ns, "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("width", size);
    icon.setAttribute("height", size);
    icon.setAttribute("aria-hidden", "true");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", "currentColor");
    icon.append(p);
    return icon;
  }
  const bellIcon = () => svg("M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z", 18);
  const heartIcon = () => svg("M12 21s-7.5-4.6-9.6-9.1C.9 8.7 2.7 5 6.3 5c2.1 0 3.4 1.2 4.2 2.4h3C14.3 6.2 15.6 5 17.7 5c3.6 0 5.4 3.7 3.9 6.9C19.5 16.4 12 21 12 21z", 16);

  const STYLES = `
:host { all: initial; display: block;
  --chorus-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  --chorus-fg: #1d1d1f; --chorus-muted: #6b6b70; --chorus-bg: #ffffff; --chorus-soft: #f4f4f6;
  --chorus-border: #e2e2e6; --chorus-accent: #ff6719; --chorus-accent-fg: #ffffff; --chorus-radius: 8px;
  --chorus-warn: #8a5300; --chorus-warn-soft: #fdf0d8;
  color: var(--chorus-fg); font: 15px/1.5 var(--chorus-font); }
@media (prefers-color-scheme: dark) { :host(:not([data-theme=light])) {
  --chorus-fg: #ececef; --chorus-muted: #a0a0a8; --chorus-bg: #17171a; --chorus-soft: #232328; --chorus-border: #34343b;
  --chorus-warn: #f0b454; --chorus-warn-soft: #3a2e17; } }
:host([data-theme=dark]) { --chorus-fg: #ececef; --chorus-muted: #a0a0a8; --chorus-bg: #17171a; --chorus-soft: #232328; --chorus-border: #34343b;
  --chorus-warn: #f0b454; --chorus-warn-soft: #3a2e17; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.chorus { background: var(--chorus-bg); color: var(--chorus-fg); max-width: 100%; }
header { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 12px; border-bottom: 1px solid var(--chorus-border); padding-bottom: 8px; margin-bottom: 12px; }
h2 { font-size: 20px; margin: 0; font-weight: 700; }
.tools { display: flex; align-items: center; gap: 8px; }
select, textarea, button { font: inherit; color: inherit; }
select { background: var(--chorus-bg); border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); padding: 4px 8px; }
button { cursor: pointer; }
button:disabled { opacity: .6; cursor: default; }
:focus-visible { outline: 2px solid var(--chorus-accent); outline-offset: 2px; }
.composer { display: grid; gap: 6px; margin: 0 0 12px; }
textarea { width: 100%; min-height: 76px; resize: vertical; padding: 10px 12px; border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); background: var(--chorus-bg); }
.row { display: flex; align-items: center; gap: 10px; justify-content: flex-end; flex-wrap: wrap; }
.hint { color: var(--chorus-muted); font-size: 12px; margin-right: auto; }
.primary { background: var(--chorus-accent); color: var(--chorus-accent-fg); border: 0; border-radius: var(--chorus-radius); padding: 6px 16px; font-weight: 600; }
.link { background: none; border: 0; padding: 2px 0; color: var(--chorus-muted); font-weight: 600; font-size: 14px; }
.link:hover { color: var(--chorus-fg); }
.status { color: var(--chorus-muted); font-size: 14px; margin: 0 0 8px; min-height: 1px; }
.status:empty { display: none; }
.new-banner { display: block; width: 100%; margin: 0 0 12px; padding: 8px; border: 1px solid var(--chorus-accent); color: var(--chorus-accent); background: var(--chorus-bg); border-radius: 999px; font-weight: 600; }
ol.comments, ol.replies { list-style: none; margin: 0; padding: 0; }
ol.replies { margin-left: 18px; padding-left: 14px; border-left: 2px solid var(--chorus-border); }
.item { margin: 0 0 4px; }
.comment { padding: 10px 0 6px; border-radius: var(--chorus-radius); }
.comment.fresh { background: var(--chorus-soft); box-shadow: 0 0 0 6px var(--chorus-soft); }
.head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; font-size: 14px; }
.avatar { width: 30px; height: 30px; border-radius: 50%; display: inline-grid; place-items: center; flex: none; font-size: 12px; font-weight: 700; color: #fff; background: hsl(var(--h, 220) 45% 48%); }
.deleted .avatar { background: var(--chorus-border); color: var(--chorus-muted); }
.name { font-weight: 650; }
.staff { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .03em; color: var(--chorus-accent); border: 1px solid currentColor; border-radius: 4px; padding: 0 4px; }
.time, .edited { color: var(--chorus-muted); text-decoration: none; }
.time:hover { text-decoration: underline; }
.body { margin: 4px 0 0 38px; overflow-wrap: anywhere; word-break: break-word; }
.body p { margin: 0 0 8px; }
.body a { color: var(--chorus-accent); }
.body pre { overflow-x: auto; background: var(--chorus-soft); padding: 8px; border-radius: 6px; }
.body code { font-size: 13px; }
.body blockquote { margin: 0 0 8px; padding-left: 10px; border-left: 3px solid var(--chorus-border); color: var(--chorus-muted); }
.body.collapsed { max-height: ${COLLAPSE_PX}px; overflow: hidden; -webkit-mask-image: linear-gradient(#000 70%, transparent); mask-image: linear-gradient(#000 70%, transparent); }
.gone { color: var(--chorus-muted); font-style: italic; }
.expand { margin-left: 38px; }
.actions { display: flex; flex-wrap: wrap; gap: 0 14px; margin: 2px 0 0 38px; }
.action { display: inline-flex; align-items: center; gap: 4px; background: none; border: 0; padding: 4px 0; color: var(--chorus-muted); font-size: 13px; font-weight: 600; }
.action:hover, .action.on { color: var(--chorus-accent); }
.comment > .composer { margin: 8px 0 4px 38px; }
.more-replies { margin: 2px 0 8px 34px; }
.more { display: block; width: 100%; margin: 12px 0; padding: 8px; border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); background: var(--chorus-bg); font-weight: 600; }
.context { margin: 0 0 16px; padding: 8px 12px; border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); }
.context-head { margin: 0; color: var(--chorus-muted); font-size: 13px; }
.bell-wrap { position: relative; }
.bell { position: relative; display: inline-grid; place-items: center; width: 36px; height: 36px; border-radius: 50%; background: var(--chorus-soft); border: 0; }
.badge { position: absolute; top: -2px; right: -4px; min-width: 18px; height: 18px; padding: 0 5px; border-radius: 9px; background: var(--chorus-accent); color: var(--chorus-accent-fg); font-size: 11px; font-weight: 700; line-height: 18px; }
.bell-menu { position: absolute; right: 0; top: 42px; z-index: 10; width: min(360px, calc(100vw - 24px)); max-height: min(420px, 70vh); overflow-y: auto; background: var(--chorus-bg); border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); box-shadow: 0 8px 28px rgba(0,0,0,.16); }
.bell-head { display: flex; justify-content: space-between; align-items: center; padding: 10px 12px; border-bottom: 1px solid var(--chorus-border); }
.bell-menu ul { list-style: none; margin: 0; padding: 0; }
.note { display: grid; gap: 2px; width: 100%; text-align: left; background: none; border: 0; border-bottom: 1px solid var(--chorus-border); padding: 10px 12px; }
.note.unread { background: var(--chorus-soft); }
.note .who { font-weight: 600; font-size: 14px; }
.note .excerpt { color: var(--chorus-muted); font-size: 13px; overflow: hidden; text-overflow: ellipsis; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow-wrap: anywhere; }
.note .when { color: var(--chorus-muted); font-size: 12px; }
.empty { padding: 12px; margin: 0; color: var(--chorus-muted); }
.tag { font-size: 11px; font-weight: 700; border-radius: 4px; padding: 0 6px; }
.tag.held { background: var(--chorus-warn-soft); color: var(--chorus-warn); }
.tag.featured { background: var(--chorus-accent); color: var(--chorus-accent-fg); }
.held > .body { opacity: .8; }
.mod-toggle { position: relative; background: var(--chorus-soft); border: 0; border-radius: 999px; padding: 7px 14px; font-size: 14px; font-weight: 600; }
.moderating > .thread { display: none; }
.mod { margin: 0 0 12px; }
.mod-head { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: 8px; }
.mod .status { margin: 8px 0 0; color: var(--chorus-fg); font-weight: 600; }
h3 { font-size: 17px; margin: 0; }
.tabs { display: flex; flex-wrap: wrap; gap: 6px; margin: 10px 0 12px; }
.tab { background: var(--chorus-bg); border: 1px solid var(--chorus-border); border-radius: 999px; padding: 4px 12px; font-size: 14px; font-weight: 600; color: var(--chorus-muted); }
.tab[aria-selected=true] { background: var(--chorus-fg); border-color: var(--chorus-fg); color: var(--chorus-bg); }
ol.queue { list-style: none; margin: 0; padding: 0; }
.qitem { border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); padding: 2px 12px 10px; margin: 0 0 10px; }
.ctx { margin: 8px 0 0; color: var(--chorus-muted); font-size: 13px; overflow-wrap: anywhere; }
.why { margin: 2px 0 0 38px; color: var(--chorus-warn); font-size: 13px; font-weight: 600; }
.mod-actions { align-items: center; gap: 6px 14px; margin-top: 8px; }
.mod-actions .primary { padding: 4px 14px; }
.sheet { display: grid; gap: 8px; max-width: 440px; margin: 8px 0 4px 38px; padding: 10px 12px; background: var(--chorus-soft); border: 1px solid var(--chorus-border); border-radius: var(--chorus-radius); }
.sheet-title { margin: 0; font-size: 14px; font-weight: 650; }
.choices { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 0; padding: 0; border: 0; font-size: 14px; }
.choices legend { float: left; width: 100%; padding: 0; margin: 0 0 2px; color: var(--chorus-muted); font-size: 13px; }
.choice { display: inline-flex; align-items: center; gap: 4px; }
.field { display: grid; gap: 4px; color: var(--chorus-muted); font-size: 13px; }
.field textarea { min-height: 0; color: var(--chorus-fg); }
.field select { justify-self: start; color: var(--chorus-fg); }
@media (max-width: 480px) {
  ol.replies { margin-left: 6px; padding-left: 10px; }
  .body, .actions, .expand, .comment > .composer, .sheet, .why { margin-left: 0; }
  .hint { display: none; }
}
`;

  // ---- mounting -------------------------------------------------------------------------------
  const sections = new Map();

  function mountAll() {
    for (const host of document.querySelectorAll("#chorus[data-thread-id], [data-chorus][data-thread-id]")) {
      if (sections.has(host)) continue;
      const section = new Section(host);
      sections.set(host, section);
      section.start();
    }
  }

  window.Chorus = {
    refresh: () => Promise.all([...sections.values()].map((s) => s.refresh())),
    mount: mountAll,
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
