// npm's `prepare` step: `npm ci` builds the demo, so `npm ci && npm start` serves it at /demo/.
// An install without devDependencies (`--omit=dev`) has no Vite: it skips the demo, and says so.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const vite = new URL('../node_modules/.bin/vite', import.meta.url).pathname;
if (!existsSync(vite)) {
  console.warn('parley: Vite is not installed (devDependencies omitted); /demo/ will not be served.');
} else {
  execFileSync(vite, ['build', '--config', new URL('./vite.config.ts', import.meta.url).pathname], { stdio: 'inherit' });
}
