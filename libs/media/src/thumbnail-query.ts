// The query of a thumbnail request, checked: width and height required positive integers, method
// crop|scale (default scale), animated true|false.
import { MatrixError } from '@fedgate/service-kit';
import type { ThumbnailRequest } from './thumbnailer';

const MAX_DIMENSION = 10_000;

function dimension(name: string, value: unknown): number {
  if (value === undefined) throw MatrixError.missingParam(`${name} is required`);
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value)) throw MatrixError.invalidParam(`${name} must be a positive integer`);
  const n = Number(value);
  if (n < 1 || n > MAX_DIMENSION) throw MatrixError.invalidParam(`${name} must be between 1 and ${MAX_DIMENSION}`);
  return n;
}

export function parseThumbnailQuery(query: Record<string, unknown>): ThumbnailRequest {
  const method = query.method ?? 'scale';
  if (method !== 'crop' && method !== 'scale') throw MatrixError.invalidParam('method must be crop or scale');
  const animated = query.animated;
  if (animated !== undefined && animated !== 'true' && animated !== 'false') throw MatrixError.invalidParam('animated must be true or false');
  return { width: dimension('width', query.width), height: dimension('height', query.height), method, animated: animated === 'true' };
}
