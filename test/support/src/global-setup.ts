// Starts the real services the medium and e2e suites need, once per jest run, and hands their
// URLs to the test workers through the environment (workers are forked after this runs).
import { startNats, stopNats } from './nats';
import { startMongo, stopMongo } from './mongo';
import { startTogether } from './start-together';

export default async function globalSetup(): Promise<void> {
  // jest runs no global teardown after a failed set-up: the service that did start is stopped here.
  const [nats, mongo] = await startTogether([startNats().then((s) => ({ ...s, stop: stopNats })), startMongo().then((s) => ({ ...s, stop: stopMongo }))] as const);
  process.env.FEDGATE_TEST_NATS_URL = nats.url;
  process.env.FEDGATE_TEST_MONGO_URL = mongo.url;
}
