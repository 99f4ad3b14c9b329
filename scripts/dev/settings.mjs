// Where `npm run dev` finds a setting the developer gave: `--var NAME:value` (wrangler's own
// flag, the last one wins), else the env file wrangler dev reads (.dev.vars, or the one named
// by `--env-file`). The shell's environment is not read here: only ROUTES is taken from it,
// by echo-origin.mjs.

/** A .dev.vars-style line's value, with one pair of surrounding quotes removed. */
function envFileValue(text, name) {
  const m = new RegExp(`^\\s*${name}\\s*=\\s*(.*?)\\s*$`, 'm').exec(text);
  if (!m) return undefined;
  const v = m[1];
  return /^(['"]).*\1$/s.test(v) ? v.slice(1, -1) : v;
}

/**
 * `{ value, source }` for a setting given with `--var` or in the env file, else undefined.
 * `givenVars`: the `--var` values as given (`NAME:value`).
 */
export function givenSetting(name, { givenVars = [], devVarsText = '' } = {}) {
  const flag = givenVars.map(String).filter((x) => x.startsWith(`${name}:`)).at(-1);
  if (flag !== undefined) return { value: flag.slice(name.length + 1), source: `--var ${name}` };
  const fromFile = envFileValue(devVarsText, name);
  if (fromFile !== undefined) return { value: fromFile, source: 'the env file (.dev.vars)' };
  return undefined;
}
