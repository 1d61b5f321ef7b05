import { filterPatternProblem, FilterPatternError, KeyFilter, splitPatterns } from './key-filter';

const passes = (include: string[], exclude: string[], key: string): boolean => KeyFilter.of(include, exclude).passes(key);

describe('KeyFilter (rclone glob rules over object keys)', () => {
  it.each([
    // pattern, key, matches
    ['*.jpg', 'a.jpg', true],
    ['*.jpg', 'photos/2026/a.jpg', true],
    ['*.jpg', 'a.jpeg', false],
    ['file.txt', 'dir/file.txt', true],
    ['file.txt', 'dir/myfile.txt', false],
    ['b/c.txt', 'a/b/c.txt', true],
    ['b/c.txt', 'a/xb/c.txt', false],
    ['/c.txt', 'c.txt', true],
    ['/c.txt', 'a/c.txt', false],
    ['/logs/*', 'logs/a.jsonl', true],
    ['/logs/*', 'logs/2026/a.jsonl', false],
    ['/logs/**', 'logs/2026/11/a.jsonl', true],
    ['/logs/', 'logs/2026/a.jsonl', true],
    ['tmp/', 'a/tmp/x/y', true],
    ['tmp/', 'a/tmpx/y', false],
    ['?.txt', 'd/a.txt', true],
    ['?.txt', 'd/ab.txt', false],
    ['*', 'a/b/c', true],
    ['{a,b}.log', 'x/b.log', true],
    ['{a,b}.log', 'x/c.log', false],
    ['file[0-9].txt', 'file7.txt', true],
    ['file[0-9].txt', 'filex.txt', false],
    ['*.tmp', '.hidden.tmp', true],
    ['.git/**', 'repo/.git/config', true],
  ])('pattern %s against %s: %s', (pattern, key, matches) => {
    expect(passes([pattern], [], key)).toBe(matches);
    expect(passes([], [pattern], key)).toBe(!matches);
  });

  it.each([
    ['report (1).pdf', 'docs/report (1).pdf'],
    ['a+b=c.txt', 'a+b=c.txt'],
    ['!important', '!important'],
    ['@(x)', '@(x)'],
    ['cost$.csv', 'cost$.csv'],
    ['a|b', 'a|b'],
    ['x^2', 'x^2'],
  ])('takes %s literally, as rclone does (no extglob, negation or regex groups)', (pattern, key) => {
    expect(passes([pattern], [], key)).toBe(true);
  });

  it('does not let a literal parenthesis pattern match the bare name', () => {
    expect(passes(['report (1).pdf'], [], 'report 1.pdf')).toBe(false);
    expect(passes(['a|b'], [], 'a')).toBe(false);
  });

  it('lets excludes win over includes, and with includes given requires one to match', () => {
    const filter = KeyFilter.of(['*.jsonl', '/reports/'], ['*.partial.jsonl', '/reports/draft/']);
    expect(filter.passes('calls/a.jsonl')).toBe(true);
    expect(filter.passes('reports/q3.pdf')).toBe(true);
    expect(filter.passes('calls/a.partial.jsonl')).toBe(false);
    expect(filter.passes('reports/draft/q4.pdf')).toBe(false);
    expect(filter.passes('notes/a.txt')).toBe(false);
  });

  it('says which rule left a key out, naming the variable it came from', () => {
    const filter = KeyFilter.of(['*.jsonl'], ['*.tmp.jsonl'], { include: 'SYNC_INCLUDE', exclude: 'SYNC_EXCLUDE' });
    expect(filter.rejects('a.tmp.jsonl')).toBe('excluded by SYNC_EXCLUDE pattern "*.tmp.jsonl"');
    expect(filter.rejects('a.txt')).toBe('matches no SYNC_INCLUDE pattern');
    expect(filter.rejects('a.jsonl')).toBeUndefined();
  });

  it('narrows a configured filter by a request filter: a key must pass both', () => {
    const configured = KeyFilter.of([], ['*.tmp'], { include: 'SYNC_INCLUDE', exclude: 'SYNC_EXCLUDE' });
    const run = configured.narrowedBy(KeyFilter.of(['/calls/'], []));
    expect(run.passes('calls/a.jsonl')).toBe(true);
    expect(run.rejects('calls/a.tmp')).toBe('excluded by SYNC_EXCLUDE pattern "*.tmp"');
    expect(run.rejects('notes/a.txt')).toBe('matches no include pattern');
    expect(run.describe()).toEqual({ include: ['/calls/'], exclude: ['*.tmp'] });
    expect(configured.narrowedBy(KeyFilter.all)).toBe(configured);
    expect(KeyFilter.all.narrowedBy(configured)).toBe(configured);
  });

  it('passes every key when empty', () => {
    expect(KeyFilter.of([], []).isEmpty).toBe(true);
    expect(KeyFilter.all.passes('any/key at all')).toBe(true);
  });

  it.each([
    ['{a,b', 'a "{" without its "}"'],
    ['a}', 'a "}" without its "{"'],
    ['file[0-9', 'a "[" without its "]"'],
    ['{{.*\\.log}}', 'regular expressions ({{...}}) are not supported; use glob syntax'],
    ['a\\*b', 'backslashes are not supported (no key the mirror accepts contains one)'],
  ])('refuses the malformed pattern %s', (pattern, problem) => {
    expect(filterPatternProblem(pattern)).toBe(problem);
    expect(() => KeyFilter.of([pattern], [])).toThrow(new FilterPatternError(pattern, problem));
  });
});

describe('splitPatterns', () => {
  it('splits on commas outside braces and classes, trimming and dropping empty entries', () => {
    expect(splitPatterns(' *.tmp, {a,b}.log ,,[,x].txt, /logs/ ')).toEqual(['*.tmp', '{a,b}.log', '[,x].txt', '/logs/']);
    expect(splitPatterns(undefined)).toEqual([]);
    expect(splitPatterns('')).toEqual([]);
  });
});
