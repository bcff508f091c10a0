/** An environment variable Parley ignores that is one keystroke away from one it reads. */
export interface Misspelling {
  readonly name: string;
  /** The known names it is one edit from (almost always one). */
  readonly meant: readonly string[];
}

// Only names shaped like ours: upper case, digits and underscores, as every Parley variable is.
const OURS = /^[A-Z][A-Z0-9_]*$/;

/**
 * Variables of `env` that a person probably meant as one of `known`: one character added, dropped
 * or replaced, or two neighbours swapped (DATABSE_URL, JWT_SECERT, PROT). The shell's own names
 * (HOME, PATH, TERM, USER, …) are at least two edits from every Parley name, so they never match.
 */
export function findMisspellings(env: Readonly<Record<string, string | undefined>>, known: readonly string[]): Misspelling[] {
  const exact = new Set(known);
  const found: Misspelling[] = [];
  for (const name of Object.keys(env).sort()) {
    if (exact.has(name) || !OURS.test(name)) continue;
    const meant = known.filter((k) => oneEditApart(name, k));
    if (meant.length) found.push({ name, meant });
  }
  return found;
}

export function misspellingMessage({ name, meant }: Misspelling): string {
  return `${name} is not a Parley variable and is ignored: did you mean ${meant.join(' or ')}?`;
}

/** Levenshtein distance 1, or one transposition of neighbours (so distinct strings only). */
function oneEditApart(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (a[i] === b[i]) i++;
  if (a.length === b.length) {
    const rest = (from: number) => a.slice(from) === b.slice(from);
    return rest(i + 1) || (a[i] === b[i + 1] && a[i + 1] === b[i] && rest(i + 2));
  }
  const [long, short] = a.length > b.length ? [a, b] : [b, a];
  return long.slice(i + 1) === short.slice(i);
}
