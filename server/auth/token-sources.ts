/** Where a request may carry its bearer token: `Authorization: Bearer`, `?token=`, or tRPC connectionParams. */
export interface TokenSources {
  authorization?: string | string[] | undefined;
  url?: string | undefined;
  connectionParams?: Record<string, string | undefined> | null | undefined;
}

export function extractToken({ authorization, url, connectionParams }: TokenSources): string | undefined {
  const fromParams = connectionParams?.token;
  if (fromParams) return fromParams;
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // A malformed header is an invalid credential, not a missing one.
    return match ? match[1] : header;
  }
  if (url) {
    const query = url.indexOf('?');
    if (query >= 0) return new URLSearchParams(url.slice(query + 1)).get('token') ?? undefined;
  }
  return undefined;
}
