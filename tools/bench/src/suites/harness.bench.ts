import { fmt, measureRate, type BenchSuite } from '../harness';

// A reference loop, so every report shows what the machine does with no project code at all.
const suite: BenchSuite = {
  name: 'baseline',
  async run() {
    let x = 0;
    const r = measureRate(() => (x = (x * 31 + 7) | 0), 300, 1000);
    return [{ title: 'empty loop', rows: [{ name: 'integer step', value: fmt.rate(r) }] }];
  },
};
export default suite;
