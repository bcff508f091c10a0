/**
 * Read markers paced per room. A chat screen marks read whenever it shows a newer message, which
 * in a busy room is several times a second; each mark is a call, a stored change and a `read`
 * event to both participants. Here the newest seq wins and a room's calls are spaced: the first
 * goes at once, later ones at most once per `everyMs` (Sendbird caps its markAsRead at one per
 * second per channel for the same reason).
 */
export interface ReadMarkers {
  /**
   * Moves the caller's marker in `roomId` up to `seq` (the newest message shown). Resolves once a
   * stored marker covers `seq`; rejects with the error of the call that carried it.
   */
  mark(roomId: string, seq: number): Promise<void>;
  /** Cancels marks not yet sent; their promises reject. */
  close(): void;
}

export interface ReadMarkersOptions {
  markRead(input: { roomId: string; seq: number }): Promise<unknown>;
  /** Least time between two calls for one room, in ms. Default 1,000. */
  everyMs?: number;
}

interface Waiter {
  seq: number;
  resolve(): void;
  reject(err: unknown): void;
}

interface RoomMarks {
  /** The highest seq a stored marker covers. */
  stored: number;
  sending: boolean;
  lastCallAt: number;
  timer?: ReturnType<typeof setTimeout>;
  waiters: Waiter[];
}

const closedError = () => new Error('The client closed before this read marker was sent.');

export function createReadMarkers({ markRead, everyMs = 1_000 }: ReadMarkersOptions): ReadMarkers {
  // One entry per room ever marked (a user's rooms): it keeps the spacing across quiet spells.
  const rooms = new Map<string, RoomMarks>();
  let closed = false;

  function settle(room: RoomMarks, upTo: number, outcome: { err: unknown } | undefined) {
    const done = room.waiters.filter((w) => w.seq <= upTo);
    room.waiters = room.waiters.filter((w) => w.seq > upTo);
    for (const w of done) outcome ? w.reject(outcome.err) : w.resolve();
  }

  function send(roomId: string, room: RoomMarks) {
    // The highest seq still waiting: a refused one has left the waiters and is not asked for again.
    const seq = Math.max(...room.waiters.map((w) => w.seq));
    room.sending = true;
    room.lastCallAt = Date.now();
    markRead({ roomId, seq }).then(
      () => {
        room.stored = Math.max(room.stored, seq);
        settle(room, seq, undefined);
      },
      (err: unknown) => settle(room, seq, { err }),
    ).finally(() => {
      room.sending = false;
      if (closed) settle(room, Infinity, { err: closedError() });
      else if (room.waiters.length) schedule(roomId, room);
    });
  }

  function schedule(roomId: string, room: RoomMarks) {
    if (room.sending || room.timer || closed) return;
    const wait = room.lastCallAt + everyMs - Date.now();
    if (wait <= 0) return send(roomId, room);
    room.timer = setTimeout(() => {
      room.timer = undefined;
      send(roomId, room);
    }, wait);
  }

  return {
    mark(roomId, seq) {
      if (closed) return Promise.reject(new Error('The client is closed.'));
      let room = rooms.get(roomId);
      if (!room) rooms.set(roomId, (room = { stored: 0, sending: false, lastCallAt: -Infinity, waiters: [] }));
      if (seq <= room.stored) return Promise.resolve();
      const marked = new Promise<void>((resolve, reject) => room.waiters.push({ seq, resolve, reject }));
      schedule(roomId, room);
      return marked;
    },
    close() {
      closed = true;
      for (const room of rooms.values()) {
        clearTimeout(room.timer);
        if (!room.sending) settle(room, Infinity, { err: closedError() });
      }
    },
  };
}
