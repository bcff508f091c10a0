import { DemoConfig } from '../../contracts/demo-config.ts';

/**
 * The server's edit window in ms, from `GET /demo/config`; `undefined` when it cannot be read, and
 * then Edit stays shown (the server still refuses a late edit with EDIT_WINDOW_CLOSED).
 */
export async function fetchEditWindowMs(): Promise<number | undefined> {
  const res = await fetch('/demo/config').catch(() => undefined);
  if (!res?.ok) return undefined;
  const config = DemoConfig.safeParse(await res.json().catch(() => undefined));
  return config.success ? config.data.messageEditWindowSeconds * 1000 : undefined;
}

/** Time left, in ms at `now`, to edit a message created at `createdAt`; Infinity while the window is unknown. */
export function editTimeLeftMs(createdAt: string, windowMs: number | undefined, now: number): number {
  return windowMs === undefined ? Infinity : Date.parse(createdAt) + windowMs - now;
}

/** A short local time for a message row: hours and minutes. */
export function shortTime(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
