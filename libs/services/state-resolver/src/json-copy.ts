/**
 * A deep copy of JSON-shaped data (plain objects, arrays, primitives), made in the caller's realm. What the owner's
 * read cache hands out: structuredClone's copies were slower (issue 19) and, under a test runner's separate realm,
 * objects canonical JSON refused as not plain.
 */
export function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) copy[i] = copyJson(value[i] as unknown);
    return copy as T;
  }
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copyJson((value as Record<string, unknown>)[key]);
    // A remote event's content may name "__proto__": kept as the own property JSON.parse made of it, not a prototype.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else copy[key] = item;
  }
  return copy as T;
}
