/** The token a page signed in with, kept for this tab so a reload stays signed in. */
const KEY = 'parley-demo-session';

export interface Session {
  user: string;
  token: string;
}

export const savedSession = (): Session | null => JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
export const saveSession = (s: Session | null) => (s ? sessionStorage.setItem(KEY, JSON.stringify(s)) : sessionStorage.removeItem(KEY));

/** In development the server mints a token for any name; elsewhere the route is absent (404) and a token must be pasted. */
export async function devToken(user: string): Promise<string | null> {
  const res = await fetch('/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  if (res.status === 404) return null;
  const body = (await res.json()) as { token?: string; user?: string[]; detail?: string };
  if (!res.ok || !body.token) throw new Error(body.user?.join(' ') ?? body.detail ?? `HTTP ${res.status}`);
  return body.token;
}

/** The `sub` of a pasted JWT, to greet the user; the server verifies the token, not this. */
export function subjectOf(token: string): string {
  const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: string };
  return payload.sub ?? '?';
}
