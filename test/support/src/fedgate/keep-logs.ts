// What e2e files do with their gateways at the end: keep each one's log under test-results/ (ignored by git),
// so a failed run can be read afterwards, then destroy them.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FedgateInstance } from './start-fedgate';

/** `test-results/<name>` at the root of the repository. */
export const testResultsDir = (name: string) => path.resolve(__dirname, '..', '..', '..', '..', 'test-results', name);

/** Writes each instance's log to `testResultsDir(name)/<instance>.log`, then destroys them all. */
export async function keepLogsAndDestroy(name: string, instances: ReadonlyArray<FedgateInstance | undefined>): Promise<void> {
  const dir = testResultsDir(name);
  await mkdir(dir, { recursive: true });
  for (const instance of instances) if (instance) await writeFile(path.join(dir, `${instance.name}.log`), instance.logs());
  await Promise.all(instances.map((instance) => instance?.destroy()));
}
