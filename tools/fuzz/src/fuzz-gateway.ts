// Starts an embedded fedgate (with a test bridge's registration) and fuzzes it: what `npm run fuzz` and the
// short run inside `npm test` share.
import { createTestCa, startFedgate, type FedgateInstance } from '@fedgate/testing';
import { runFuzz, type FuzzOptions, type FuzzReport } from './fuzzer';

export interface FuzzGatewayOptions extends Pick<FuzzOptions, 'requests' | 'maxSeconds' | 'concurrency' | 'seed' | 'hangAfterMs' | 'bigBodyEvery' | 'onProgress'> {
  name?: string;
}

export async function fuzzEmbeddedGateway(options: FuzzGatewayOptions): Promise<{ report: FuzzReport; logs: string }> {
  const ca = createTestCa('fedgate fuzz CA');
  const name = options.name ?? 'fuzz';
  let instance: FedgateInstance | undefined;
  try {
    instance = await startFedgate({ shape: 'embedded', ca, name, logLevel: 'warn' });
    const federationPort = new URL(instance.federationUrl).port;
    const report = await runFuzz({
      ...options,
      serverName: instance.serverName,
      federationUrl: `https://localhost:${federationPort}`,
      clientServerUrl: instance.clientServerUrl,
      caPem: ca.certPem,
      asToken: instance.bridge!.registration.as_token,
      userPrefix: `${name}chat_`,
      pid: instance.processes[0]?.pid,
    });
    return { report, logs: instance.logs() };
  } finally {
    await instance?.destroy();
  }
}
