// Bundles the browser code into dist/, which the Go binary embeds (web/assets.go):
//   dist/<name>-<HASH>.{js,css}  content-hashed bundles (served with a one-year immutable cache)
//   dist/*.gz, dist/*.br         pre-compressed copies (served when Accept-Encoding allows)
//   dist/manifest.json           logical name -> hashed file, read by web/pages.go
import * as esbuild from 'esbuild';
import { mkdir, readdir, rm, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

// player.js: the pages with video (room, watch, replay); app.js: the others (home,
// log in, sign up, dashboard). Both share src/lib; only player.js carries hls.js.
const entryPoints = { player: 'src/player.js', app: 'src/app.js', onair: 'src/onair.css' };

// hls.js is built from its TypeScript sources (shipped in its npm package) with the
// features onair's streams do not use switched off: its "light" build would be smaller
// still, but it drops alternate audio renditions, and onair's fMP4 LL-HLS carries audio as
// one. Off: DRM, subtitles, CMCD, content steering, variable substitution, interstitials,
// I-frame playlists, and the MPEG-TS demuxer's AC-3/HEVC extras. Its sources import
// eventemitter3, url-toolkit and @svta/cml-*: package.json pins them at the versions
// hls.js itself was built with (its own devDependencies).
const hlsFeatures = {
  __VERSION__: JSON.stringify(JSON.parse(await readFile('node_modules/hls.js/package.json', 'utf8')).version),
  __USE_ALT_AUDIO__: 'true',
  __USE_MEDIA_CAPABILITIES__: 'true',
  __USE_EME_DRM__: 'false',
  __USE_SUBTITLES__: 'false',
  __USE_CMCD__: 'false',
  __USE_CONTENT_STEERING__: 'false',
  __USE_VARIABLE_SUBSTITUTION__: 'false',
  __USE_M2TS_ADVANCED_CODECS__: 'false',
  __USE_INTERSTITIALS__: 'false',
  __USE_IFRAMES__: 'false',
};

await mkdir('dist', { recursive: true });
for (const f of await readdir('dist')) {
  if (f !== 'README.md') await rm(path.join('dist', f), { recursive: true, force: true });
}

const result = await esbuild.build({
  entryPoints,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: 'dist',
  entryNames: '[name]-[hash]',
  metafile: true,
  define: hlsFeatures,
  tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
  legalComments: 'eof',
  logLevel: 'warning',
});

const manifest = {};
const sizes = [];
for (const [out, info] of Object.entries(result.metafile.outputs)) {
  const file = path.basename(out);
  const entry = info.entryPoint && path.basename(info.entryPoint);
  if (entry) manifest[entry] = file;
  const raw = await readFile(out);
  const gz = await gzip(raw, { level: 9 });
  const br = await brotli(raw, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
  });
  if (gz.length < raw.length) await writeFile(out + '.gz', gz);
  if (br.length < raw.length) await writeFile(out + '.br', br);
  sizes.push(`${file}: ${raw.length} B, gzip ${gz.length} B, brotli ${br.length} B`);
}
await writeFile('dist/manifest.json', JSON.stringify(manifest, null, 2) + '\n');
if (process.env.ONAIR_UI_SIZES) console.log(sizes.join('\n'));
