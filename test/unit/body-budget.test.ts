import { BodyBudget } from '../../src/webhook/body-budget';

describe('BodyBudget', () => {
  it('takes bytes while they fit, refuses what would not, and takes again after a release', () => {
    const budget = new BodyBudget(100);
    expect(budget.tryTake(60)).toBe(true);
    expect(budget.tryTake(41)).toBe(false);
    expect(budget.inUse).toBe(60);
    expect(budget.tryTake(40)).toBe(true);
    expect(budget.inUse).toBe(100);
    expect(budget.tryTake(1)).toBe(false);
    budget.release(60);
    expect(budget.tryTake(60)).toBe(true);
  });

  it('never goes below zero, whatever is released', () => {
    const budget = new BodyBudget(10);
    budget.release(5);
    expect(budget.inUse).toBe(0);
    expect(budget.tryTake(10)).toBe(true);
  });
});
