import { limitHeapGrowth } from './heap-growth';

describe('limitHeapGrowth', () => {
  it('sets the growth unless Node was given one, in its arguments or NODE_OPTIONS', () => {
    expect(limitHeapGrowth([], '')).toBe(true);
    expect(limitHeapGrowth(['--enable-source-maps'], '--max-old-space-size=512')).toBe(true);
    expect(limitHeapGrowth(['--heap-growing-percent=80'], '')).toBe(false);
    expect(limitHeapGrowth([], '--max-old-space-size=512 --heap_growing_percent=20')).toBe(false);
    expect(limitHeapGrowth(['--heap-growing-percentage'], '')).toBe(true);
  });
});
