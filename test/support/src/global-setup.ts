// Starts the real services the medium and e2e suites need, once per jest run, and hands their
// URLs to the test workers through the environment (workers are forked after this runs).
import { startNats } from './nats';
import { startMongo } from './mongo';

export default async function globalSetup(): Promise<void> {
  const [nats, mongo] = await Promise.all([startNats(), startMongo()]);
  process.env.FEDGATE_TEST_NATS_URL = nats.url;
  process.env.FEDGATE_TEST_MONGO_URL = mongo.url;
}
