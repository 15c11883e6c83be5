import fc from 'fast-check';
import type { SrvRecord } from './dns';
import { orderSrvRecords } from './srv-order';

const srv = (name: string, priority: number, weight: number): SrvRecord => ({ name, port: 8448, priority, weight });

describe('orderSrvRecords (RFC 2782)', () => {
  it('lower priority always comes first, whatever the weights', () => {
    const records = [srv('low-pri-heavy', 20, 1000), srv('high-pri-light', 10, 1)];
    expect(orderSrvRecords(records, () => 0.99).map((r) => r.name)).toEqual(['high-pri-light', 'low-pri-heavy']);
  });

  it('within a priority, the draw picks by running weight sum', () => {
    const records = [srv('a', 10, 10), srv('b', 10, 90)];
    // total 100: draw floor(r * 101); <= 10 → a, else b
    expect(orderSrvRecords(records, () => 0.05).map((r) => r.name)).toEqual(['a', 'b']);
    expect(orderSrvRecords(records, () => 0.5).map((r) => r.name)).toEqual(['b', 'a']);
  });

  it('heavier records come first more often', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let heavyFirst = 0;
    for (let i = 0; i < 1000; i++) {
      if (orderSrvRecords([srv('light', 1, 1), srv('heavy', 1, 9)], random)[0].name === 'heavy') heavyFirst++;
    }
    expect(heavyFirst).toBeGreaterThan(800);
    expect(heavyFirst).toBeLessThan(980);
  });

  it('drops "." targets', () => {
    expect(orderSrvRecords([srv('.', 0, 0)])).toEqual([]);
  });

  it('is a permutation sorted by priority for any input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd'), port: fc.nat(65535), priority: fc.nat(3), weight: fc.nat(5) })),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (records, r) => {
          const ordered = orderSrvRecords(records, () => r);
          expect(ordered).toHaveLength(records.length);
          expect(new Set(ordered)).toEqual(new Set(records));
          for (let i = 1; i < ordered.length; i++) expect(ordered[i].priority).toBeGreaterThanOrEqual(ordered[i - 1].priority);
        },
      ),
    );
  });
});
