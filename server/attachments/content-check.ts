/** The sniffer and its tokenizers load with the first upload checked, not with every start. */
let fileType: Promise<typeof import('file-type')> | undefined;

/** How many leading bytes are read to tell a file's real type (file-type's own recommendation). */
export const SNIFF_BYTES = 4100;

/** Images served inline and thumbnailed: raster formats browsers render without running anything. */
export const INLINE_IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** Types file-type cannot recognise (plain text has no signature): accepted when the bytes look like text. */
const TEXTUAL = /^text\/|^application\/(json|xml)$/;

/**
 * Types that are the same thing under different names, or containers that file-type names by
 * the container: a .docx is a zip, a .doc a Compound File, an .m4a an MP4.
 */
const SAME = [
  ['image/jpeg', 'image/jpg', 'image/pjpeg'],
  ['image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence'],
  ['audio/wav', 'audio/x-wav', 'audio/wave', 'audio/vnd.wave'],
  ['audio/mp4', 'audio/x-m4a', 'audio/m4a', 'video/mp4', 'video/x-m4v'],
  ['audio/ogg', 'audio/opus', 'video/ogg', 'application/ogg'],
  ['audio/webm', 'video/webm', 'video/x-matroska'],
  ['audio/flac', 'audio/x-flac'],
  ['audio/mpeg', 'audio/mp3'],
  ['audio/aac', 'audio/x-aac'],
  ['application/rtf', 'text/rtf'],
  ['application/x-cfb', 'application/msword', 'application/vnd.ms-excel', 'application/vnd.ms-powerpoint'],
  [
    'application/zip',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    'application/vnd.oasis.opendocument.text',
    'application/vnd.oasis.opendocument.spreadsheet',
    'application/vnd.oasis.opendocument.presentation',
  ],
];

/**
 * Whether the leading bytes of a file are what it was declared as. A file whose bytes name
 * another type (an executable declared `image/png`) is refused; so is a declared binary type
 * whose bytes name none, and declared text whose bytes hold NULs.
 */
export async function contentMatches(declared: string, head: Uint8Array): Promise<{ ok: true } | { ok: false; actual: string | undefined }> {
  const found = await (await (fileType ??= import('file-type'))).fileTypeFromBuffer(head);
  if (!found) {
    const textual = TEXTUAL.test(declared) && !head.includes(0);
    return textual ? { ok: true } : { ok: false, actual: undefined };
  }
  if (found.mime === declared || SAME.some((names) => names.includes(found.mime) && names.includes(declared))) return { ok: true };
  return { ok: false, actual: found.mime };
}

/** Whether `type` is allowed by an allow-list of types and `type/*` patterns. */
export function typeAllowed(type: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) => pattern === type || (pattern.endsWith('/*') && type.startsWith(pattern.slice(0, -1))));
}
