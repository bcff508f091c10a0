import type { AnyTRPCRouter, TRPCProcedureType } from '@trpc/server';
import { appRouter } from './app.router.ts';

// Read once from the router's definition (its exported `TRPCRouterDef` type), as the OpenAPI
// document does: tRPC has no other way to ask what a path is before calling it.
const types = new Map(
  Object.entries((appRouter as AnyTRPCRouter)._def.procedures as Record<string, { _def: { type: TRPCProcedureType } }>).map(([path, procedure]) => [path, procedure._def.type]),
);

/** Whether `path` names a query, a mutation or a subscription of the router; undefined for no procedure. */
export const procedureType = (path: string): TRPCProcedureType | undefined => types.get(path);
