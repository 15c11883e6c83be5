/** Client-server API prefixes: v3, and r0 for bridges that still call it. */
export const CLIENT_PATHS = ['_matrix/client/v3', '_matrix/client/r0'];

/** `via` and `server_name` query parameters (each may repeat). */
export function queryList(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}
