/** The token a page signed in with, kept for this tab so a reload stays signed in. */
const KEY = 'parley-demo-session';

export interface Session {
  user: string;
  token: string;
  /** Whether the token carries the admin role: the page then shows the reports panel. */
  admin?: boolean;
}

export const savedSession = (): Session | null => JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
export const saveSession = (s: Session | null) => (s ? sessionStorage.setItem(KEY, JSON.stringify(s)) : sessionStorage.removeItem(KEY));

/** In development the server mints a token for any name (an admin's if asked); elsewhere the route is absent (404) and a token must be pasted. */
export async function devToken(user: string, admin = false): Promise<string | null> {
  const res = await fetch('/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, admin }) });
  if (res.status === 404) return null;
  const body = (await res.json()) as { token?: string; user?: string[]; detail?: string };
  if (!res.ok || !body.token) throw new Error(body.user?.join(' ') ?? body.detail ?? `HTTP ${res.status}`);
  return body.token;
}

const claimsOf = (token: string) => JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: string; role?: unknown };

/** The `sub` of a pasted JWT, to greet the user; the server verifies the token, not this. */
export const subjectOf = (token: string): string => claimsOf(token).sub ?? '?';

/**
 * Whether a pasted JWT looks like an admin's, by the default role claim; only decides whether the
 * reports panel shows, since the admin API checks the token itself.
 */
export function looksAdmin(token: string): boolean {
  const { role } = claimsOf(token);
  return role === 'admin' || (Array.isArray(role) && role.includes('admin'));
}
