// Registrations for unit tests: an application service `id` with no namespaces unless `fields` give them.
import type { AppServiceRegistration } from './registration';

export function fakeRegistration(id: string, url: string | null, fields: Partial<AppServiceRegistration> = {}): AppServiceRegistration {
  return {
    id,
    url,
    asToken: `as-${id}`,
    hsToken: `hs-${id}`,
    senderLocalpart: `${id}bot`,
    namespaces: { users: [], aliases: [], rooms: [] },
    rateLimited: false,
    receiveEphemeral: false,
    protocols: [],
    source: `${id}.yaml`,
    ...fields,
  };
}
