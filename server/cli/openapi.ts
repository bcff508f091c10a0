import { writeFile } from 'node:fs/promises';
import { buildOpenApiDocument } from '../transport/openapi/openapi-document.ts';

// `npm run openapi`: writes the committed copy of the document `/openapi.json` serves, so API
// changes show up in review; CI regenerates it and fails if the committed copy is stale.
const target = new URL('../../contracts/openapi.json', import.meta.url);
await writeFile(target, JSON.stringify(buildOpenApiDocument(), null, 2) + '\n');
console.log(`wrote ${target.pathname}`);
