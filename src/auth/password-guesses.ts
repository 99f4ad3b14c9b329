/**
 * How many guesses a password costs an attacker who tries common passwords and the usual
 * patterns first: a small estimator after zxcvbn (Wheeler, USENIX Security 2016), cut down to
 * what the policy needs. The password is split into the cheapest chain of pieces, each costing
 * some guesses: a common word (its rank tier; capitals, leet and reversal cost a little more),
 * a repeat of a piece, a sequence (abcd, 9753), a keyboard walk (qwerty, 1qaz, 7896), a year or
 * date, or else one character on its own (10 for a digit, 26 for a letter, 33 for a symbol).
 * The guesses of a chain are the product of its pieces' (kept as log10, so nothing overflows).
 *
 * Hand-written rather than @zxcvbn-ts/core: that library alone is 11 KiB gzip and its data
 * 220 KiB, against a whole-Worker budget of 64 KiB; this module and its word list are about 13.
 */
import commonWordsText from './data/common-words.txt';

export type PieceKind = 'word' | 'repeat' | 'sequence' | 'keyboard' | 'date' | 'character';

export interface Guessability {
  /** log10 of the estimated guesses. */
  log10: number;
  /** The kinds of piece in the cheapest chain, for the error message. */
  kinds: Set<PieceKind>;
}

interface Piece {
  start: number;
  log10: number;
  kind: PieceKind;
}

const LOG2 = Math.log10(2);

// ---- Common words ------------------------------------------------------------------------

interface CommonWords {
  /** word -> log10 of its rank tier's bound */
  rank: Map<string, number>;
  /** every prefix of a word, and of a word spelt backwards: lets a search stop early */
  prefixes: Set<string>;
  reversedPrefixes: Set<string>;
}

let commonWords: CommonWords | undefined;

/** Parses the front-coded tiers of scripts/build-common-words.mjs; on first use only. */
function words(): CommonWords {
  if (commonWords) return commonWords;
  const parsed: CommonWords = { rank: new Map(), prefixes: new Set(), reversedPrefixes: new Set() };
  let tierLog = 0;
  let prev = '';
  for (const line of commonWordsText.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('@')) {
      tierLog = Math.log10(Number(line.slice(1)));
      prev = '';
      continue;
    }
    const word = prev.slice(0, Number(line[0])) + line.slice(1);
    parsed.rank.set(word, tierLog);
    const backwards = [...word].reverse().join('');
    for (let k = 1; k < word.length; k++) {
      parsed.prefixes.add(word.slice(0, k));
      parsed.reversedPrefixes.add(backwards.slice(0, k));
    }
    prev = word;
  }
  commonWords = parsed;
  return parsed;
}

export function commonWordCount(): number {
  return words().rank.size;
}

// Substitutions undone before looking a word up (the list's generator undoes the same).
const LEET: Record<string, readonly string[]> = {
  '0': ['o'],
  '1': ['i', 'l'],
  '!': ['i'],
  '|': ['i', 'l'],
  '3': ['e'],
  '4': ['a'],
  '@': ['a'],
  '5': ['s'],
  '$': ['s'],
  '7': ['t', 'l'],
  '+': ['t'],
};
const MAX_LEET_VARIANTS = 16;

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** zxcvbn's capitalisation guesses: one capital first or last, or all capitals, doubles. */
function capitalsLog(original: readonly string[]): number {
  const upper = original.filter((ch) => ch !== ch.toLowerCase()).length;
  if (upper === 0) return 0;
  const lower = original.length - upper;
  const first = original[0]!;
  const last = original[original.length - 1]!;
  if (lower === 0 || (upper === 1 && (first !== first.toLowerCase() || last !== last.toLowerCase()))) return LOG2;
  let sum = 0;
  for (let i = 1; i <= Math.min(upper, lower); i++) sum += binomial(upper + lower, i);
  return Math.log10(sum);
}

