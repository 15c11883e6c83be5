import { stopNats } from './nats';
import { stopMongo } from './mongo';

export default async function globalTeardown(): Promise<void> {
  await Promise.allSettled([stopNats(), stopMongo()]);
}
