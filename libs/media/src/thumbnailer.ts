// Thumbnails with sharp (libvips): "scale" fits inside the requested box keeping the aspect ratio,
// "crop" fills the requested box (centre crop). Never upscales: content no larger than the request is
// served as it is. Only raster formats libvips decodes safely here; SVG and everything else is refused.
import sharp from 'sharp';

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailRequest {
  width: number;
  height: number;
  method: ThumbnailMethod;
  /** Prefer an animated thumbnail (image/webp) when the source is animated. */
  animated: boolean;
}

export interface Thumbnail {
  bytes: Buffer;
  contentType: string;
  width: number;
  height: number;
}

export type ThumbnailOutcome = { kind: 'thumbnail'; thumbnail: Thumbnail } | { kind: 'original' };

export class ThumbnailError extends Error {
  constructor(
    readonly reason: 'unsupported' | 'too_large',
    message: string,
  ) {
    super(message);
    this.name = 'ThumbnailError';
  }
}

const THUMBNAILABLE_TYPES = new Set(['image/png', 'image/apng', 'image/jpeg', 'image/gif', 'image/webp']);
const DECODABLE_FORMATS = new Set(['png', 'jpeg', 'gif', 'webp']);
/** Decoding a bigger image takes more memory than a thumbnail is worth (about 200 MB of RGBA). */
export const MAX_THUMBNAIL_SOURCE_PIXELS = 50_000_000;

// libvips keeps up to 100 recent operations (and their decoded pixels, up to 50 MB) for reuse by default:
// native memory outside the V8 heap that a stream of distinct uploads never reuses. The store keeps each
// thumbnail once made, so the process keeps none. Set at first use, not at load: the build loads sharp (and its
// native libvips, ~10 MiB) only when a thumbnail is made (tools/swc-options.cjs, `lazy`).
let sharpConfigured = false;
function imageLibrary(): typeof sharp {
  if (!sharpConfigured) {
    sharp.cache(false);
    sharpConfigured = true;
  }
  return sharp;
}

export function isThumbnailable(contentType: string): boolean {
  return THUMBNAILABLE_TYPES.has(contentType.split(';')[0].trim().toLowerCase());
}

/** A cache key for one request shape. */
export function thumbnailVariant(request: ThumbnailRequest): string {
  return `${request.width}x${request.height}-${request.method}${request.animated ? '-animated' : ''}`;
}

export async function makeThumbnail(source: Buffer, contentType: string, request: ThumbnailRequest): Promise<ThumbnailOutcome> {
  if (!isThumbnailable(contentType)) throw new ThumbnailError('unsupported', `Cannot generate thumbnails for ${contentType}`);
  // Outside the try: sharp failing to load (a missing native binary) is our fault, not the content's.
  const image = imageLibrary();
  let metadata: sharp.Metadata;
  try {
    metadata = await image(source, { limitInputPixels: false }).metadata();
  } catch {
    throw new ThumbnailError('unsupported', 'Cannot generate thumbnails for the requested content');
  }
  if (!metadata.format || !DECODABLE_FORMATS.has(metadata.format) || !metadata.width || !metadata.height) {
    throw new ThumbnailError('unsupported', 'Cannot generate thumbnails for the requested content');
  }
  const pages = metadata.pages ?? 1;
  const sourceWidth = metadata.width;
  const sourceHeight = metadata.pageHeight ?? metadata.height;
  if (sourceWidth * sourceHeight * (request.animated ? pages : 1) > MAX_THUMBNAIL_SOURCE_PIXELS) {
    throw new ThumbnailError('too_large', 'Content is too large to thumbnail');
  }
  const target = targetSize(sourceWidth, sourceHeight, request);
  if (!target) return { kind: 'original' };

  const animate = request.animated && pages > 1;
  let pipeline = image(source, { animated: animate, limitInputPixels: MAX_THUMBNAIL_SOURCE_PIXELS, failOn: 'error' }).rotate();
  pipeline = pipeline.resize(target.width, target.height, { fit: request.method === 'crop' ? 'cover' : 'inside', withoutEnlargement: true });
  let outputType: string;
  if (animate) {
    pipeline = pipeline.webp({ quality: 80 });
    outputType = 'image/webp';
  } else if (metadata.format === 'jpeg') {
    pipeline = pipeline.jpeg({ quality: 80, mozjpeg: true });
    outputType = 'image/jpeg';
  } else {
    pipeline = pipeline.png();
    outputType = 'image/png';
  }
  try {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return { kind: 'thumbnail', thumbnail: { bytes: data, contentType: outputType, width: info.width, height: info.pageHeight ?? info.height } };
  } catch {
    throw new ThumbnailError('unsupported', 'Cannot generate thumbnails for the requested content');
  }
}

/** The output size, or undefined when the source is no larger than asked (serve the original). */
function targetSize(sourceWidth: number, sourceHeight: number, request: ThumbnailRequest): { width: number; height: number } | undefined {
  if (request.method === 'scale') {
    const factor = Math.min(request.width / sourceWidth, request.height / sourceHeight);
    if (factor >= 1) return undefined;
    return { width: Math.max(1, Math.round(sourceWidth * factor)), height: Math.max(1, Math.round(sourceHeight * factor)) };
  }
  if (sourceWidth <= request.width && sourceHeight <= request.height) return undefined;
  const factor = Math.max(request.width / sourceWidth, request.height / sourceHeight);
  if (factor < 1) return { width: request.width, height: request.height };
  // Too small to fill the box without upscaling: the largest crop of the requested aspect the source holds.
  const shrink = Math.min(sourceWidth / request.width, sourceHeight / request.height);
  return { width: Math.max(1, Math.floor(request.width * shrink)), height: Math.max(1, Math.floor(request.height * shrink)) };
}
