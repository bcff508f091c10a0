// After `tsc -p client-sdk/tsconfig.build.json`: the router's types need the server's
// declarations, but the package must ship no server code, so only the SDK's and the contracts'
// files stay, with the router's type rewritten to stand alone (see router-declaration.ts). Fails
// the build if a kept file imports anything but kept files, the peers and the SDK's dependency.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ROUTER_DTS, routerDeclaration } from './router-declaration.ts';

const dist = new URL('./dist/', import.meta.url).pathname;
const shipped = (path: string) => /^(client-sdk|contracts)\//.test(path);
const packages = /^(@trpc\/client|@trpc\/server|zod)(\/|$)/;

async function* files(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

await writeFile(join(dist, 'client-sdk/app-router.d.ts'), routerDeclaration(await readFile(join(dist, ROUTER_DTS), 'utf8')));

for await (const file of files(dist)) {
  const path = relative(dist, file);
  if (!shipped(path)) {
    await rm(file);
    continue;
  }
  const source = await readFile(file, 'utf8');
  // Import and export statements start a line (a doc comment's example does not); import types are inline.
  for (const [, statement, inline] of source.matchAll(/^(?:import|export)\b[^;]*?\bfrom ['"]([^'"]+)['"]|\bimport\(['"]([^'"]+)['"]\)/gm)) {
    const spec = (statement ?? inline)!;
    const inPackage = spec.startsWith('.') ? shipped(relative(dist, join(file, '..', spec))) : packages.test(spec);
    if (!inPackage) {
      process.exitCode = 1;
      console.error(`${path} imports ${spec}: not part of the package or its dependencies`);
    }
  }
}
await rm(join(dist, 'server'), { recursive: true, force: true });
await rm(join(dist, 'migrations'), { recursive: true, force: true });
