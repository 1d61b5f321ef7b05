import { ClaimRecord, claimDecision, leaseGranted } from './claim-rules';

const claim = (over: Partial<ClaimRecord> = {}): ClaimRecord => ({
  status: 'IN_PROGRESS',
  owner: 'r1',
  expiresAt: 1000,
  version: 1,
  ...over,
});

describe('claim rules', () => {
  it.each([
    ['no claim', undefined, 'r2', 500, false, 'claimed'],
    ['own claim in progress', claim(), 'r1', 500, false, 'claimed'],
    ["another owner's claim", claim(), 'r2', 500, false, 'held'],
    ["another owner's expired claim", claim(), 'r2', 1000, false, 'claimed'],
    ['completed within its window', claim({ status: 'COMPLETED' }), 'r1', 500, false, 'completed'],
    ['completed, window over', claim({ status: 'COMPLETED' }), 'r2', 1001, false, 'claimed'],
    ['forced over a held claim', claim(), 'r2', 500, true, 'claimed'],
    ['forced over a completed claim', claim({ status: 'COMPLETED' }), 'r2', 500, true, 'claimed'],
  ] as const)('%s', (_name, existing, owner, now, force, expected) => {
    expect(claimDecision(existing, owner, now, force)).toBe(expected);
  });
});

describe('lease rules', () => {
  const lease = { owner: 'r1', expiresAt: 1000, version: 3 };
  it('grants a free lease, a renewal by its holder and an expired one; refuses a live lease of another', () => {
    expect(leaseGranted(undefined, 'r2', 500)).toBe(true);
    expect(leaseGranted(lease, 'r1', 500)).toBe(true);
    expect(leaseGranted(lease, 'r2', 1000)).toBe(true);
    expect(leaseGranted(lease, 'r2', 999)).toBe(false);
  });
});