function wordPieces(original: readonly string[], lower: readonly string[], add: (i: number, j: number, log: number, kind: PieceKind) => void) {
  const { rank, prefixes, reversedPrefixes } = words();
  for (let i = 0; i < lower.length; i++) {
    // Grown one character at a time, keeping only spellings that still begin some word: the
    // de-leeted spellings (letters stay, 0 -> o, 1 -> i or l, ...) and the word spelt backwards.
    let spellings = [{ word: '', subs: 0 }];
    let forwards = '';
    let backwards: string | null = '';
    for (let j = i + 1; j <= lower.length && (spellings.length > 0 || backwards !== null); j++) {
      const ch = lower[j - 1]!;
      const options = /^[a-z]$/.test(ch) ? [ch] : (LEET[ch] ?? []);
      spellings = spellings
        .flatMap((s) => options.map((o) => ({ word: s.word + o, subs: s.subs + (o === ch ? 0 : 1) })))
        .filter((s) => rank.has(s.word) || prefixes.has(s.word))
        .slice(0, MAX_LEET_VARIANTS);
      forwards += ch;
      backwards = backwards !== null && /^[a-z]$/.test(ch) ? ch + backwards : null;
      if (backwards !== null && !rank.has(backwards) && !reversedPrefixes.has(forwards)) backwards = null;
      if (j - i < 4) continue;
      const caps = () => capitalsLog(original.slice(i, j));
      for (const s of spellings) {
        const found = rank.get(s.word);
        if (found !== undefined) add(i, j, found + caps() + s.subs * LOG2, 'word');
      }
      const reversed = backwards === null ? undefined : rank.get(backwards);
      if (reversed !== undefined) add(i, j, reversed + caps() + LOG2, 'word');
    }
  }
}

// ---- Sequences ---------------------------------------------------------------------------

function charClass(ch: string): 'digit' | 'lower' | 'upper' | null {
  if (/^[0-9]$/.test(ch)) return 'digit';
  if (/^[a-z]$/.test(ch)) return 'lower';
  if (/^[A-Z]$/.test(ch)) return 'upper';
  return null;
}

/** Runs of one class with a constant step of 1 to 5: abcd, 13579, ZYXW. */
function sequencePieces(chars: readonly string[], add: (i: number, j: number, log: number, kind: PieceKind) => void) {
  for (let i = 0; i + 2 < chars.length; i++) {
    const cls = charClass(chars[i]!);
    if (!cls) continue;
    const step = chars[i + 1]!.charCodeAt(0) - chars[i]!.charCodeAt(0);
    if (step === 0 || Math.abs(step) > 5) continue;
    const first = chars[i]!.toLowerCase();
    const base = 'az019'.includes(first) ? 4 : cls === 'digit' ? 10 : 26;
    let j = i + 1;
    while (j < chars.length && charClass(chars[j]!) === cls && chars[j]!.charCodeAt(0) - chars[j - 1]!.charCodeAt(0) === step) {
      j++;
      if (j - i >= 3) add(i, j, Math.log10(base * (j - i) * Math.abs(step) * (step < 0 ? 2 : 1)), 'sequence');
    }
  }
}

// ---- Keyboard walks ----------------------------------------------------------------------

interface Layout {
  id: number;
  /** character -> key id and whether it needs Shift */
  keys: Map<string, { key: number; shifted: boolean }>;
  /** key id -> neighbour key id -> direction */
  neighbours: Map<number, Map<number, string>>;
  startingPositions: number;
  averageDegree: number;
}

/** Rows of [unshifted, shifted] characters with each row's horizontal offset in key widths. */
type Rows = readonly (readonly [string, string, number])[];

const STAGGERED: Record<string, Rows> = {
  qwerty: [
    ['`1234567890-=', '~!@#$%^&*()_+', 0],
    ['qwertyuiop[]\\', 'QWERTYUIOP{}|', 1.5],
    ["asdfghjkl;'", 'ASDFGHJKL:"', 1.75],
    ['zxcvbnm,./', 'ZXCVBNM<>?', 2.25],
  ],
  qwertz: [
    ['^1234567890ß´', '°!"§$%&/()=?`', 0],
    ['qwertzuiopü+', 'QWERTZUIOPÜ*', 1.5],
    ['asdfghjklöä#', "ASDFGHJKLÖÄ'", 1.75],
    ['<yxcvbnm,.-', '>YXCVBNM;:_', 1.25],
  ],
  azerty: [
    ['²&é"\'(-è_çà)=', '~1234567890°+', 0],
    ['azertyuiop^$', 'AZERTYUIOP¨£', 1.5],
    ['qsdfghjklmù*', 'QSDFGHJKLM%µ', 1.75],
    ['<wxcvbn,;:!', '>WXCVBN?./§', 1.25],
  ],
  dvorak: [
    ['`1234567890[]', '~!@#$%^&*(){}', 0],
    ["',.pyfgcrl/=\\", '"<>PYFGCRL?+|', 1.5],
    ['aoeuidhtns-', 'AOEUIDHTNS_', 1.75],
    [';qjkxbmwvz', ':QJKXBMWVZ', 2.25],
  ],
};

