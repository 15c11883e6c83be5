import sharp from 'sharp';
import { makeThumbnail, ThumbnailError, thumbnailVariant } from './thumbnailer';

const image = (width: number, height: number, format: 'png' | 'jpeg' = 'png') =>
  sharp({ create: { width, height, channels: 3, background: '#336699' } })[format]().toBuffer();

async function size(outcome: Awaited<ReturnType<typeof makeThumbnail>>) {
  if (outcome.kind !== 'thumbnail') throw new Error('expected a thumbnail');
  const meta = await sharp(outcome.thumbnail.bytes).metadata();
  return { width: meta.width, height: meta.height, type: outcome.thumbnail.contentType };
}

describe('thumbnails', () => {
  it('scales into the box keeping the aspect ratio, and crops to the requested box', async () => {
    const source = await image(400, 300);
    expect(await size(await makeThumbnail(source, 'image/png', { width: 96, height: 96, method: 'scale', animated: false }))).toEqual({ width: 96, height: 72, type: 'image/png' });
    expect(await size(await makeThumbnail(source, 'image/png', { width: 96, height: 96, method: 'crop', animated: false }))).toEqual({ width: 96, height: 96, type: 'image/png' });
  });

  it('keeps JPEG as JPEG', async () => {
    const source = await image(200, 100, 'jpeg');
    expect(await size(await makeThumbnail(source, 'image/jpeg', { width: 50, height: 50, method: 'scale', animated: false }))).toEqual({ width: 50, height: 25, type: 'image/jpeg' });
  });

  it('never upscales: a small source is served as it is, a crop wider than the source keeps the aspect', async () => {
    const source = await image(40, 30);
    expect(await makeThumbnail(source, 'image/png', { width: 96, height: 96, method: 'crop', animated: false })).toEqual({ kind: 'original' });
    expect(await makeThumbnail(source, 'image/png', { width: 320, height: 240, method: 'scale', animated: false })).toEqual({ kind: 'original' });
    expect(await size(await makeThumbnail(source, 'image/png', { width: 80, height: 20, method: 'crop', animated: false }))).toEqual({ width: 40, height: 10, type: 'image/png' });
  });

  it('refuses what is not a raster image it decodes', async () => {
    await expect(makeThumbnail(Buffer.from('<svg/>'), 'image/svg+xml', { width: 32, height: 32, method: 'crop', animated: false })).rejects.toMatchObject({ reason: 'unsupported' });
    await expect(makeThumbnail(Buffer.from('not a png'), 'image/png', { width: 32, height: 32, method: 'crop', animated: false })).rejects.toBeInstanceOf(ThumbnailError);
  });

  it('keeps no decoded images in libvips after a thumbnail (sharp caches up to 50 MB of operations by default; the store keeps thumbnails)', async () => {
    const source = await image(300, 200);
    await makeThumbnail(source, 'image/png', { width: 64, height: 64, method: 'crop', animated: false });
    const cache = sharp.cache();
    expect(cache.items).toEqual({ current: 0, max: 0 });
    expect(cache.memory).toMatchObject({ current: 0, max: 0 });
    expect(cache.files).toEqual({ current: 0, max: 0 });
  });

  it('names variants by shape', () => {
    expect(thumbnailVariant({ width: 32, height: 32, method: 'crop', animated: false })).toBe('32x32-crop');
    expect(thumbnailVariant({ width: 640, height: 480, method: 'scale', animated: true })).toBe('640x480-scale-animated');
  });
});
