// One pair of gateways (A and B, one shape, one test CA) for every scenario set of an e2e file. Scenario sets
// that need no settings of their own share it rather than start a pair each: a pair costs 13 s (embedded) to
// 25 s (distributed) to start on the shared 2-core machine.
import { createTestCa, keepLogsAndDestroy, startFedgatePair, type FedgateInstance, type FedgateShape, type TestCertificateAuthority } from '@fedgate/testing';

export interface FedgatePair {
  ca: TestCertificateAuthority;
  a: FedgateInstance;
  b: FedgateInstance;
}

/**
 * Call at the top of a file: starts the pair in the file's beforeAll and, in its afterAll, keeps both logs under
 * `test-results/<logsName>/` and destroys them. Answers the pair, for the scenario sets' own beforeAll.
 */
export function fedgatePairForFile(shape: FedgateShape, logsName: string): () => FedgatePair {
  let pair: FedgatePair | undefined;
  beforeAll(async () => {
    const ca = createTestCa(`${logsName} CA`);
    const [a, b] = await startFedgatePair({ shape, ca, name: 'a' }, { shape, ca, name: 'b' });
    pair = { ca, a, b };
  }, 240_000);
  afterAll(() => keepLogsAndDestroy(logsName, [pair?.a, pair?.b]), 60_000);
  return () => {
    if (!pair) throw new Error(`the ${shape} pair of ${logsName} did not start`);
    return pair;
  };
}
