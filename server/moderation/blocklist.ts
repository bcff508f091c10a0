/** A word list compiled once: finds its words and phrases in a text, and masks them. */
export interface Blocklist {
  matches(text: string): boolean;
  /** Each match's letters replaced by `*`, keeping its length, so the rest reads as written. */
  mask(text: string): string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Case-insensitive, whole words only (`ass` does not match `class`): a match may not touch a
 * letter, digit or `_` on either side, in any script. Spaces inside a phrase match any run of
 * white space. One regular expression for the whole list, so a message is scanned once
 * whatever the list's length. Longer entries are tried first, so a phrase wins over its first word.
 */
export function createBlocklist(words: readonly string[]): Blocklist | undefined {
  const entries = [...new Set(words.map((w) => w.trim().toLowerCase()).filter(Boolean))].sort((a, b) => b.length - a.length);
  if (!entries.length) return undefined;
  const alternatives = entries.map((w) => w.split(/\s+/).map(escape).join('\\s+')).join('|');
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])`, 'giu');
  return {
    matches(text) {
      pattern.lastIndex = 0;
      return pattern.test(text);
    },
    mask: (text) => text.replace(pattern, (found) => found.replace(/[^\s]/gu, '*')),
  };
}
