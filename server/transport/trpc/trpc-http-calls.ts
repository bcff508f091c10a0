import { callTRPCProcedure, getTRPCErrorFromUnknown, type AnyTRPCProcedure, type AnyTRPCRouter, type TRPCError } from '@trpc/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TRPC_BATCH_MAX_ITEMS } from '../../../contracts/index.ts';
import { errorHeaders } from '../errors/http-reply.ts';
import { toParleyError } from '../errors/to-parley-error.ts';
import { trpcErrorShape } from '../errors/trpc-error-shape.ts';
import { appRouter } from './app.router.ts';
import type { Context } from './context.ts';

const router = appRouter as AnyTRPCRouter;
const procedures = router._def.procedures as Record<string, AnyTRPCProcedure>;
const METHOD_OF = { query: 'GET', mutation: 'POST' } as const;

export type OnCallError = (failure: { error: TRPCError; path: string; type: string }) => void;

function parseJson(text: unknown): { ok: true; value: unknown } | { ok: false } {
  if (text === undefined || text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(String(text)) };
  } catch (err) {
    // tRPC's own handler answers it with its PARSE_ERROR.
    void err;
    return { ok: false };
  }
}

/**
 * tRPC's HTTP protocol for plain JSON calls — what the SDK's `httpBatchLink` (and `httpLink`)
 * send: `GET ?input=` queries and `POST` mutations, batched or not. tRPC's own handler turns
 * every request into a Fetch `Request` and back and spreads objects at each step; for the common
 * call this path goes straight to the procedure, so a tRPC send costs what a REST send does.
 * Anything else (streaming `trpc-accept`, form data, malformed JSON, unknown or mismatched
 * procedures, oversized batches) returns false and is left to tRPC's handler, which owns those
 * answers.
 */
export async function answerPlainCalls(req: FastifyRequest, reply: FastifyReply, path: string, ctx: Context, onError: OnCallError): Promise<boolean> {
  if (req.headers['trpc-accept'] !== undefined) return false;
  const query = req.query as Record<string, string | undefined>;
  const isBatch = query.batch === '1';
  const paths = isBatch ? path.split(',') : [path];
  if (paths.length > TRPC_BATCH_MAX_ITEMS) return false;
  const types: Array<'query' | 'mutation'> = [];
  for (const p of paths) {
    const type = procedures[p]?._def.type;
    if ((type !== 'query' && type !== 'mutation') || METHOD_OF[type] !== req.method) return false;
    types.push(type);
  }
  const parsed = parseJson(req.method === 'GET' ? query.input : req.body);
  if (!parsed.ok) return false;
  const input = (i: number) => (isBatch ? (parsed.value as Record<string, unknown> | undefined)?.[i] : parsed.value);

  const answers = await Promise.all(
    paths.map(async (p, i) => {
      try {
        const data = await callTRPCProcedure({ router, path: p, getRawInput: async () => input(i), ctx, type: types[i]!, signal: undefined, batchIndex: i });
        return { status: 200, body: { result: { data } }, headers: {} };
      } catch (cause) {
        const error = getTRPCErrorFromUnknown(cause);
        onError({ error, path: p, type: types[i]! });
        const parley = toParleyError(error);
        const shape = trpcErrorShape(parley, p);
        return { status: shape.data.httpStatus, body: { error: shape }, headers: errorHeaders(parley) };
      }
    }),
  );
  // tRPC's rule: one status for the batch if all calls agree, 207 Multi-Status otherwise.
  const status = answers.every((a) => a.status === answers[0]!.status) ? answers[0]!.status : 207;
  await reply
    .code(status)
    .headers(Object.assign({}, ...answers.map((a) => a.headers)))
    .type('application/json')
    .send(JSON.stringify(isBatch ? answers.map((a) => a.body) : answers[0]!.body));
  return true;
}