// The numeric keypad: a grid where all eight surrounding keys are neighbours.
const KEYPAD = [' /*-', '789+', '456 ', '123 ', '0 . '];

function buildLayout(id: number, positions: { chars: [string, string?]; x: number; y: number }[], adjacent: (dx: number, dy: number) => string | null): Layout {
  const keys = new Map<string, { key: number; shifted: boolean }>();
  const neighbours = new Map<number, Map<number, string>>();
  positions.forEach((p, key) => {
    keys.set(p.chars[0], { key, shifted: false });
    if (p.chars[1]) keys.set(p.chars[1], { key, shifted: true });
    const near = new Map<number, string>();
    positions.forEach((q, other) => {
      const dir = other === key ? null : adjacent(q.x - p.x, q.y - p.y);
      if (dir) near.set(other, dir);
    });
    neighbours.set(key, near);
  });
  let degrees = 0;
  for (const near of neighbours.values()) degrees += near.size;
  return { id, keys, neighbours, startingPositions: keys.size, averageDegree: degrees / neighbours.size };
}

let layouts: Layout[] | undefined;

function keyboardLayouts(): Layout[] {
  if (layouts) return layouts;
  const staggered = Object.values(STAGGERED).map((rows, id) =>
    buildLayout(
      id,
      rows.flatMap(([plain, shifted, offset], y) => [...plain].map((ch, i) => ({ chars: [ch, [...shifted][i]] as [string, string?], x: offset + i, y }))),
      (dx, dy) => (dy === 0 && Math.abs(dx) === 1 ? (dx > 0 ? 'right' : 'left') : Math.abs(dy) === 1 && Math.abs(dx) < 1 ? `${dy > 0 ? 'down' : 'up'}-${dx > 0 ? 'right' : 'left'}` : null),
    ),
  );
  const keypad = buildLayout(
    staggered.length,
    KEYPAD.flatMap((row, y) => [...row].flatMap((ch, x) => (ch === ' ' ? [] : [{ chars: [ch] as [string, string?], x, y }]))),
    (dx, dy) => (Math.abs(dx) <= 1 && Math.abs(dy) <= 1 ? `${dx},${dy}` : null),
  );
  layouts = [...staggered, keypad];
  return layouts;
}

// Walks are scored up to this length; a longer one is scored as several (cheap anyway).
const MAX_WALK = 32;
const walkLogs = new Map<number, number>();

/** zxcvbn's walk guesses: start positions times the ways to place `turns` turns, and Shift. */
function walkLog(layout: Layout, length: number, turns: number, shifted: number): number {
  const key = ((layout.id * 64 + length) * 64 + turns) * 64 + shifted;
  const known = walkLogs.get(key);
  if (known !== undefined) return known;
  let guesses = 0;
  for (let i = 2; i <= length; i++) {
    for (let j = 1; j <= Math.min(turns, i - 1); j++) guesses += binomial(i - 1, j - 1) * layout.startingPositions * layout.averageDegree ** j;
  }
  let log = Math.log10(guesses);
  const unshifted = length - shifted;
  if (shifted > 0 && unshifted === 0) log += LOG2;
  else if (shifted > 0) {
    let sum = 0;
    for (let i = 1; i <= Math.min(shifted, unshifted); i++) sum += binomial(length, i);
    log += Math.log10(sum);
  }
  walkLogs.set(key, log);
  return log;
}

