// Issue 19, the ~0.5 s `/send` stalls under steady load: they were the per-origin rate limit's 500 ms sleep, which
// the load run's fedgate had (Synapse's rc_federation defaults) and the Synapse it is compared with did not.
// No gateway is started here: the cause is pinned on the limiter, the fix on the load run's configuration.
import { DEFAULT_RATE_LIMIT, OriginRateLimiter, type RateLimitSettings } from '@fedgate/federation-ingress';
import { fedgateLoadConfig } from '../load/src/targets';
import { synapseHomeserverConfig } from '../support/src/synapse-config';

interface RcFederation {
  window_size: number;
  sleep_limit: number;
  sleep_delay: number;
  reject_limit: number;
  concurrent: number;
}

function loadSynapseRcFederation(): RcFederation {
  const config = synapseHomeserverConfig({
    serverName: 'load.test',
    dataDir: '/nonexistent',
    tlsPort: 1,
    tlsBindAddresses: ['127.0.0.1'],
    httpPort: 2,
    tlsCertPath: 'cert.pem',
    tlsKeyPath: 'key.pem',
    caCertPath: 'ca.pem',
    signingKeyPath: 'signing.key',
    logConfigPath: 'log.yaml',
    registrationSharedSecret: 'x',
    macaroonSecretKey: 'x',
    formSecret: 'x',
  });
  return config.rc_federation as RcFederation;
}

/**
 * The steady workload's sender at medium scale: half the best delivered rate (~165 PDUs/s) in transactions of 10,
 * so one due every ~61 ms, one in flight, each answered in 18 ms. Returns the sleeps the limiter imposed.
 */
async function sleepsOfSteadySender(settings: RateLimitSettings): Promise<number[]> {
  let now = 0;
  const sleeps: number[] = [];
  const limiter = new OriginRateLimiter(settings, { now: () => now, sleep: async (ms) => void (sleeps.push(ms), (now += ms)) });
  const intervalMs = 10_000 / 165;
  for (let t = 0; t < 33; t++) {
    now = Math.max(now, Math.round(t * intervalMs));
    const release = await limiter.enter('sim.test');
    now += 18;
    release();
  }
  return sleeps;
}

describe('issue 19: load run federation rate limits', () => {
  it('with the default limits, the steady sender (16.5 transactions a second) has /send after the 10th in a second slept 500 ms (the stall)', async () => {
    const sleeps = await sleepsOfSteadySender(DEFAULT_RATE_LIMIT);
    expect(sleeps.length).toBeGreaterThan(0);
    expect(new Set(sleeps)).toEqual(new Set([500]));
  });

  it('the load run gives fedgate the same federation limits as the Synapse it is compared with (none slow the steady sender)', async () => {
    const rc = loadSynapseRcFederation();
    const rateLimit = (fedgateLoadConfig('embedded', {}).federation as { rateLimit?: unknown } | undefined)?.rateLimit;
    expect(rateLimit).toEqual({ windowMs: rc.window_size, sleepLimit: rc.sleep_limit, sleepDelayMs: rc.sleep_delay, rejectLimit: rc.reject_limit, concurrent: rc.concurrent });
    expect((fedgateLoadConfig('distributed', {}).federation as { rateLimit?: unknown }).rateLimit).toEqual(rateLimit);
    expect(await sleepsOfSteadySender(rateLimit as RateLimitSettings)).toEqual([]);
  });
});
