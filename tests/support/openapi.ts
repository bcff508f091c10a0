import { Validator } from '@seriousme/openapi-schema-validator';
import { OpenAPIBackend, type Document } from 'openapi-backend';
import { expect } from 'vitest';

/** Validates response bodies against the OpenAPI document the server itself serves. */
export async function servedOpenApi(baseUrl: string) {
  const document = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as Document;
  const specCheck = await new Validator().validate(structuredClone(document) as unknown as Record<string, unknown>);
  if (!specCheck.valid) throw new Error(`served OpenAPI document is invalid: ${JSON.stringify(specCheck.errors).slice(0, 2000)}`);
    // The document was checked above against the OpenAPI 3.1 meta-schema; openapi-backend's own check
  // only knows 3.0, so it is skipped (`quick`). zod emits a `pattern` beside every `format`, so
  // uuid and date-time values are still checked with format validation off.
  const api = new OpenAPIBackend({ definition: structuredClone(document), quick: true, validate: true, ajvOpts: { validateFormats: false } });
  await api.init();
  return {
    document,
    /** Fails the test unless `body` matches the documented response of `operationId` for `status`. */
    expectValid(operationId: string, status: number, body: unknown) {
      const result = api.validateResponse(body, operationId, status);
      expect(result.errors ?? [], `${operationId} ${status} response vs OpenAPI: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
      expect(result.valid).toBe(true);
    },
  };
}
