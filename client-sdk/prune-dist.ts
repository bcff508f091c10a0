// After `tsc -p client-sdk/tsconfig.build.json`: the router's types need the server's
// declarations, but the package must ship no server code, so only the SDK's and the contracts'
// JavaScript stay. Fails the build if the kept JavaScript imports anything else of the repository.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';

const dist = new URL('./dist/', import.meta.url).pathname;
const shipped = (path: string) => /^(client-sdk|contracts)\//.test(path);

async function* files(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

for await (const file of files(dist)) {
  const path = relative(dist, file);
  if (!path.endsWith('.js')) continue;
  if (!shipped(path)) {
    await rm(file);
    continue;
  }
  const source = await readFile(file, 'utf8');
  for (const [, spec] of source.matchAll(/from '(\.[^']+)'/g)) {
    const target = relative(dist, join(file, '..', spec!));
    if (!shipped(target) || !target.endsWith('.js')) {
      process.exitCode = 1;
      console.error(`${path} imports ${spec}: not part of the package`);
    }
  }
}
