/**
 * Where attachment bytes live. The domain speaks only this interface; `local-storage.ts` keeps
 * files under `DATA_DIR/attachments` and serves them itself, `s3-storage.ts` talks to any
 * S3-compatible service. Keys are the domain's (`uploads/<id>`, `files/<id>`, `thumbs/<id>`).
 * Clients never send bytes through Parley's API: they get signed URLs and talk to the store.
 */
export interface ObjectStorage {
  readonly kind: 'local' | 's3';
  /** Where the client uploads at most `size` bytes of `contentType` to `key`, until `expiresAt`. */
  uploadTarget(key: string, o: { contentType: string; size: number; expiresAt: Date }): Promise<UploadTarget>;
  /** A URL anyone holding it may download `key` with until `expiresAt`, served as `contentType`, inline or as a download named `fileName`. */
  downloadUrl(key: string, o: { contentType: string; fileName: string; inline: boolean; expiresAt: Date }): Promise<string>;
  /** The object's size, undefined if there is none. */
  size(key: string): Promise<number | undefined>;
  read(key: string): Promise<Buffer>;
  write(key: string, data: Buffer, contentType: string): Promise<void>;
  /**
   * Moves `from` to `to` unless `to` exists (then `from` is discarded: what is at `to` was checked
   * by a send and stays), and reads the size and first `bytes` bytes (fewer if it is shorter) of
   * what is at `to`; undefined when there is no such object. A retried call finds `from` moved
   * already and reads `to`. What a send checks of an upload, in as few calls as the backend allows.
   */
  moveAndPeek(from: string, to: string, bytes: number): Promise<{ size: number; head: Uint8Array } | undefined>;
  /** Deletes the object; deleting what is not there succeeds. */
  delete(key: string): Promise<void>;
  close?(): void;
}

/** How a client uploads: `PUT` the bytes with `headers`, or `POST` a form of `fields` and then the file. */
export interface UploadTarget {
  url: string;
  method: 'PUT' | 'POST';
  headers?: Record<string, string>;
  fields?: Record<string, string>;
}

/** What a verified upload URL allows (of a store that receives uploads itself, the local one). */
export interface UploadGrant {
  key: string;
  contentType: string;
  maxBytes: number;
}

/**
 * What a store that receives uploads itself asks the domain once an upload's bytes are all in:
 * the checks a send makes, done where the bytes are in hand instead of read back at the send.
 */
export interface ArrivalCheck {
  /** How many leading bytes `passes` is given. */
  peekBytes: number;
  /** Where an upload's bytes go once they pass: a key no upload URL names; undefined for an upload not checked on arrival. */
  checkedKey(grant: UploadGrant): string | undefined;
  passes(grant: UploadGrant, size: number, head: Uint8Array): Promise<boolean>;
  /** They are at the checked key, put there by this upload alone. */
  arrived(grant: UploadGrant): Promise<void>;
}
