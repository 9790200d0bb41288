// The Chorus demo publication page. The comment section is the drop-in widget (/embed.js),
// embedded exactly as a publication would; this script only plays the publication's own
// login: it signs a demo reader in through the dev-only POST /demo/token and hands the
// widget the token through `window.chorusToken`.
"use strict";

(() => {
  const THREAD = "demo-pows";
  const TITLE = "South Korea and the POWs";
  const state = { token: null };

  async function mintToken(user) {
    const res = await fetch("/demo/token", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user }),
    });
    if (!res.ok) throw new Error(`sign-in failed: ${res.status}`);
    return (await res.json()).token;
  }

  // The host page's side of the contract: an async function returning a JWT or null.
  window.chorusToken = async () => state.token;

  async function signIn(user) {
    state.token = user ? await mintToken(user) : null;
    if (user) localStorage.setItem("chorus-demo-user", user);
    else localStorage.removeItem("chorus-demo-user");
    document.querySelectorAll("[data-user]").forEach((b) => {
      b.classList.toggle("active", b.dataset.user === user);
      b.setAttribute("aria-pressed", String(b.dataset.user === user));
    });
    document.querySelector("[data-testid=whoami]").textContent =
      user ? `Signed in as ${user[0].toUpperCase()}${user.slice(1)}` : "Not signed in";
    document.querySelector("[data-testid=signout]").hidden = !user;
    if (window.Chorus) await window.Chorus.refresh();
  }

  async function registerThread() {
    const editor = await mintToken("editor");
    await fetch(`/v1/threads/${THREAD}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${editor}` },
      body: JSON.stringify({ title: TITLE, url: `${location.origin}/demo/`, locked: false }),
    });
  }

  document.querySelectorAll("[data-user]").forEach((button) =>
    button.addEventListener("click", () => signIn(button.dataset.user)));
  document.querySelector("[data-testid=signout]").addEventListener("click", () => signIn(null));

  (async () => {
    await registerThread();
    const saved = localStorage.getItem("chorus-demo-user");
    if (saved) state.token = await mintToken(saved).catch(() => null);
    // The widget mounts once its script has loaded; it asks for the token itself.
    const script = document.createElement("script");
    script.src = "/embed.js";
    script.async = true;
    document.body.append(script);
    if (saved && state.token) await signIn(saved);
    document.body.dataset.ready = "true";
  })();
})();
