/**
 * The account page's "Authenticator app" part: the app's state and plain forms to set it up,
 * remove it, or get new recovery codes (each asks for a recent sign-in first).
 */
export interface SecondFactorsCardProps {
  prefix: string;
  /** False when the gateway cannot store authenticator secrets (no TOKEN_ENCRYPTION_KEY). */
  available: boolean;
  totp: boolean;
  recoveryCodesLeft: number;
  /** True when one of the user's roles requires a second factor. */
  required: boolean;
  /** "Set up" is its section's primary action (the account has no password to change). */
  primary?: boolean;
}

export function SecondFactorsCard(p: SecondFactorsCardProps) {
  return (
    <div class="sub" id="second-factors">
      <h3>Authenticator app</h3>
      {p.required && !p.totp && <p role="status">Your role requires a second factor: set one up now.</p>}
      {p.totp ? (
        <>
          <p id="totp-status">Authenticator app: on. Signing in asks for a code from it.</p>
          <p class="muted" id="recovery-codes-left">
            {p.recoveryCodesLeft} unused recovery code{p.recoveryCodesLeft === 1 ? '' : 's'} left.
          </p>
          <form method="post" action={`${p.prefix}/account/recovery-codes`}>
            <button type="submit" class="button secondary">Get new recovery codes</button>
          </form>
          <form method="post" action={`${p.prefix}/account/totp/remove`}>
            <button type="submit" class="button secondary">Remove authenticator app</button>
          </form>
        </>
      ) : p.available ? (
        <>
          <p id="totp-status">Authenticator app: off. Add one so a stolen password is not enough to sign in.</p>
          <a class={p.primary ? 'button primary' : 'button secondary'} href={`${p.prefix}/account/totp`}>
            Set up an authenticator app
          </a>
        </>
      ) : (
        <p id="totp-status" class="muted">Authenticator apps are not available on this gateway.</p>
      )}
    </div>
  );
}
