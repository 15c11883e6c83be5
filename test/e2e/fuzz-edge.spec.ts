// The fuzzer's short run (issue 11): hostile bodies, headers and routes at an embedded fedgate, bounded in
// requests and time. `npm run fuzz` is the long run (figures in docs/benchmarks.md).
import { summarizeFindings } from '../../tools/fuzz/src/fuzzer';
import { fuzzEmbeddedGateway } from '../../tools/fuzz/src/fuzz-gateway';

jest.setTimeout(180_000);

describe('fuzzing the HTTP edge (short run)', () => {
  it('answers 1,500 hostile requests without a 5xx, a hang, a double response, a non-Matrix error body or a crash', async () => {
    const seed = Number(process.env.FEDGATE_FUZZ_SEED ?? 20261207);
    const { report, logs } = await fuzzEmbeddedGateway({ requests: 1_500, maxSeconds: 45, concurrency: 4, seed, hangAfterMs: 20_000, bigBodyEvery: 300 });
    const findings = {
      crashed: report.crashed ? logs.slice(-3000) : false,
      serverErrors: summarizeFindings(report.serverErrors),
      hangs: summarizeFindings(report.hangs),
      doubleResponses: summarizeFindings(report.doubleResponses),
      nonMatrixErrors: summarizeFindings(report.nonMatrixErrors),
    };
    expect(findings).toEqual({ crashed: false, serverErrors: [], hangs: [], doubleResponses: [], nonMatrixErrors: [] });
    expect(report.sent).toBeGreaterThan(100);
  });
});
