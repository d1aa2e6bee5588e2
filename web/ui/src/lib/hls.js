// hls.js from its sources, with build-time feature flags set in build.mjs.
export { default } from '../../node_modules/hls.js/src/exports-default.ts';