function keyboardPieces(chars: readonly string[], add: (i: number, j: number, log: number, kind: PieceKind) => void) {
  const n = chars.length;
  const cheapest = new Map<number, number>(); // the same walk on several layouts counts once
  const offer = (i: number, j: number, log: number) => {
    const key = i * 1024 + j;
    if (Number.isFinite(log) && !(cheapest.get(key)! <= log)) cheapest.set(key, log);
  };
  for (const layout of keyboardLayouts()) {
    const keys = chars.map((ch) => layout.keys.get(ch));
    const step = (a: number, b: number) => {
      const from = keys[a];
      const to = keys[b];
      return from && to ? layout.neighbours.get(from.key)?.get(to.key) : undefined;
    };
    const steps = keys.map((_, m) => (m + 1 < n ? step(m, m + 1) : undefined));
    for (let i = 0; i + 2 < n; i++) {
      if (!keys[i]) continue;
      let shifted = keys[i]!.shifted ? 1 : 0;
      let turns = 0;
      for (let j = i + 1; j < Math.min(n, i + MAX_WALK) && steps[j - 1]; j++) {
        if (steps[j - 1] !== steps[j - 2] || j === i + 1) turns++;
        if (keys[j]!.shifted) shifted++;
        if (j + 1 - i >= 3) offer(i, j + 1, walkLog(layout, j + 1 - i, turns, shifted));
      }
      // The same short walk again, each copy one key over: 1qaz2wsx3edc, qazwsxedc.
      for (let k = 3; k <= 8 && i + 2 * k <= n && steps[i] && steps[i + k - 2]; k++) {
        const shift = step(i, i + k);
        if (!shift) continue;
        let turnsInUnit = 1;
        for (let m = i + 1; m < i + k - 1; m++) if (steps[m] !== steps[m - 1]) turnsInUnit++;
        const unitLog = walkLog(layout, k, turnsInUnit, 0);
        for (let copies = 1; i + (copies + 1) * k <= n; ) {
          const start = i + copies * k;
          if (copies > 1 && step(start - k, start) !== shift) break;
          let same = true;
          for (let m = 0; m < k - 1 && same; m++) same = steps[start + m] === steps[i + m];
          if (!same) break;
          copies++;
          offer(i, i + copies * k, unitLog + Math.log10(layout.averageDegree * copies));
        }
      }
    }
  }
  for (const [key, log] of cheapest) add(Math.floor(key / 1024), key % 1024, log, 'keyboard');
}

// ---- Years and dates ---------------------------------------------------------------------

const YEAR = /^(19|20)\d\d$/;
const DAY_MONTH_YEAR = /^(\d{1,2})([-/. _]?)(\d{1,2})\2(\d{4}|\d{2})$/;
const YEAR_MONTH_DAY = /^(\d{4})([-/. _]?)(\d{1,2})\2(\d{1,2})$/;

function yearSpace(year: string): number {
  if (year.length === 2) return 100;
  const y = Number(year);
  if (y < 1900 || y > 2099) return 0;
  return Math.max(Math.abs(y - new Date().getUTCFullYear()), 20);
}

function dayMonth(a: string, b: string): boolean {
  const [x, y] = [Number(a), Number(b)];
  return (x >= 1 && x <= 31 && y >= 1 && y <= 12) || (x >= 1 && x <= 12 && y >= 1 && y <= 31);
}

function datePieces(chars: readonly string[], add: (i: number, j: number, log: number, kind: PieceKind) => void) {
  for (let i = 0; i + 3 < chars.length; i++) {
    if (!/^[0-9]$/.test(chars[i]!)) continue;
    for (let j = i + 4; j <= Math.min(chars.length, i + 10); j++) {
      const text = chars.slice(i, j).join('');
      if (YEAR.test(text)) add(i, j, Math.log10(yearSpace(text)), 'date');
      let m = DAY_MONTH_YEAR.exec(text);
      let space = m && dayMonth(m[1]!, m[3]!) ? yearSpace(m[4]!) : 0;
      if (!space && (m = YEAR_MONTH_DAY.exec(text)) && dayMonth(m[4]!, m[3]!)) space = yearSpace(m[1]!);
      if (space && m) add(i, j, Math.log10(365 * space * (m[2] ? 4 : 1)), 'date');
    }
  }
}

