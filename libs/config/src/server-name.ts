/** The host part of a server name: `example.org:8448` → `example.org`, `[::1]:8448` → `::1`. */
export function serverNameHost(serverName: string): string {
  if (serverName.startsWith('[')) return serverName.slice(1, serverName.indexOf(']'));
  const colon = serverName.lastIndexOf(':');
  return colon === -1 ? serverName : serverName.slice(0, colon);
}
