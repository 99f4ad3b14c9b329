/**
 * The passkey parts of our pages: the account page's "Passkeys" card (list, rename,
 * remove as plain forms; "Add a passkey" driven by passkeys/client.js) and the sign-in page's
 * "Sign in with a passkey" button. Script-driven parts are rendered `hidden`: the script shows
 * them when the browser supports WebAuthn, so without JavaScript they never appear.
 */
export interface PasskeysSectionProps {
  prefix: string;
  /** Adding or removing needs a sign-in from the last few minutes (auth/recent-sign-in.ts). */
  recentSignIn: boolean;
  passkeys: { id: string; name: string; synced: boolean; createdAt: number; lastUsedAt: number | null }[];
}

const readable = (seconds: number) => `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** The script tag both pages use; its nonce is the page's CSP nonce. */
export function PasskeysScript(props: { prefix: string; nonce?: string }) {
  return <script nonce={props.nonce} src={`${props.prefix}/passkeys/client.js`} defer></script>;
}

export function PasskeysSection(p: PasskeysSectionProps & { nonce?: string }) {
  const base = `${p.prefix}/passkeys`;
  return (
    <div class="sub" id="passkeys">
      <h3>Passkeys</h3>
      <p class="muted">
        A passkey signs you in with your device’s screen lock, fingerprint or face, or a security key, instead of a password.
      </p>
      {p.passkeys.length === 0 ? (
        <p id="passkeys-none">You have no passkeys yet.</p>
      ) : (
        <table id="passkey-list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Added</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span class="muted">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {p.passkeys.map((k) => (
              <tr data-passkey={k.id}>
                <td>
                  <form method="post" action={`${base}/${encodeURIComponent(k.id)}/rename`} class="inline">
                    <label for={`passkey-name-${k.id}`} class="muted">
                      {k.synced ? 'Synced passkey' : 'Device-bound passkey'}
                    </label>
                    <input id={`passkey-name-${k.id}`} name="name" value={k.name} maxlength={60} required />
                    <button type="submit" class="secondary" aria-label={`Rename passkey ${k.name}`}>
                      Rename
                    </button>
                  </form>
                </td>
                <td>{readable(k.createdAt)}</td>
                <td>{k.lastUsedAt === null ? 'never' : readable(k.lastUsedAt)}</td>
                <td>
                  <form method="post" action={`${base}/${encodeURIComponent(k.id)}/remove`}>
                    <button type="submit" class="secondary" aria-label={`Remove passkey ${k.name}`}>
                      Remove
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {p.recentSignIn ? (
        <form id="passkey-add" hidden data-base={base} data-done={`${p.prefix}/account?done=passkey_added`} aria-labelledby="passkey-add-heading">
          <label for="passkey-add-name" id="passkey-add-heading">Name of a new passkey (optional)</label>
          <input id="passkey-add-name" name="name" maxlength={60} placeholder="e.g. Work laptop" />
          <button type="submit" class="button secondary">Add a passkey</button>
          <p id="passkey-add-status" role="alert" hidden></p>
        </form>
      ) : (
        <p id="passkey-reauth" class="muted">
          To add or remove a passkey, <a href={`${p.prefix}/login?return_to=${encodeURIComponent(`${p.prefix}/account`)}`}>sign in again</a> first (your sign-in is not recent enough).
        </p>
      )}
      <noscript>
        <p class="muted">Adding a passkey needs JavaScript; renaming and removing work without it.</p>
      </noscript>
      <PasskeysScript prefix={p.prefix} nonce={p.nonce} />
    </div>
  );
}

/** The sign-in page's passkey button, shown by the script where WebAuthn is available. */
export function PasskeySignIn(p: { prefix: string; returnTo: string; nonce?: string }) {
  return (
    <div id="passkey-signin" hidden data-base={`${p.prefix}/passkeys`} data-return-to={p.returnTo} data-mfa={`${p.prefix}/mfa`}>
      <button type="button" id="passkey-signin-button" class="secondary">
        Sign in with a passkey
      </button>
      <p id="passkey-signin-status" role="alert" hidden></p>
      <PasskeysScript prefix={p.prefix} nonce={p.nonce} />
    </div>
  );
}

/**
 * "Use your passkey" as a second factor (the mfa and step-up pages): the same script, pointed at
 * the page's own endpoints (`options`, `verify`); hidden until the script shows it.
 */
export function PasskeyFactor(p: { prefix: string; options: string; verify: string; returnTo: string; nonce?: string }) {
  return (
    <div id="passkey-signin" hidden data-base={`${p.prefix}/passkeys`} data-options={p.options} data-verify={p.verify} data-return-to={p.returnTo}>
      <button type="button" id="passkey-signin-button" class="secondary">
        Use your passkey
      </button>
      <p id="passkey-signin-status" role="alert" hidden></p>
      <PasskeysScript prefix={p.prefix} nonce={p.nonce} />
    </div>
  );
}
