import {
  callTRPCProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  transformTRPCResponse,
  type AnyTRPCRouter,
  type TRPCError,
} from '@trpc/server';
import { getHTTPStatusCode } from '@trpc/server/http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TRPC_BATCH_MAX_ITEMS } from '../../../contracts/index.ts';
import { appRouter } from './app.router.ts';
import type { Context } from './context.ts';
import { procedureType } from './procedure-types.ts';

const router = appRouter as AnyTRPCRouter;
const config = router._def._config;
const METHOD_OF = { query: 'GET', mutation: 'POST' } as const;

/** The adapter's hooks, the same ones it gives tRPC's handler. */
export interface TrpcHttpHooks {
  onError(failure: { error: TRPCError; path: string; type: 'query' | 'mutation' }): void;
  responseMeta(answer: { errors: TRPCError[] }): { headers: Record<string, string> };
}

/**
 * WORKAROUND, kept to this file. tRPC 11's one public HTTP entry, `resolveResponse` (and the Fastify
 * and fetch adapters built on it), takes a Fetch `Request` and answers with a Fetch `Response`
 * (since https://github.com/trpc/trpc/pull/5681). On Node that costs more than the call itself:
 * a `messages.send` through it used 1.6-1.9× the server CPU of the same send over REST, so tRPC HTTP
 * sends fell to 0.5-0.6× REST's rate. The API missing: a public entry that runs a call whose
 * body is already read, without Fetch objects; no tRPC issue asks for one yet (link it here once
 * one does).
 *
 * So the plain JSON calls the SDK's `httpBatchLink` and `httpLink` send (`GET ?input=` queries,
 * `POST` mutations, batched or not) are answered here, from tRPC's own public pieces:
 * `callTRPCProcedure`, `getTRPCErrorShape` (the router's errorFormatter), `getHTTPStatusCode` (one
 * status, or 207 when a batch's calls disagree), `transformTRPCResponse`, and the adapter's
 * `onError` and `responseMeta`. Everything else (streaming `trpc-accept`, other media types,
 * malformed JSON, unknown or mismatched procedures, oversized batches) returns false and goes to
 * tRPC's handler. tests/regressions/trpc-http-paths-agree.test.ts checks both answer alike, so a
 * tRPC upgrade that changes the protocol fails there rather than silently.
 */
export async function answerJsonCalls(req: FastifyRequest, reply: FastifyReply, path: string, ctx: Context, hooks: TrpcHttpHooks): Promise<boolean> {
  if (req.headers['trpc-accept'] !== undefined || req.headers.accept?.includes('application/jsonl')) return false;
  if (req.method === 'POST' && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) return false;
  const query = req.query as Record<string, string | undefined>;
  const isBatch = query.batch === '1';
  const paths = isBatch ? path.split(',') : [path];
  if (paths.length > TRPC_BATCH_MAX_ITEMS) return false;
  const types: Array<'query' | 'mutation'> = [];
  for (const p of paths) {
    const type = procedureType(p);
    if ((type !== 'query' && type !== 'mutation') || METHOD_OF[type] !== req.method) return false;
    types.push(type);
  }
  let inputs: unknown;
  try {
    const text = req.method === 'GET' ? query.input : (req.body as string | undefined);
    inputs = text ? JSON.parse(text) : undefined;
  } catch (err) {
    // tRPC's handler answers it with its own PARSE_ERROR.
    void err;
    return false;
  }
  const inputOf = (i: number) => (isBatch ? (inputs as Record<string, unknown> | undefined)?.[i] : inputs);

  const errors: Array<TRPCError | undefined> = [];
  const answers = await Promise.all(
    paths.map(async (p, i) => {
      const type = types[i]!;
      try {
        return { result: { data: await callTRPCProcedure({ router, path: p, getRawInput: async () => inputOf(i), ctx, type, signal: undefined, batchIndex: i }) } };
      } catch (cause) {
        const error = getTRPCErrorFromUnknown(cause);
        errors[i] = error;
        hooks.onError({ error, path: p, type });
        return { error: getTRPCErrorShape({ config, error, type, path: p, input: inputOf(i), ctx }) };
      }
    }),
  );
  const { headers } = hooks.responseMeta({ errors: errors.filter((e) => e !== undefined) });
  const body = transformTRPCResponse(config, isBatch ? answers : answers[0]!);
  await reply
    .code(getHTTPStatusCode(isBatch ? answers : answers[0]!, errors))
    .headers({ vary: 'trpc-accept, accept', ...headers })
    .type('application/json')
    .send(JSON.stringify(body));
  return true;
}
