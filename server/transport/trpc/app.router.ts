import { adminRouter } from './admin.router.ts';
import { attachmentsRouter } from './attachments.router.ts';
import { messagesRouter } from './messages.router.ts';
import { reportsRouter } from './reports.router.ts';
import { roomsRouter } from './rooms.router.ts';
import { usersRouter } from './users.router.ts';
import { pushRouter } from './push.router.ts';
import { createCallerFactory, router } from './procedures.ts';

/** The single source of truth: REST and legacy WebSocket adapters call these same procedures. */
export const appRouter = router({
  rooms: roomsRouter,
  messages: messagesRouter,
  users: usersRouter,
  reports: reportsRouter,
  admin: adminRouter,
  push: pushRouter,
  attachments: attachmentsRouter,
});

/** The router's type, all the SDK imports from the server. */
export type AppRouter = typeof appRouter;

export const createCaller = createCallerFactory(appRouter);
