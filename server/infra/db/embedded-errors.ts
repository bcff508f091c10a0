/** Why the embedded PostgreSQL could not be started. */
export type EmbeddedDatabaseErrorCode = 'DATA_DIR_IN_USE' | 'UNSUPPORTED_PLATFORM' | 'ACCESS_DENIED' | 'POSTGRES_FAILED';

/**
 * A start-up failure of the embedded database; `main` prints its message as one line, since
 * it tells the user what to do (not where in the code it happened).
 */
export class EmbeddedDatabaseError extends Error {
  readonly code: EmbeddedDatabaseErrorCode;
  /** For DATA_DIR_IN_USE: the process that holds the data directory. */
  readonly holderPid: number | undefined;

  constructor(code: EmbeddedDatabaseErrorCode, message: string, holderPid?: number) {
    super(message);
    this.name = 'EmbeddedDatabaseError';
    this.code = code;
    this.holderPid = holderPid;
  }
}

/** For entry points: an EmbeddedDatabaseError ends the process with its one-line message; anything else is rethrown. */
export function exitOnEmbeddedDatabaseError(err: unknown): never {
  if (!(err instanceof EmbeddedDatabaseError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
