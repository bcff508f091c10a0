import { z } from 'zod';

type JsonSchema = Record<string, unknown>;

/** zod 4's own JSON Schema (2020-12, OpenAPI 3.1's dialect), without the `$schema` key OpenAPI does not want inline. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const jsonContent = (schema: unknown) => ({ 'application/json': { schema } });
