/**
 * The pages' one script, served as `AUTH_PREFIX/passkeys/client.js` and loaded with the page's
 * CSP nonce. It only drives WebAuthn: "Sign in with a passkey" and conditional UI (autofill) on
 * the sign-in page, "Add a passkey" on the account page. Both are rendered `hidden` and shown by
 * this script when the browser has WebAuthn, so without JavaScript the page simply has no
 * passkey buttons and everything else works.
 *
 * Hand-written (about 2 KiB) rather than @simplewebauthn/browser: that would need a browser
 * build step for a few base64url conversions and two API calls.
 */
export const PASSKEYS_SCRIPT = `"use strict";
(() => {
  const toBuf = (s) => {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  };
  const toB64u = (buf) => {
    let bin = "";
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  };
  const post = async (url, body) => {
    const r = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
    let json = null;
    try { json = await r.json(); } catch (e) { json = null; }
    if (!r.ok) throw new Error((json && json.error_description) || "Something went wrong. Try again.");
    return json;
  };
  const descriptors = (list) => (list || []).map((d) => Object.assign({}, d, { id: toBuf(d.id) }));
  const credentialBase = (c) => ({ id: c.id, rawId: toB64u(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment || undefined, clientExtensionResults: {} });
  const say = (el, text) => { if (el) { el.textContent = text; el.hidden = !text; } };
  const explain = (e) => (e && e.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." : (e && e.message) || "Something went wrong.");
  const supported = typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
  if (!supported) return;

  const signin = document.getElementById("passkey-signin");
  if (signin) {
    const base = signin.dataset.base;
    const status = document.getElementById("passkey-signin-status");
    // As a second factor (mfa and step-up pages) the page names its own endpoints; the answer is
    // a redirect to where the user was going, followed by a navigation, not by fetch.
    const factor = signin.dataset.verify;
    let pending = null;
    const run = async (mediation) => {
      const options = await post(signin.dataset.options || base + "/login/options");
      const controller = new AbortController();
      pending = controller;
      const publicKey = Object.assign({}, options, { challenge: toBuf(options.challenge), allowCredentials: descriptors(options.allowCredentials) });
      const cred = await navigator.credentials.get(mediation ? { publicKey, mediation, signal: controller.signal } : { publicKey, signal: controller.signal });
      if (!cred) return;
      const r = cred.response;
      const credential = Object.assign(credentialBase(cred), { response: {
        clientDataJSON: toB64u(r.clientDataJSON), authenticatorData: toB64u(r.authenticatorData), signature: toB64u(r.signature),
        userHandle: r.userHandle ? toB64u(r.userHandle) : null } });
      say(status, "Signing you in…");
      if (factor) {
        const r2 = await fetch(factor, { method: "POST", credentials: "same-origin", redirect: "manual", headers: { "content-type": "application/json" }, body: JSON.stringify({ credential }) });
        if (r2.type !== "opaqueredirect" && !r2.ok) {
          let json = null;
          try { json = await r2.json(); } catch (e) { json = null; }
          throw new Error((json && json.error_description) || "Something went wrong. Try again.");
        }
      } else {
        // A passkey without user verification may still owe a second factor: a 303 to the mfa page.
        const body = { credential, session: "cookie", return_to: signin.dataset.returnTo || "/" };
        const r2 = await fetch(base + "/login", { method: "POST", credentials: "same-origin", redirect: "manual", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
        if (r2.type === "opaqueredirect") { location.assign(signin.dataset.mfa); return; }
        if (!r2.ok) {
          let json = null;
          try { json = await r2.json(); } catch (e) { json = null; }
          throw new Error((json && json.error_description) || "Something went wrong. Try again.");
        }
      }
      location.assign(signin.dataset.returnTo || "/");
    };
    signin.hidden = false;
    document.getElementById("passkey-signin-button").addEventListener("click", () => {
      if (pending) pending.abort();
      say(status, "");
      run(undefined).catch((e) => { if (!e || e.name !== "AbortError") say(status, explain(e)); });
    });
    if (!factor && typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
        if (ok) run("conditional").catch((e) => { if (e && e.name !== "AbortError" && e.name !== "NotAllowedError") say(status, explain(e)); });
      });
    }
  }

  const add = document.getElementById("passkey-add");
  if (add) {
    const base = add.dataset.base;
    const status = document.getElementById("passkey-add-status");
    add.hidden = false;
    add.addEventListener("submit", (event) => {
      event.preventDefault();
      say(status, "");
      (async () => {
        const options = await post(base + "/register/options");
        const publicKey = Object.assign({}, options, {
          challenge: toBuf(options.challenge),
          user: Object.assign({}, options.user, { id: toBuf(options.user.id) }),
          excludeCredentials: descriptors(options.excludeCredentials),
        });
        const cred = await navigator.credentials.create({ publicKey });
        const r = cred.response;
        const credential = Object.assign(credentialBase(cred), { response: {
          clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject),
          transports: typeof r.getTransports === "function" ? r.getTransports() : undefined } });
        const name = add.elements.namedItem("name").value.trim();
        const res = await post(base + "/register", name ? { credential, name } : { credential });
        if (res && Array.isArray(res.recovery_codes)) {
          // The first second factor: its recovery codes, shown this once, then on to the account page.
          const box = document.createElement("div");
          const h = document.createElement("h3");
          h.textContent = "Your recovery codes";
          const p = document.createElement("p");
          p.textContent = "Your passkey is added. Keep these codes somewhere safe: each works once if you lose your passkey. They are shown only now.";
          const ol = document.createElement("ol");
          ol.className = "codes";
          ol.id = "recovery-codes";
          for (const code of res.recovery_codes) { const li = document.createElement("li"); li.textContent = code; ol.appendChild(li); }
          // Download (and copy, where there is a clipboard), and "I have saved these codes" before going on.
          const text = res.recovery_codes.join("\\n") + "\\n";
          const go = document.createElement("form");
          go.innerHTML = '<div class="actions"><button type="button" class="button secondary" hidden>Copy codes</button><a class="button secondary" id="codes-download" download="recovery-codes.txt">Download</a></div><div class="check"><input type="checkbox" id="codes-saved" required><label for="codes-saved">I have saved these codes somewhere safe</label></div><button type="submit" class="button primary">Continue</button>';
          go.querySelector("a").href = "data:text/plain;charset=utf-8," + encodeURIComponent(text);
          const copy = go.querySelector("button");
          if (navigator.clipboard) copy.hidden = false;
          copy.addEventListener("click", () => navigator.clipboard.writeText(text).then(() => { copy.textContent = "Copied"; }));
          go.addEventListener("submit", (ev) => { ev.preventDefault(); location.assign(add.dataset.done); });
          box.append(h, p, ol, go);
          add.replaceWith(box);
          h.tabIndex = -1;
          h.focus();
          return;
        }
        location.assign(add.dataset.done);
      })().catch((e) => say(status, e && e.name === "InvalidStateError" ? "This authenticator already holds a passkey for your account." : explain(e)));
    });
  }
})();
`;
