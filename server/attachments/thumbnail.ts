/** Longest side of a thumbnail, in pixels. */
const THUMBNAIL_SIZE = 320;
/** Images with more pixels than this are not decoded (a small file can claim an enormous canvas). */
const MAX_PIXELS = 100_000_000;

/**
 * A WebP thumbnail (at most 320 px on its longer side, never enlarged) and the image's own size,
 * with EXIF orientation applied. sharp is loaded on first use, off the start-up path.
 */
export async function makeThumbnail(image: Buffer): Promise<{ thumbnail: Buffer; contentType: string; width: number; height: number }> {
  const { default: sharp } = await import('sharp');
  const source = sharp(image, { limitInputPixels: MAX_PIXELS, failOn: 'error' }).rotate();
  const { width, height, orientation } = await sharp(image, { limitInputPixels: MAX_PIXELS }).metadata();
  const swapped = orientation !== undefined && orientation >= 5;
  const thumbnail = await source.resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 75 }).toBuffer();
  return { thumbnail, contentType: 'image/webp', width: swapped ? height : width, height: swapped ? width : height };
}
