// Bundles the browser code into dist/, which the Go binary embeds (web/assets.go).
import * as esbuild from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';

const entries = ['src/watch.js'];
const styles = ['src/onair.css'];

await mkdir('dist', { recursive: true });
await esbuild.build({
  entryPoints: entries,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: 'dist',
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const s of styles) {
  await copyFile(s, 'dist/' + s.split('/').pop());
}
