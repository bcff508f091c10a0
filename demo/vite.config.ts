import { defineConfig } from 'vite';

// Preact through the compiler's automatic JSX runtime: no Babel preset needed for a demo this size.
export default defineConfig({
  root: import.meta.dirname,
  base: '/demo/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  logLevel: 'warn',
});
