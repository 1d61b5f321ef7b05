import { EventDeleteBudget } from './event-delete-budget';

describe('EventDeleteBudget', () => {
  it('takes MAX_DELETE deletes per window and takes again as the window slides past them', () => {
    const budget = new EventDeleteBudget(2, 1000);
    expect(budget.take(0, () => 100)).toBeUndefined();
    expect(budget.take(500, () => 100)).toBeUndefined();
    expect(budget.take(999, () => 100)).toMatch(/more than MAX_DELETE \(2\) deletes from events within EVENT_DELETE_WINDOW_SECONDS \(1\)/);
    expect(budget.take(1000, () => 100)).toBeUndefined();
    expect(budget.take(1200, () => 100)).toMatch(/more than MAX_DELETE/);
    expect(budget.take(1500, () => 100)).toBeUndefined();
  });

  it('gives back a delete that was not applied', () => {
    const budget = new EventDeleteBudget(1, 1000);
    expect(budget.take(10, () => 100)).toBeUndefined();
    budget.giveBack(10);
    expect(budget.take(11, () => 100)).toBeUndefined();
  });

  it('with no limit still holds the last mirrored file after other deletes, but not a lone first delete', () => {
    const budget = new EventDeleteBudget(-1, 1000);
    expect(budget.take(0, () => 1)).toBeUndefined();
    expect(budget.take(1, () => 3)).toBeUndefined();
    expect(budget.take(2, () => 1)).toMatch(/would delete the last mirrored file after 2 other deletes/);
  });
});
