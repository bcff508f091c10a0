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
    const bearer = /^Bearer(?:\s+(.*))?$/i.exec(header.trim());
    // Another scheme (or a bare JWT) carries no credentials we accept: the client is told
    // `WWW-Authenticate: Bearer` (RFC 6750 §3.1). A malformed Bearer header is an invalid token.
    if (bearer) return bearer[1]?.trim() || header;
  }
  if (url) {
    const query = url.indexOf('?');
    if (query >= 0) return new URLSearchParams(url.slice(query + 1)).get('token') ?? undefined;
  }
  return undefined;
}
