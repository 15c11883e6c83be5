import { serverNameHost } from './server-name';

describe('serverNameHost', () => {
  it.each([
    ['example.org', 'example.org'],
    ['example.org:8448', 'example.org'],
    ['[::1]:8448', '::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['127.0.0.1:443', '127.0.0.1'],
  ])('%s → %s', (name, host) => expect(serverNameHost(name)).toBe(host));
});
