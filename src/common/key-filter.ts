import picomatch from 'picomatch';

/**
 * Include / exclude rules over object keys, in rclone's glob language, so that a filter written for
 * `rclone sync --include/--exclude` means the same here. A key is the file's path under the mirror
 * directory, so a pattern is matched against the whole key:
 *
 * - `*` matches within one path segment, `**` across segments, `?` one character, `[a-z]` a class,
 *   `{a,b}` alternatives; every other character stands for itself.
 * - A pattern that starts with `/` is anchored at the top of the bucket; any other pattern matches
 *   the end of the key on whole segments (`*.tmp` matches `a/b/c.tmp`, `b/c.tmp` matches `a/b/c.tmp`
 *   but not `a/xb/c.tmp`). A pattern that ends with `/` names a folder and everything in it.
 * - Excludes win: a key matching any exclude is out; otherwise, when includes are given, a key must
 *   match one of them (rclone's implicit trailing `--exclude **`).
 */
export class KeyFilter {
  private readonly includeMatchers: Array<(key: string) => boolean>;
  private readonly excludeMatchers: Array<{ pattern: string; test: (key: string) => boolean }>;

  private constructor(
    readonly include: readonly string[],
    readonly exclude: readonly string[],
    /** Where the rules came from, for the reason given when a key is filtered out. */
    private readonly origin: { include: string; exclude: string },
    /** Another filter a key must pass as well (a request's filter narrows the configured one). */
    private readonly within?: KeyFilter,
  ) {
    this.includeMatchers = include.map(compile);
    this.excludeMatchers = exclude.map((pattern) => ({ pattern, test: compile(pattern) }));
  }

  static readonly all = new KeyFilter([], [], { include: '', exclude: '' });

  /** Throws FilterPatternError naming the first bad pattern. */
  static of(include: readonly string[], exclude: readonly string[], origin = { include: 'include', exclude: 'exclude' }): KeyFilter {
    for (const pattern of [...include, ...exclude]) {
      const problem = filterPatternProblem(pattern);
      if (problem) throw new FilterPatternError(pattern, problem);
    }
    return include.length === 0 && exclude.length === 0 ? KeyFilter.all : new KeyFilter([...include], [...exclude], origin);
  }

  /** This filter and `narrower` both: what a run with its own filter may touch. */
  narrowedBy(narrower: KeyFilter): KeyFilter {
    if (narrower.isEmpty) return this;
    if (this.isEmpty) return narrower;
    return new KeyFilter(narrower.include, narrower.exclude, narrower.origin, this);
  }

  get isEmpty(): boolean {
    return this.include.length === 0 && this.exclude.length === 0 && !this.within;
  }

  /** Why the key is filtered out, or undefined when it passes. */
  rejects(key: string): string | undefined {
    const outer = this.within?.rejects(key);
    if (outer) return outer;
    const excluded = this.excludeMatchers.find((m) => m.test(key));
    if (excluded) return `excluded by ${this.origin.exclude} pattern "${excluded.pattern}"`;
    if (this.includeMatchers.length > 0 && !this.includeMatchers.some((test) => test(key))) {
      return `matches no ${this.origin.include} pattern`;
    }
    return undefined;
  }

  passes(key: string): boolean {
    return this.rejects(key) === undefined;
  }

  /** The rules of this filter and every filter it narrows, for reports and `/config`. */
  describe(): { include: string[]; exclude: string[] } {
    const outer = this.within?.describe() ?? { include: [], exclude: [] };
    return { include: [...outer.include, ...this.include], exclude: [...outer.exclude, ...this.exclude] };
  }
}

export class FilterPatternError extends Error {
  constructor(
    readonly pattern: string,
    problem: string,
  ) {
    super(`filter pattern "${pattern}": ${problem}`);
    this.name = 'FilterPatternError';
  }
}

/**
 * A comma-separated list of patterns; commas inside `{...}` or `[...]` belong to the pattern, so
 * `{a,b}.log` stays one pattern.
 */
export function splitPatterns(value: string | undefined): string[] {
  const patterns: string[] = [];
  let depth = 0;
  let inClass = false;
  let current = '';
  for (const ch of value ?? '') {
    if (inClass) inClass = ch !== ']';
    else if (ch === '[') inClass = true;
    else if (ch === '{') depth++;
    else if (ch === '}') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) {
      patterns.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  patterns.push(current);
  return patterns.map((p) => p.trim()).filter(Boolean);
}

/** What is wrong with one pattern, or undefined when it is valid. */
export function filterPatternProblem(pattern: string): string | undefined {
  if (pattern.trim() === '') return 'empty';
  if (pattern.includes('{{')) return 'regular expressions ({{...}}) are not supported; use glob syntax';
  if (pattern.includes('\\')) return 'backslashes are not supported (no key the mirror accepts contains one)';
  let braces = 0;
  let inClass = false;
  for (const ch of pattern) {
    if (inClass) {
      if (ch === ']') inClass = false;
    } else if (ch === '[') inClass = true;
    else if (ch === '{') braces++;
    else if (ch === '}' && --braces < 0) return 'a "}" without its "{"';
  }
  if (inClass) return 'a "[" without its "]"';
  if (braces > 0) return 'a "{" without its "}"';
  return undefined;
}

/**
 * picomatch speaks a superset of rclone's globs: its extglobs (`+(a)`, `@(a)`), negation (`!a`)
 * and regex groups (`(a|b)`) are turned off or escaped, since in rclone (and in keys such as
 * `report (1).pdf`) those characters stand for themselves.
 */
const LITERAL_OUTSIDE_CLASSES = new Set(['(', ')', '+', '@', '!', '$', '^', '|']);

function compile(pattern: string): (key: string) => boolean {
  let glob = '';
  let inClass = false;
  for (const ch of pattern) {
    if (inClass) inClass = ch !== ']';
    else if (ch === '[') inClass = true;
    glob += !inClass && LITERAL_OUTSIDE_CLASSES.has(ch) ? `\\${ch}` : ch;
  }
  if (glob.endsWith('/')) glob += '**';
  glob = glob.startsWith('/') ? glob.slice(1) : `**/${glob}`;
  return picomatch(glob, { dot: true, noextglob: true, nonegate: true });
}