// ---- The cheapest chain ------------------------------------------------------------------

function characterLog(ch: string): number {
  if (/^[0-9]$/.test(ch)) return 1;
  if (/^[a-zA-Z]$/.test(ch)) return Math.log10(26);
  if (/^[\x20-\x7e]$/.test(ch)) return Math.log10(33);
  return 2;
}

const MAX_REPEAT_UNITS = 32;
const MAX_DEPTH = 3;

function lowerChar(ch: string): string {
  const lower = ch.toLowerCase();
  return [...lower].length === 1 ? lower : ch;
}

function analyse(chars: readonly string[], depth: number, budget: { units: number }): Guessability {
  const n = chars.length;
  const lower = chars.map(lowerChar);
  const ending: Piece[][] = Array.from({ length: n + 1 }, () => []);
  const add = (start: number, end: number, log10: number, kind: PieceKind) => ending[end]!.push({ start, log10, kind });

  for (let i = 0; i < n; i++) add(i, i + 1, characterLog(chars[i]!), 'character');
  wordPieces(chars, lower, add);
  sequencePieces(chars, add);
  keyboardPieces(chars, add);
  datePieces(chars, add);
  if (depth < MAX_DEPTH) repeatPieces(lower, depth, budget, add);

  const best: { log10: number; piece?: Piece }[] = [{ log10: 0 }];
  for (let end = 1; end <= n; end++) {
    let choice: { log10: number; piece?: Piece } = { log10: Infinity };
    for (const piece of ending[end]!) {
      const log10 = best[piece.start]!.log10 + piece.log10;
      if (log10 < choice.log10) choice = { log10, piece };
    }
    best.push(choice);
  }
  const kinds = new Set<PieceKind>();
  for (let end = n; end > 0; ) {
    const piece = best[end]!.piece!;
    kinds.add(piece.kind);
    end = piece.start;
  }
  return { log10: best[n]!.log10, kinds };
}

/** Two or more copies of a unit in a row ("passwordpassword", "abcabc", "aaaa"). */
function repeatPieces(lower: readonly string[], depth: number, budget: { units: number }, add: (i: number, j: number, log: number, kind: PieceKind) => void) {
  const n = lower.length;
  // agree[k][m]: for how many positions from m on a character equals the one k further on.
  // The unit at i of length k repeats when agree[k][i] >= k; O(n^2) for all units at once.
  const agree: Int16Array[] = [];
  for (let k = 1; 2 * k <= n; k++) {
    const run = new Int16Array(n - k + 1);
    for (let m = n - k - 1; m >= 0; m--) run[m] = lower[m] === lower[m + k] ? run[m + 1]! + 1 : 0;
    agree[k] = run;
  }
  const unitLogs = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    for (let k = 1; i + 2 * k <= n; k++) {
      const run = agree[k]!;
      if (run[i]! < k) continue;
      if (i >= k && run[i - k]! >= k) continue; // the same repeat, started a unit earlier
      let primitive = true; // a unit "abab" is "ab" twice over: that repeat is found with k = 2
      for (let d = 1; d < k && primitive; d++) if (k % d === 0 && agree[d]![i]! >= k - d) primitive = false;
      if (!primitive) continue;
      const unit = lower.slice(i, i + k);
      const key = unit.join('');
      let unitLog = unitLogs.get(key);
      if (unitLog === undefined) {
        if (budget.units <= 0) return;
        budget.units--;
        unitLog = analyse(unit, depth + 1, budget).log10;
        unitLogs.set(key, unitLog);
      }
      const copies = Math.floor(run[i]! / k) + 1;
      for (let c = 2; c <= copies; c++) add(i, i + c * k, unitLog + Math.log10(c), 'repeat');
      // A last copy cut short ("abcabcab") belongs to the repeat too.
      if (run[i]! % k > 0) add(i, i + k + run[i]!, unitLog + Math.log10(2 * copies), 'repeat');
    }
  }
}

/** Estimates the guesses for a password (NFKC-normalised, at most a few hundred characters). */
export function estimateGuesses(password: string): Guessability {
  return analyse([...password], 0, { units: MAX_REPEAT_UNITS });
}
