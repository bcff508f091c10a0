/**
 * The server's router type, from which the client infers every procedure's input, output and
 * error shape. The package ships it as a self-contained declaration (see `prune-dist.ts`): the
 * same procedures and types, without the server's context behind them.
 */
export type { AppRouter } from '../server/transport/trpc/app.router.ts';
