import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

const require = createRequire(import.meta.url);

/**
 * Fastify's JSON-schema compilers (Ajv, fast-json-stringify), loaded only if a route ever declares
 * a schema. Parley's routes validate with their zod contracts, so none does, and the compilers were
 * a hundred modules imported by every start.
 */
export const lazySchemaCompilers: FastifyServerOptions['schemaController'] = {
  compilersFactory: {
    buildValidator: (...args: unknown[]) => require('@fastify/ajv-compiler')()(...args),
    buildSerializer: (...args: unknown[]) => require('@fastify/fast-json-stringify-compiler')()(...args),
  },
};
